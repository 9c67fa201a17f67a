#!/bin/bash
# Images from local sources: OCI image layouts (gzip, zstd, uncompressed
# layers; whiteouts, an opaque directory, owners, setuid bits, device nodes,
# hard links, xattrs), a `docker save` archive, many layers, the image
# config's rules, shared layers between containers, and refused layers.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/images.sh"

WORK=$STATE/work
mkdir -p "$WORK"
irun() { "$BERTH_BIN/berth" run --state-dir "$STATE" "$@"; }

# Layer 1: the test root plus files the next layer deletes or hides.
L1=$WORK/l1
cp -a "$ROOTFS" "$L1"
mkdir -p "$L1/data" "$L1/opq" "$L1/hide"
echo keep >"$L1/data/keep"
echo gone >"$L1/gone"
echo x >"$L1/opq/x"
echo y >"$L1/opq/y"
echo inside >"$L1/hide/inside"
# Layer 2: whiteouts, an opaque directory, and what tar must keep.
L2=$WORK/l2
mkdir -p "$L2/opq" "$L2/hl" "$L2/devs" "$L2/bin" "$L2/data"
touch "$L2/.wh.gone" "$L2/.wh.hide" "$L2/opq/.wh..wh..opq"
echo z >"$L2/opq/z"
echo suid >"$L2/bin/suid" && chmod 4755 "$L2/bin/suid"
echo owned >"$L2/data/owned" && chown 1000:1000 "$L2/data/owned"
echo link >"$L2/hl/a" && ln "$L2/hl/a" "$L2/hl/b"
mknod "$L2/devs/null" c 1 3
echo attr >"$L2/data/attr" && setfattr -n user.berth -v hello "$L2/data/attr"

CFG='{"Entrypoint": ["/bin/sh", "-c"], "Cmd": ["echo from-cmd"],
      "Env": ["PATH=/usr/bin:/bin", "GREETING=image", "KEEP=1"], "WorkingDir": "/data",
      "ExposedPorts": {"8080/tcp": {}}}'
COMPRESS=gzip mk_oci_layout "$WORK/layout" v1 "$CFG" "$L1" "$L2" >/dev/null
COMPRESS=zstd mk_oci_layout "$WORK/layout" zst "$CFG" "$L1" "$L2" >/dev/null
COMPRESS=none mk_oci_layout "$WORK/layout" plain '{"User": "app", "Cmd": ["id"]}' "$L1" >/dev/null

echo "-- the image config"
check_eq "no command: ENTRYPOINT + CMD" "from-cmd" "$(irun --image "$WORK/layout:v1" 2>&1)"
out=$(irun --image "$WORK/layout:v1" -- 'echo $GREETING $KEEP; pwd' 2>&1)
check_eq "a command replaces CMD, after ENTRYPOINT; Env and WorkingDir apply" \
	"image 1
/data" "$out"
check_eq "-e overrides the image's variable" "cli 1" \
	"$(irun --image "$WORK/layout:v1" -e GREETING=cli -- 'echo $GREETING $KEEP' 2>&1)"
check_eq "-w overrides WorkingDir" "/tmp" "$(irun --image "$WORK/layout:v1" -w /tmp -- pwd 2>&1)"
check_eq "User by name from the image's /etc/passwd" "uid=1000(app) gid=1000(app)" \
	"$(irun --image "$WORK/layout:plain" 2>&1)"
check_eq "-u overrides User" "uid=0(root) gid=0(root)" \
	"$(irun --image "$WORK/layout:plain" -u 0:0 2>&1)"

echo "-- layers as overlayfs lower directories"
out=$(irun --image "$WORK/layout:v1" -- '
	test -e /gone && echo gone-visible
	test -e /hide && echo hide-visible
	echo opq: $(ls /opq)
	cat /data/keep
	stat -c "%a %u:%g" /bin/suid /data/owned
	stat -c "%i %h" /hl/a /hl/b | uniq | wc -l
	stat -c "%h" /hl/a
	stat -c "%F %t:%T" /devs/null' 2>&1)
check_not_contains "a whiteout deletes a file of the layer below" "gone-visible" "$out"
check_not_contains "a whiteout deletes a directory of the layer below" "hide-visible" "$out"
check_contains "an opaque directory hides the layer below's entries" "opq: z" "$out"
check_contains "files of the lower layer stay" "keep" "$out"
check_contains "setuid bit kept" "4755 0:0" "$out"
check_contains "owner kept" "644 1000:1000" "$out"
check_contains "hard links share an inode" "$(printf '1\n2')" "$out"
check_contains "device node kept" "character special file 1:3" "$out"
layer=$(grep -l . "$STATE"/images/layers/sha256/*/data/attr 2>/dev/null | head -1)
check_eq "xattr kept in the unpacked layer" "hello" \
	"$(getfattr --only-values -n user.berth "$layer" 2>/dev/null)"
opq=$(dirname "$(ls -d "$STATE"/images/layers/sha256/*/opq/z | head -1)")
check_eq "opaque directory: trusted.overlay.opaque=y" "y" \
	"$(getfattr --only-values -n trusted.overlay.opaque "$opq" 2>/dev/null)"
check_eq "whiteout: a 0:0 character device" "character special file 0:0" \
	"$(stat -c '%F %t:%T' "$(dirname "$opq")/gone")"

echo "-- compression and archives"
check_eq "zstd layers" "from-cmd" "$(irun --image "$WORK/layout:zst" 2>&1)"
mk_docker_save "$WORK/saved.tar" "$CFG" "$L1" "$L2"
check_eq "docker save archive" "from-cmd" "$(irun --image "$WORK/saved.tar" 2>&1)"
check_contains "docker save archive: whiteouts" "opq: z" \
	"$(irun --image "$WORK/saved.tar" -- 'echo opq: $(ls /opq)' 2>&1)"
check_eq "its RepoTags name the image, as docker load does" "from-cmd" \
	"$(irun --image test/app:1 2>&1)"
# An archive is read once: unchanged (size, mtime, inode) it comes from the store.
cp "$WORK/saved.tar" "$WORK/once.tar"
check_eq "archive: first run imports it" "from-cmd" "$(irun --image "$WORK/once.tar" 2>&1)"
mtime=$(stat -c %y "$WORK/once.tar")
dd if=/dev/zero of="$WORK/once.tar" bs=1k count=4 conv=notrunc status=none
touch -d "$mtime" "$WORK/once.tar"
check_eq "archive: unchanged, it is not read again" "from-cmd" "$(irun --image "$WORK/once.tar" 2>&1)"
touch "$WORK/once.tar"
check_contains "archive: changed, it is read again" "cannot be used" \
	"$(irun --image "$WORK/once.tar" 2>&1)"
gzip -c "$WORK/saved.tar" >"$WORK/saved.tar.gz"
check_eq "compressed archive" "from-cmd" "$(irun --image "$WORK/saved.tar.gz" 2>&1)"

# `docker save` of two images, by hand: two configs over shared and own layers.
M=$WORK/multi && mkdir -p "$M/l1" "$M/l2" "$WORK/with:colon"
read -r d1 _ <<<"$(mk_layer "$L1" "$M/l1/layer.tar" none)"
read -r d2 _ <<<"$(mk_layer "$L2" "$M/l2/layer.tar" none)"
jq -c -n --argjson c "$CFG" --arg a "$d1" --arg b "$d2" '{architecture: "amd64", os: "linux",
	config: $c, rootfs: {type: "layers", diff_ids: [$a, $b]}}' >"$M/app.json"
jq -c -n --arg a "$d1" '{architecture: "amd64", os: "linux",
	config: {Cmd: ["sh", "-c", "echo other; test -e /gone && echo gone-is-there"],
	         Env: ["PATH=/usr/bin:/bin"]},
	rootfs: {type: "layers", diff_ids: [$a]}}' >"$M/other.json"
echo '[{"Config": "app.json", "RepoTags": ["team/app:1.2"], "Layers": ["l1/layer.tar", "l2/layer.tar"]},
       {"Config": "other.json", "RepoTags": ["team/other:2"], "Layers": ["l1/layer.tar"]}]' \
	>"$M/manifest.json"
ARCH="$WORK/with:colon/multi.tar"
tar -C "$M" -cf "$ARCH" manifest.json app.json other.json l1 l2
check_contains "an archive of several images without a tag: which tags it has" \
	"it holds 2 images; pick one with \`$ARCH:TAG\` (there are: \`team/app:1.2\`, \`team/other:2\`)" \
	"$(irun --image "$ARCH" 2>&1)"
check_eq "ARCHIVE:TAG picks one (colons in the path and the tag)" "from-cmd" \
	"$(irun --image "$ARCH:team/app:1.2" 2>&1)"
check_eq "and the other, with its own layers" "other
gone-is-there" "$(irun --image "$ARCH:team/other:2" 2>&1)"
check_eq "the tag as the same reference in another spelling" "other
gone-is-there" "$(irun --image "$ARCH:docker.io/team/other:2" 2>&1)"
check_contains "a tag it does not have: which tags it has" \
	"no image tagged \`team/nope:1\` (there are: \`team/app:1.2\`, \`team/other:2\`)" \
	"$(irun --image "$ARCH:team/nope:1" 2>&1)"
check_eq "the chosen image's RepoTags name it" "other
gone-is-there" "$(irun --image team/other:2 2>&1)"
check_true "berth image import ARCHIVE:TAG prints the image's digest" grep -qE '^sha256:[0-9a-f]{64}$' \
	<<<"$("$BERTH_BIN/berth" image import --state-dir "$STATE" "$ARCH:team/app:1.2" 2>&1)"
tar -C "$WORK/layout" -cf "$WORK/layout.tar" .
rm -rf "$WORK/one" && mkdir "$WORK/one"
COMPRESS=gzip mk_oci_layout "$WORK/one" only "$CFG" "$L1" >/dev/null
tar -C "$WORK/one" -cf "$WORK/one.tar" .
check_eq "OCI layout in a tar" "from-cmd" "$(irun --image "$WORK/one.tar" 2>&1)"

echo "-- shared layers"
nlayers=$(ls "$STATE/images/layers/sha256" | wc -l)
irun --name a1 --image "$WORK/layout:v1" -- 'sleep 30' &
p1=$!
irun --name a2 --image "$WORK/layout:v1" -- 'sleep 30' &
p2=$!
wait_for "two containers" 50 test -d "$STATE/containers/a2/upper"
wait_for "two containers" 50 test -d "$STATE/containers/a1/upper"
check_eq "a second container of the image unpacks nothing" "$nlayers" \
	"$(ls "$STATE/images/layers/sha256" | wc -l)"
check_eq "its writable layer is empty (no copy)" "0" \
	"$(find "$STATE/containers/a2/upper" -mindepth 1 | wc -l)"
kill -TERM $p1 $p2
wait $p1 $p2

echo "-- many layers (more than one page of mount options)"
many=()
for i in $(seq 1 45); do
	mkdir -p "$WORK/many/$i/many"
	echo "$i" >"$WORK/many/$i/many/$i"
	many+=("$WORK/many/$i")
done
COMPRESS=none mk_oci_layout "$WORK/layout" many '{"Cmd": ["sh", "-c", "ls /many | wc -l"]}' \
	"$L1" "${many[@]}" >/dev/null
check_eq "46 layers" "45" "$(irun --image "$WORK/layout:many" 2>&1 | tr -d ' ')"

echo "-- prune"
bimage() { "$BERTH_BIN/berth" image "$1" --state-dir "$STATE" "${@:2}"; }
count_layers() { ls "$STATE/images/layers/sha256" | wc -l; }
# Started directly (not through a function), so that $! is berth; on SIGTERM the
# container lists its layers' files, then ends.
"$BERTH_BIN/berth" run --state-dir "$STATE" --name keeper --image "$WORK/layout:many" -- \
	sh -c 'trap "ls /many | wc -l; exit 0" TERM; while :; do sleep 0.1; done' >"$WORK/keeper.out" &
kp=$!
wait_for "the container's record" 50 test -s "$STATE/containers/keeper/init.json"
before=$(count_layers)
many=oci:$(realpath "$WORK/layout"):many
check_contains "ls shows the image's name" "$many" "$(bimage ls)"
bimage rm "$many"
check_not_contains "rm forgets it" "$many" "$(bimage ls)"
out=$(bimage prune --json)
check_eq "prune keeps the layers a running container uses" "$before" "$(count_layers)"
check_eq "and says it knew them" "false" "$(jq -r .layersKept <<<"$out")"
kill -TERM $kp
wait $kp
check_eq "the container still read them after the prune" "45" "$(tr -d ' ' <"$WORK/keeper.out")"
out=$(bimage prune --json)
check_eq "once it is gone, its 45 layers go" $((before - 45)) "$(count_layers)"
check_eq "prune says so" 45 "$(jq -r .layers <<<"$out")"
check_eq "images still named keep theirs" "from-cmd" "$(irun --image "$WORK/layout:v1" 2>&1)"
check_eq "the removed image comes back from its layout" "45" \
	"$(irun --image "$WORK/layout:many" 2>&1 | tr -d ' ')"

echo "-- refused layers and bad sources"
evil() { # NAME TAR: a layout whose only layer is TAR
	local d=$WORK/evil-$1 diff
	rm -rf "$d" && mkdir -p "$d/blobs/sha256"
	diff=$(sha256sum "$2" | cut -d' ' -f1)
	cp "$2" "$d/blobs/sha256/$diff"
	jq -c -n --arg d "sha256:$diff" \
		'{architecture: "amd64", os: "linux", config: {Cmd: ["true"]}, rootfs: {type: "layers", diff_ids: [$d]}}' >"$d/c"
	local cd=$(sha256sum "$d/c" | cut -d' ' -f1)
	mv "$d/c" "$d/blobs/sha256/$cd"
	jq -c -n --arg c "sha256:$cd" --arg l "sha256:$diff" --argjson s "$(stat -c %s "$2")" \
		'{schemaVersion: 2, config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $c, size: 1},
		  layers: [{mediaType: "application/vnd.oci.image.layer.v1.tar", digest: $l, size: $s}]}' >"$d/m"
	local md=$(sha256sum "$d/m" | cut -d' ' -f1)
	mv "$d/m" "$d/blobs/sha256/$md"
	echo '{"imageLayoutVersion": "1.0.0"}' >"$d/oci-layout"
	jq -c -n --arg m "sha256:$md" '{schemaVersion: 2, manifests: [{mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $m, size: 1}]}' >"$d/index.json"
}
mkdir -p "$WORK/t/a/b" "$WORK/t2/link"
echo evil >"$WORK/t/evil"
(cd "$WORK/t/a/b" && tar -P -cf "$WORK/dotdot.tar" ../../evil)
evil dotdot "$WORK/dotdot.tar"
out=$(irun --image "$WORK/evil-dotdot" -- true 2>&1)
check_contains "a layer entry with .. is refused" "\`..\` in a path is refused" "$out"
check_true "nothing written outside the layer" test ! -e "$STATE/images/layers/evil"
tar -P -cf "$WORK/abs.tar" "$WORK/t/evil"
evil abs "$WORK/abs.tar"
check_contains "an absolute entry is refused" "absolute paths are refused" \
	"$(irun --image "$WORK/evil-abs" -- true 2>&1)"
ln -s /tmp "$WORK/t/link"
echo x >"$WORK/t2/link/escaped"
tar -cf "$WORK/symlink.tar" -C "$WORK/t" link -C "$WORK/t2" link/escaped
evil symlink "$WORK/symlink.tar"
check_contains "an entry under a symlink is refused" "among its parents, which is refused" \
	"$(irun --image "$WORK/evil-symlink" -- true 2>&1)"
check_true "nothing written through the symlink" test ! -e /tmp/escaped
check_eq "no half-unpacked layer left" "" "$(ls "$STATE/images/tmp")"
out=$(irun --image "$WORK/layout:nope" 2>&1)
check_contains "an unknown tag names the tags there are" "no image tagged \`nope\` (there are:" "$out"
check_eq "exit status 125" 125 "$(irun --image "$WORK/layout:nope" >/dev/null 2>&1; echo $?)"
check_contains "a missing path" "No such file or directory" \
	"$(irun --image ./no/such/dir 2>&1)"
check_contains "a bad reference" "is not a valid name component" \
	"$(irun --image 'Bad/Ref:x' 2>&1)"
check_contains "a root directory still needs a command" "has no command of its own" \
	"$(irun --image "$ROOTFS" 2>&1)"
check_eq "a root directory with --image works as --rootfs" "ok" \
	"$(irun --image "$ROOTFS" -- echo ok 2>&1)"
check_contains "--rootfs and --image together" "give one of --rootfs and --image" \
	"$(irun --rootfs "$ROOTFS" --image "$ROOTFS" -- true 2>&1)"

echo "-- decompression bombs: bounds on what a layer or an archive unpacks to"
# 64 MiB of zeros: ~64 KiB gzip'd, over a 16 MiB bound once decompressed.
mkdir -p "$WORK/bomb" && head -c 64M /dev/zero >"$WORK/bomb/zeros"
COMPRESS=gzip mk_oci_layout "$WORK/layout" bomb '{"Cmd": ["true"]}' "$L1" "$WORK/bomb" >/dev/null
layers_before=$(ls "$STATE/images/layers/sha256" | wc -l)
out=$(BERTH_IMAGE_MAX_LAYER_BYTES=16M irun --image "$WORK/layout:bomb" 2>&1)
check_contains "a layer beyond BERTH_IMAGE_MAX_LAYER_BYTES is refused" \
	"more than 16 MiB, the bound of a layer (BERTH_IMAGE_MAX_LAYER_BYTES): refused" "$out"
check_eq "exit status 125" 125 \
	"$(BERTH_IMAGE_MAX_LAYER_BYTES=16M irun --image "$WORK/layout:bomb" >/dev/null 2>&1; echo $?)"
check_eq "nothing half-unpacked in tmp/" "" "$(ls "$STATE/images/tmp")"
check_eq "no layer added (the base layer was there)" "$layers_before" \
	"$(ls "$STATE/images/layers/sha256" | wc -l)"
check_not_contains "and no image recorded" ":bomb" "$(bimage ls 2>&1)"
mkdir -p "$WORK/entries" && touch "$WORK/entries/"{1..20}
COMPRESS=gzip mk_oci_layout "$WORK/layout" entries '{"Cmd": ["true"]}' "$WORK/entries" >/dev/null
check_contains "entries beyond BERTH_IMAGE_MAX_LAYER_ENTRIES" \
	"more than 10 entries, the bound of a layer (BERTH_IMAGE_MAX_LAYER_ENTRIES): refused" \
	"$(BERTH_IMAGE_MAX_LAYER_ENTRIES=10 bimage import "$WORK/layout:entries" 2>&1)"
check_contains "an archive beyond BERTH_IMAGE_MAX_ARCHIVE_BYTES" \
	"holds more than 1 MiB once decompressed, the bound of an archive (BERTH_IMAGE_MAX_ARCHIVE_BYTES): refused" \
	"$(BERTH_IMAGE_MAX_ARCHIVE_BYTES=1M bimage import "$WORK/saved.tar.gz" 2>&1)"
check_eq "nothing of it left in tmp/" "" "$(ls "$STATE/images/tmp")"
check_contains "a bad bound is named" "BERTH_IMAGE_MAX_LAYER_BYTES: " \
	"$(BERTH_IMAGE_MAX_LAYER_BYTES=lots irun --image "$WORK/layout:v1" 2>&1)"
check_eq "within the default bounds the same image runs" "ok" \
	"$(irun --image "$WORK/layout:bomb" -- echo ok 2>&1)"

echo "-- berthd: the image's Labels under the class's and the start's"
COMPRESS=none mk_oci_layout "$WORK/layout" labeled \
	'{"Cmd": ["sleep", "60"], "Labels": {"app": "image", "team": "core"}}' "$L1" >/dev/null
SOCK=$STATE/berth.sock
cat >"$STATE/berth.jsonc" <<JSON
{
  "containers": [
    {"class_name": "Labeled", "image": "$WORK/layout:labeled", "labels": {"app": "class"},
     "enableInternet": false},
  ],
  "berth": {"state_dir": "$STATE", "api": {"socket": "$SOCK"}},
}
JSON
out=$(BERTH_IMAGE_MAX_LAYER_ENTRIES=0 timeout 10 "$BERTH_BIN/berthd" --config "$STATE/berth.jsonc" 2>&1)
check_eq "berthd with a bad bound does not start" 1 "$?"
check_contains "and names it" "BERTH_IMAGE_MAX_LAYER_ENTRIES: " "$out"
"$BERTH_BIN/berthd" --config "$STATE/berth.jsonc" >"$STATE/berthd.log" 2>&1 &
BERTHD=$!
wait_for "the API" 50 test -S "$SOCK"
curl -s --unix-socket "$SOCK" -X POST -d '{"labels": {"tier": "start"}}' \
	http://b/v1/classes/Labeled/instances/l/start >/dev/null
check_eq "the record's labels: image < class < start" '{"app":"class","team":"core","tier":"start"}' \
	"$(curl -s --unix-socket "$SOCK" http://b/v1/classes/Labeled/instances/l | jq -c .labels)"
kill -TERM $BERTHD
wait $BERTHD
check_eq "berthd stops cleanly" 0 "$?"

finish
