# Test images made by the tests themselves (sourced by tests/e2e/test_images*.sh):
# OCI image layouts and `docker save` archives from plain directories, with
# GNU tar, sha256sum and jq.

# mk_layer DIR OUT COMPRESSION: a layer tar of DIR (owners, modes, xattrs,
# device nodes and hard links as they are), compressed with none|gzip|zstd.
# Prints "DIFF_ID DIGEST SIZE MEDIA_TYPE".
mk_layer() {
	local dir=$1 out=$2 comp=$3 diff mt
	tar --xattrs --numeric-owner --sort=name --mtime=@1700000000 -C "$dir" -cf "$out.tar" .
	diff=$(sha256sum "$out.tar" | cut -d' ' -f1)
	case $comp in
	gzip) gzip -n -c "$out.tar" >"$out"; mt=application/vnd.oci.image.layer.v1.tar+gzip ;;
	zstd) zstd -q -c "$out.tar" >"$out"; mt=application/vnd.oci.image.layer.v1.tar+zstd ;;
	*) cp "$out.tar" "$out"; mt=application/vnd.oci.image.layer.v1.tar ;;
	esac
	rm -f "$out.tar"
	echo "sha256:$diff sha256:$(sha256sum "$out" | cut -d' ' -f1) $(stat -c %s "$out") $mt"
}

# mk_oci_layout OUT TAG CONFIG_JSON LAYER_DIR...: an OCI image layout at OUT
# (added to one that exists) whose image TAG has these layers (base first)
# and CONFIG_JSON as its config's "config". $COMPRESS: none|gzip|zstd.
mk_oci_layout() {
	local out=$1 tag=$2 cfg=$3 tmp ids='[]' descs='[]' line diff dg size mt
	shift 3
	mkdir -p "$out/blobs/sha256"
	tmp=$(mktemp -d)
	for d in "$@"; do
		line=$(mk_layer "$d" "$tmp/layer" "${COMPRESS:-gzip}")
		read -r diff dg size mt <<<"$line"
		mv "$tmp/layer" "$out/blobs/sha256/${dg#sha256:}"
		ids=$(jq -c --arg d "$diff" '. + [$d]' <<<"$ids")
		descs=$(jq -c --arg d "$dg" --argjson s "$size" --arg m "$mt" \
			'. + [{mediaType: $m, digest: $d, size: $s}]' <<<"$descs")
	done
	jq -c -n --argjson c "$cfg" --argjson ids "$ids" \
		'{architecture: "amd64", os: "linux", config: $c, rootfs: {type: "layers", diff_ids: $ids}}' \
		>"$tmp/config"
	dg=sha256:$(sha256sum "$tmp/config" | cut -d' ' -f1)
	size=$(stat -c %s "$tmp/config")
	mv "$tmp/config" "$out/blobs/sha256/${dg#sha256:}"
	jq -c -n --arg d "$dg" --argjson s "$size" --argjson l "$descs" \
		'{schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
		  config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $d, size: $s},
		  layers: $l}' >"$tmp/manifest"
	dg=sha256:$(sha256sum "$tmp/manifest" | cut -d' ' -f1)
	size=$(stat -c %s "$tmp/manifest")
	mv "$tmp/manifest" "$out/blobs/sha256/${dg#sha256:}"
	echo '{"imageLayoutVersion": "1.0.0"}' >"$out/oci-layout"
	[ -f "$out/index.json" ] || echo '{"schemaVersion": 2, "manifests": []}' >"$out/index.json"
	jq -c --arg d "$dg" --argjson s "$size" --arg t "$tag" \
		'.manifests += [{mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $d,
		  size: $s, annotations: {"org.opencontainers.image.ref.name": $t}}]' \
		"$out/index.json" >"$tmp/index" && mv "$tmp/index" "$out/index.json"
	rm -rf "$tmp"
	echo "$dg"
}

# mk_docker_save OUT.tar CONFIG_JSON LAYER_DIR...: a `docker save` style archive.
mk_docker_save() {
	local out=$1 cfg=$2 tmp ids='[]' files='[]' line diff dg size mt i=0
	shift 2
	tmp=$(mktemp -d)
	mkdir -p "$tmp/a"
	for d in "$@"; do
		i=$((i + 1))
		line=$(mk_layer "$d" "$tmp/layer" none)
		read -r diff dg size mt <<<"$line"
		mkdir -p "$tmp/a/l$i"
		mv "$tmp/layer" "$tmp/a/l$i/layer.tar"
		ids=$(jq -c --arg d "$diff" '. + [$d]' <<<"$ids")
		files=$(jq -c --arg f "l$i/layer.tar" '. + [$f]' <<<"$files")
	done
	jq -c -n --argjson c "$cfg" --argjson ids "$ids" \
		'{architecture: "amd64", os: "linux", config: $c, rootfs: {type: "layers", diff_ids: $ids}}' \
		>"$tmp/a/config.json"
	jq -c -n --argjson l "$files" \
		'[{Config: "config.json", RepoTags: ["test/app:1"], Layers: $l}]' >"$tmp/a/manifest.json"
	tar -C "$tmp/a" -cf "$out" .
	rm -rf "$tmp"
}
