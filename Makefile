# berth — build, test, benchmark and demo.
#
#   make            bin/berthd, bin/berth, bin/berth-client, bin/berth-runtime
#   make test       unit tests, then end-to-end tests (root; real containers)
#   make asan       the same suite built with AddressSanitizer + UBSan
#   make bench      benchmarks against peers measured in the same run
#   make demo       build the demo image and serve a page from a container
#
# Variant builds go to their own tree: `make asan` uses build/asan/ and
# build/asan/bin/, so sanitizer and normal objects never mix.

CC       ?= gcc
V        ?= 0
SANITIZE ?=
BUILD    ?= build
BINDIR   ?= bin
PREFIX   ?= /usr/local

PKGS := libuv jansson libseccomp libcap sqlite3 nettle libnl-route-3.0
# Only berthd uses libsystemd (sd_notify) and libcurl (webhooks; loaded when
# first used, see BERTHD_LIBS); `berth` and the helper are static.
DAEMON_PKGS := libsystemd libcurl
# Images: unpacking (libarchive) and pulls (libcurl) live in berthd and the dynamic
# `berth-image` helper only; the static `berth` execs that helper.
IMAGE_PKGS := libarchive libcurl

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wformat=2 -Wno-format-nonliteral -Wpointer-arith -Wcast-align -Wwrite-strings \
	-Wundef -Wvla -Wnull-dereference -Wimplicit-fallthrough
HARDEN := -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fPIE
CFLAGS ?= -O2 -g
ALL_CFLAGS := -std=gnu11 -D_GNU_SOURCE $(WARN) $(HARDEN) $(CFLAGS) \
	-Iinclude -Isrc -I$(BUILD)/gen \
	$(shell pkg-config --cflags $(PKGS) $(DAEMON_PKGS) $(IMAGE_PKGS)) -MMD -MP \
	-DBERTH_LIBEXECDIR='"$(PREFIX)/libexec/berth"'
ALL_LDFLAGS := -pie -Wl,-z,relro,-z,now $(LDFLAGS)
# http-parser ships no pkg-config file.
LIBS := $(shell pkg-config --libs $(PKGS)) -lhttp_parser
# wslay (WebSocket frames: berth exec -it) ships no pkg-config file.
DAEMON_LIBS := $(shell pkg-config --libs $(DAEMON_PKGS)) -lwslay
# berthd itself loads libcurl and libarchive when it first needs them
# (src/daemon/ondemand.c): an idle daemon does not carry them.
BERTHD_LIBS := $(shell pkg-config --libs libsystemd) -lwslay -ldl
IMAGE_LIBS := $(shell pkg-config --libs $(IMAGE_PKGS))
# Only berth-client links libcurl (Debian has no static libcurl, and `berth`
# must stay static).
CLIENT_LIBS := $(shell pkg-config --libs libcurl jansson) -lwslay

# make TRACE=1: timestamps of every start step on stderr (include/berth/trace.h).
ifneq ($(TRACE),)
ALL_CFLAGS += -DBERTH_TRACE_ENABLED
endif

ifneq ($(SANITIZE),)
ALL_CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
ALL_LDFLAGS += -fsanitize=address,undefined
# FORTIFY and ASan check the same things twice and disagree on some.
HARDEN :=
endif
# SANITIZE=fuzz (clang, `make fuzz`): coverage for libFuzzer in every object.
ifeq ($(SANITIZE),fuzz)
ALL_CFLAGS += -fsanitize=fuzzer-no-link
endif

ifeq ($(V),0)
Q = @
say = @printf '  %-7s %s\n' $(1) $(2);
else
Q =
say =
endif

COMMON_SRC  := $(wildcard src/common/*.c)
CONFIG_SRC  := $(wildcard src/config/*.c)
RUNTIME_SRC := $(filter-out src/runtime/helper-main.c,$(wildcard src/runtime/*.c))
INSTANCE_SRC:= $(wildcard src/instance/*.c)
REGISTRY_SRC := $(wildcard src/registry/*.c)
HTTP_SRC    := $(wildcard src/http/*.c)
# The proxy's pure half (heads, routes) is a library; the rest needs berthd.
PROXY_LIB_SRC := src/proxy/head.c src/proxy/route.c
PROXY_SRC   := $(filter-out $(PROXY_LIB_SRC),$(wildcard src/proxy/*.c))
CLI_SRC     := $(wildcard src/cli/*.c)
CLIENT_SRC  := $(wildcard src/client/*.c)
DAEMON_SRC  := $(wildcard src/daemon/*.c src/sandbox/*.c)
HELPER_SRC  := src/runtime/helper-main.c
# The image module's pure parts (references, digests, sources, the config's rules)
# are in libberth; what needs libarchive or libcurl is in libberth-image.
IMAGE_PURE_SRC := src/image/ref.c src/image/digest.c src/image/source.c src/image/apply.c
IMAGE_SRC   := $(filter-out $(IMAGE_PURE_SRC),$(wildcard src/image/*.c))
IMAGE_TOOL_SRC := $(wildcard src/image-helper/*.c)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
GEN := $(BUILD)/gen

LIB_OBJ := $(call obj,$(COMMON_SRC) $(CONFIG_SRC) $(RUNTIME_SRC) $(INSTANCE_SRC) \
	$(REGISTRY_SRC) $(HTTP_SRC) $(IMAGE_PURE_SRC) $(PROXY_LIB_SRC))
LIBBERTH := $(BUILD)/libberth.a
LIBIMAGE := $(BUILD)/libberth-image.a

UNIT_SRC   := $(wildcard tests/unit/test_*.c)
UNIT_BINS  := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
# Small programs the end-to-end tests run on the host (tests/tools/).
TOOL_SRC   := $(wildcard tests/tools/*.c)
TOOL_BINS  := $(patsubst tests/tools/%.c,$(BUILD)/tests/%,$(TOOL_SRC))

# Fuzz targets (tests/fuzz/): `make test` replays each over its committed
# corpus (tests/fuzz/corpus/NAME/); `make fuzz` runs them under libFuzzer.
FUZZ_SRC   := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_NAMES := $(patsubst tests/fuzz/%.c,%,$(FUZZ_SRC))
FUZZ_REPLAYS := $(patsubst %,$(BUILD)/tests/%,$(FUZZ_NAMES))

PROGRAMS := $(BINDIR)/berthd $(BINDIR)/berth $(BINDIR)/berth-client $(BINDIR)/berth-runtime \
	$(BINDIR)/berth-image

.SECONDARY:
.PHONY: all deps test unit e2e asan bench bench-progs demo rootfs format format-check clean install \
	fuzz fuzz-targets
all: $(PROGRAMS) $(TOOL_BINS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(call say,CC,$<)$(CC) $(ALL_CFLAGS) -c -o $@ $<

# The seccomp profile is compiled with libseccomp at build time and embedded.
$(BUILD)/tools/gen-seccomp: $(call obj,src/tools/gen-seccomp.c src/runtime/seccomp.c $(COMMON_SRC))
	@mkdir -p $(dir $@)
	$(call say,LINK,$@)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

$(GEN)/seccomp-bpf.h: $(BUILD)/tools/gen-seccomp
	@mkdir -p $(dir $@)
	$(call say,GEN,$@)$< > $@.tmp && mv $@.tmp $@

$(BUILD)/obj/src/runtime/seccomp-default.o: $(GEN)/seccomp-bpf.h

$(LIBBERTH): $(LIB_OBJ)
	$(call say,AR,$@)rm -f $@ && ar rcs $@ $^

$(LIBIMAGE): $(call obj,$(IMAGE_SRC))
	$(call say,AR,$@)rm -f $@ && ar rcs $@ $^

# `berth` and the helper run on every container start (and exec): linked
# statically they start without the dynamic loader's work, about 1 ms per
# program on the build machines. Sanitizer runtimes need dynamic linking.
# Netlink (bridge networking) is libnl: Debian ships no static libmnl.a.
NL_LIBS := -lnl-route-3 -lnl-3 -lpthread -lm
ifeq ($(SANITIZE),)
STATIC_LDFLAGS := $(filter-out -pie,$(ALL_LDFLAGS)) -static-pie
CLI_LIBS := -l:libuv_a.a -ljansson -lseccomp -lcap $(NL_LIBS) -ldl -lrt
else
STATIC_LDFLAGS := $(ALL_LDFLAGS)
CLI_LIBS := $(LIBS)
endif

$(BINDIR)/berth: $(call obj,$(CLI_SRC)) $(LIBBERTH)
	@mkdir -p $(dir $@)
	$(call say,LINK,$@)$(CC) $(STATIC_LDFLAGS) -o $@ $^ $(CLI_LIBS)

# The daemon's client commands (`berth ps`, `berth logs`, ...), which `berth`
# execs: dynamically linked, because libcurl has no static build here.
$(BINDIR)/berth-client: $(call obj,$(CLIENT_SRC)) $(LIBBERTH)
	@mkdir -p $(dir $@)
	$(call say,LINK,$@)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(CLIENT_LIBS)

$(BINDIR)/berthd: $(call obj,$(DAEMON_SRC) $(PROXY_SRC)) $(LIBIMAGE) $(LIBBERTH)
	@mkdir -p $(dir $@)
	$(call say,LINK,$@)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS) $(BERTHD_LIBS)

$(BINDIR)/berth-runtime: $(call obj,$(HELPER_SRC)) $(LIBBERTH)
	@mkdir -p $(dir $@)
	$(call say,LINK,$@)$(CC) $(STATIC_LDFLAGS) -o $@ $^ -ljansson -lseccomp -lcap $(NL_LIBS)

# `berth-image`: import and pull images for the static `berth` (which execs it).
$(BINDIR)/berth-image: $(call obj,$(IMAGE_TOOL_SRC)) $(LIBIMAGE) $(LIBBERTH)
	@mkdir -p $(dir $@)
	$(call say,LINK,$@)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS) $(IMAGE_LIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(LIBIMAGE) $(LIBBERTH)
	@mkdir -p $(dir $@)
	$(call say,LINK,$@)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS) $(IMAGE_LIBS) -lcmocka

# A static pattern rule: explicit, so it wins over the unit tests' pattern.
$(TOOL_BINS): $(BUILD)/tests/%: $(BUILD)/obj/tests/tools/%.o
	@mkdir -p $(dir $@)
	$(call say,LINK,$@)$(CC) $(ALL_LDFLAGS) -o $@ $^ -ljansson
# The client's pure helpers (parsers, formatting) are tested without its main().
$(BUILD)/tests/test_client: $(BUILD)/obj/tests/unit/test_client.o \
		$(call obj,$(filter-out src/client/main.c,$(CLIENT_SRC))) $(LIBBERTH)
	@mkdir -p $(dir $@)
	$(call say,LINK,$@)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS) $(CLIENT_LIBS) -lcmocka

# test_sandbox checks the sandbox's pure parts: sessions' scripts and text.
$(BUILD)/tests/test_sandbox: $(BUILD)/obj/tests/unit/test_sandbox.o \
		$(call obj,src/sandbox/session.c src/sandbox/text.c) $(LIBBERTH)
	@mkdir -p $(dir $@)
	$(call say,LINK,$@)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS) -lcmocka

# test_hooks checks berthd's webhook rules: it links that object and libcurl.
$(BUILD)/tests/test_hooks: $(BUILD)/obj/tests/unit/test_hooks.o $(call obj,src/daemon/hooks.c) \
		$(LIBBERTH)
	@mkdir -p $(dir $@)
	$(call say,LINK,$@)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS) $(DAEMON_LIBS) -lcmocka

# A fuzz target with a main() that replays files (tests/fuzz/replay.c).
$(BUILD)/obj/tests/fuzz/replay-%.o: tests/fuzz/replay.c
	@mkdir -p $(dir $@)
	$(call say,CC,$<)$(CC) $(ALL_CFLAGS) -DFUZZ_CORPUS='"$(abspath tests/fuzz/corpus)/$*"' -c -o $@ $<

$(FUZZ_REPLAYS): $(BUILD)/tests/%: $(BUILD)/obj/tests/fuzz/%.o $(BUILD)/obj/tests/fuzz/replay-%.o \
		$(LIBIMAGE) $(LIBBERTH)
	@mkdir -p $(dir $@)
	$(call say,LINK,$@)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS) $(IMAGE_LIBS)

# The same targets linked with libFuzzer's main (SANITIZE=fuzz builds only).
$(BUILD)/fuzz/%: $(BUILD)/obj/tests/fuzz/%.o $(LIBIMAGE) $(LIBBERTH)
	@mkdir -p $(dir $@)
	$(call say,LINK,$@)$(CC) $(ALL_LDFLAGS) -fsanitize=fuzzer -o $@ $^ $(LIBS) $(IMAGE_LIBS)

fuzz-targets: $(patsubst %,$(BUILD)/fuzz/%,$(FUZZ_NAMES))

# make fuzz [FUZZ=fuzz_proxy] [FUZZ_SECONDS=60]: each target under libFuzzer
# (clang, ASan, UBSan), starting from its committed corpus; new inputs go to
# build/fuzz/corpus/NAME/, a crash's input to build/fuzz/. scripts/fuzz.sh.
FUZZ ?= $(FUZZ_NAMES)
FUZZ_SECONDS ?= 60
fuzz:
	$(Q)scripts/install-deps.sh --fuzz
	$(Q)$(MAKE) --no-print-directory CC=clang SANITIZE=fuzz BUILD=build/fuzz \
		BINDIR=build/fuzz/bin CFLAGS="-O1 -g" fuzz-targets
	$(Q)FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh build/fuzz $(FUZZ)

# Root filesystems for tests and the demo, built from busybox-static and the
# project's own static test programs (no network needed).
rootfs:
	$(Q)scripts/mkrootfs.sh build/rootfs

# test_runtime starts real containers: it needs the helper and the test root.
unit: $(UNIT_BINS) $(FUZZ_REPLAYS) $(PROGRAMS) rootfs
	$(Q)BERTH_RUNTIME_HELPER=$(abspath $(BINDIR))/berth-runtime scripts/run-unit.sh $(UNIT_BINS) \
		$(FUZZ_REPLAYS)

e2e: all rootfs
	$(Q)BERTH_BIN=$(abspath $(BINDIR)) BERTH_TOOLS=$(abspath $(BUILD))/tests tests/e2e/run.sh

# Debian packages (scripts/install-deps.sh does nothing when all are there).
deps:
	$(Q)scripts/install-deps.sh

test: deps
	$(Q)$(MAKE) --no-print-directory unit e2e

# The sanitizer suite: a separate build tree, the same tests.
asan:
	$(Q)$(MAKE) --no-print-directory SANITIZE=1 BUILD=build/asan BINDIR=build/asan/bin \
		CFLAGS="-O1 -g" test

# The benchmarks' own programs (bench/*.c but the standalone cgroup-move.c):
# a load generator that speaks over unix sockets too, a registry filler, and
# the runtime's helper exec'd against cloned by the zygote.
BENCH_PROGS := $(BUILD)/bench/loadgen $(BUILD)/bench/fill-registry $(BUILD)/bench/spawn

$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(LIBBERTH)
	@mkdir -p $(dir $@)
	$(call say,LINK,$@)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

bench-progs: $(BENCH_PROGS)

# make bench BENCH=daemon runs one group (bench/run.sh --help lists them).
bench: all rootfs bench-progs
	$(Q)BERTH_BIN=$(abspath $(BINDIR)) BERTH_BENCH_PROGS=$(abspath $(BUILD))/bench \
		bench/run.sh $(BENCH)

demo: deps
	$(Q)$(MAKE) --no-print-directory all rootfs
	$(Q)BERTH_BIN=$(abspath $(BINDIR)) scripts/demo.sh

format:
	$(Q)clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	$(Q)clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h')

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/libexec/berth
	install -m 0755 $(BINDIR)/berth $(BINDIR)/berthd $(DESTDIR)$(PREFIX)/bin/
	install -m 0755 $(BINDIR)/berth-runtime $(BINDIR)/berth-client $(BINDIR)/berth-image \
		$(DESTDIR)$(PREFIX)/libexec/berth/

clean:
	rm -rf build bin

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
