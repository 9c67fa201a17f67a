#!/bin/bash
# Image pulls: pull + unpack of a ~100 MiB multi-layer image from a registry
# on loopback (Debian's docker-registry), `berth-image pull` against
# `skopeo copy` + `umoci unpack` of the same image in the same run; then the
# cold start of a container from the pulled image, and a second one (shared
# layers: nothing copied). Rounds alternate; figures are medians.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
bin=${BERTH_BIN:-$root/bin}
rootfs=$root/build/rootfs/test
work=$root/build/bench/images
rounds=${BENCH_IMAGE_ROUNDS:-3}

for tool in docker-registry skopeo umoci jq; do
	command -v "$tool" >/dev/null || { echo "bench: $tool is missing (run scripts/install-deps.sh)" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "bench: needs root" >&2; exit 1; }
[ -x "$rootfs/bin/sh" ] || { echo "bench: no test root at $rootfs (make rootfs)" >&2; exit 1; }
. tests/e2e/images.sh

rm -rf "$work"
mkdir -p "$work"
port=$(((RANDOM % 20000) + 30000))
while (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; do port=$((port + 1)); done
cat >"$work/registry.yml" <<YML
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $work/registry}}
http: {addr: 127.0.0.1:$port}
YML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry=$!
trap 'kill $registry 2>/dev/null; wait 2>/dev/null; [ -n "${BENCH_KEEP:-}" ] || rm -rf "$work"' EXIT
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/v2/" && break; sleep 0.1; done

# ~100 MiB in 5 layers: the test root, then 4 layers of 36 MiB each:
# incompressible data in 256 KiB files (24 MiB), and 12 MiB of text in 1000 files.
layers=("$rootfs")
for i in 1 2 3 4; do
	d=$work/src/l$i
	mkdir -p "$d/data$i/bin" "$d/data$i/text"
	for f in $(seq 96); do head -c $((256 << 10)) /dev/urandom >"$d/data$i/bin/$f"; done
	awk -v d="$d/data$i/text" -v l="$i" 'BEGIN {
		for (f = 1; f <= 1000; f++) {
			fn = d "/" f
			for (n = 0; n < 190; n++)
				print "layer " l " file " f " line " n ": the quick brown fox jumps over the lazy dog" > fn
			close(fn)
		}
	}'
	layers+=("$d")
done
COMPRESS=gzip mk_oci_layout "$work/layout" bench '{"Cmd": ["/bin/true"]}' "${layers[@]}" >/dev/null
skopeo copy -q --dest-tls-verify=false "oci:$work/layout:bench" "docker://127.0.0.1:$port/bench/img:1"
ref=127.0.0.1:$port/bench/img:1
size=$(du -sm "$work/layout/blobs" | cut -f1)

now() { date +%s.%N; }
: >"$work/t.berth"
: >"$work/t.peer"
for ((r = 0; r < rounds; r++)); do
	rm -rf "$work/state" "$work/oci" "$work/bundle"
	sync
	t0=$(now)
	"$bin/berth-image" pull -q --state-dir "$work/state" "$ref" >/dev/null
	t1=$(now)
	echo "$t1 - $t0" | bc >>"$work/t.berth"
	sync
	t0=$(now)
	skopeo copy -q --src-tls-verify=false "docker://$ref" "oci:$work/oci:bench" >/dev/null
	umoci unpack --image "$work/oci:bench" "$work/bundle" >/dev/null 2>&1
	t1=$(now)
	echo "$t1 - $t0" | bc >>"$work/t.peer"
done
median() { sort -g "$1" | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
b=$(median "$work/t.berth")
p=$(median "$work/t.peer")

# Cold start from the pulled image, then a second container beside it.
t0=$(now)
"$bin/berth" run --state-dir "$work/state" --name cold --image "$ref" -- /bin/true
t1=$(now)
cold=$(echo "($t1 - $t0) * 1000" | bc)
"$bin/berth" run --state-dir "$work/state" --name first --image "$ref" -- sleep 5 &
first=$!
for _ in $(seq 50); do [ -d "$work/state/containers/first/upper" ] && break; sleep 0.1; done
layers_before=$(ls "$work/state/images/layers/sha256" | wc -l)
t0=$(now)
"$bin/berth" run --state-dir "$work/state" --name second --image "$ref" -- /bin/true
t1=$(now)
second_ms=$(echo "($t1 - $t0) * 1000" | bc)
copied=$(du -sk "$work/state/containers/first/upper" | cut -f1)
layers_after=$(ls "$work/state/images/layers/sha256" | wc -l)
kill $first 2>/dev/null; wait $first 2>/dev/null || true

echo
echo "image pull + unpack, ${size} MiB compressed, 5 layers, loopback registry, $rounds rounds, medians:"
echo
echo "| skopeo copy + umoci unpack | berth-image pull | speed-up |"
echo "|----------------------------|------------------|----------|"
printf '| %24.2f s | %14.2f s | %7.2fx |\n' "$p" "$b" "$(echo "$p $b" | awk '{print $1/$2}')"
echo
printf 'cold start from the pulled image (berth run --image, one shot): %.0f ms\n' "$cold"
printf 'second container of the image beside the first: %.0f ms; layers unpacked: %s before, %s after;\n' \
	"$second_ms" "$layers_before" "$layers_after"
printf 'the running first container'"'"'s writable layer: %s KiB (nothing copied up)\n' "$copied"
