#!/bin/bash
# Registry pulls against Debian's docker-registry on loopback ports, with
# images pushed by skopeo: a multi-layer image with whiteouts, a manifest
# list, token auth (a token server of our own: busybox httpd, a CGI script
# and openssl), credentials from an auth file, a corrupted blob, a pull
# killed half-way and resumed, and the errors a user meets.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/images.sh"

WORK=$STATE/work
mkdir -p "$WORK"
free_port() {
	local p=$(((RANDOM % 20000) + 30000))
	while (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; do p=$((p + 1)); done
	echo $p
}
PIDS=()
stop_servers() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	cleanup_e2e
}
trap stop_servers EXIT

# start_registry NAME PORT [AUTH_YAML]: docker-registry in the foreground, its own storage.
start_registry() {
	local dir=$WORK/$1
	mkdir -p "$dir"
	{
		echo "version: 0.1"
		echo "log: {level: error}"
		echo "storage: {filesystem: {rootdirectory: $dir/data}, delete: {enabled: true}}"
		echo "http: {addr: 127.0.0.1:$2}"
		[ -n "${3:-}" ] && echo "$3"
	} >"$dir/config.yml"
	docker-registry serve "$dir/config.yml" >"$dir/log" 2>&1 &
	PIDS+=($!)
	wait_for "registry $1" 100 curl -s -o /dev/null "http://127.0.0.1:$2/v2/"
}
push() { # SRC DEST [skopeo options]
	local src=$1 dst=$2
	shift 2
	skopeo copy -q --dest-tls-verify=false "$@" "$src" "docker://$dst" >/dev/null
}
bimg() { "$BERTH_BIN/berth-image" "$1" --state-dir "$STATE" "${@:2}"; }
irun() { "$BERTH_BIN/berth" run --state-dir "$STATE" "$@"; }

PORT=$(free_port)
start_registry open "$PORT"
REG=127.0.0.1:$PORT

# Images: a base layer, then whiteouts and an opaque directory over it.
L1=$WORK/l1
cp -a "$ROOTFS" "$L1"
mkdir -p "$L1/opq" && echo x >"$L1/opq/x" && echo gone >"$L1/gone"
L2=$WORK/l2
mkdir -p "$L2/opq" && touch "$L2/.wh.gone" "$L2/opq/.wh..wh..opq" && echo z >"$L2/opq/z"
CFG='{"Cmd": ["sh", "-c", "echo amd64; ls /opq; test -e /gone || echo no-gone"],
      "Env": ["PATH=/usr/bin:/bin"]}'
COMPRESS=gzip mk_oci_layout "$WORK/layout" v1 "$CFG" "$L1" "$L2" >/dev/null
push "oci:$WORK/layout:v1" "$REG/test/app:v1"

echo "-- pull"
out=$(bimg pull "$REG/test/app:v1" 2>&1)
check_eq "pull succeeds" 0 $?
check_contains "pull prints the manifest digest" "sha256:" "$out"
check_eq "multi-layer image with whiteouts and an opaque directory" "amd64
z
no-gone" "$(irun --image "$REG/test/app:v1" 2>&1)"
check_eq "a second run uses the stored image (no registry needed)" "amd64" \
	"$(irun --image "$REG/test/app:v1" -- echo amd64 2>&1)"
digest=$(bimg pull -q "$REG/test/app:v1" 2>&1)
check_eq "by digest" "amd64" "$(irun --image "$REG/test/app@$digest" -- echo amd64 2>&1)"
check_eq "no partial files left" "" "$(ls "$STATE/images/tmp")"
bimage() { "$BERTH_BIN/berth" image "$1" --state-dir "$STATE" "${@:2}"; }
check_contains "berth image ls lists it" "$REG/test/app:v1" "$(bimage ls)"
check_eq "berth image inspect: its config" "sh" \
	"$(bimage inspect "$REG/test/app:v1" | jq -r '.config.config.Cmd[0]')"
check_eq "berth image inspect: its layers" 2 \
	"$(bimage inspect "$REG/test/app:v1" | jq -r '.layers | length')"
check_eq "berth image pull --quiet: the digest only" "$digest" "$(bimage pull -q "$REG/test/app:v1" 2>&1)"
out=$(bimage pull --json "$REG/test/app:v1" 2>/dev/null)
check_eq "pull --json: the result last" "$digest" "$(tail -n 1 <<<"$out" | jq -r .image)"
check_eq "pull --json: every blob finished (config and two layers)" 3 \
	"$(grep -c '"finished":true' <<<"$out")"
bimage rm "$REG/test/app:v1"
check_not_contains "berth image rm forgets the name" "$REG/test/app:v1" "$(bimage ls)"
check_contains "rm of an unknown name" "no image named \`$REG/test/app:nope\`" \
	"$(bimage rm "$REG/test/app:nope" 2>&1)"
check_eq "the image runs again (pulled again)" "amd64" \
	"$(irun --image "$REG/test/app:v1" -- echo amd64 2>/dev/null)"

echo "-- manifest list"
# The same tag for two platforms; only linux/amd64 runs here.
COMPRESS=gzip mk_oci_layout "$WORK/arm" arm '{"Cmd": ["echo", "arm64"]}' "$L1" >/dev/null
arm=$(jq -r '.manifests[0].digest' "$WORK/arm/index.json")
amd=$(jq -r '.manifests[0].digest' "$WORK/layout/index.json")
cp "$WORK"/arm/blobs/sha256/* "$WORK/layout/blobs/sha256/"
jq -c -n --arg a "$amd" --arg r "$arm" \
	--argjson asz "$(stat -c %s "$WORK/layout/blobs/sha256/${amd#sha256:}")" \
	--argjson rsz "$(stat -c %s "$WORK/layout/blobs/sha256/${arm#sha256:}")" \
	'{schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests: [
	  {mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $r, size: $rsz,
	   platform: {os: "linux", architecture: "arm64"}},
	  {mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $a, size: $asz,
	   platform: {os: "linux", architecture: "amd64"}}]}' >"$WORK/index"
idx=sha256:$(sha256sum "$WORK/index" | cut -d' ' -f1)
cp "$WORK/index" "$WORK/layout/blobs/sha256/${idx#sha256:}"
jq -c --arg d "$idx" --argjson s "$(stat -c %s "$WORK/index")" \
	'.manifests += [{mediaType: "application/vnd.oci.image.index.v1+json", digest: $d, size: $s,
	  annotations: {"org.opencontainers.image.ref.name": "multi"}}]' \
	"$WORK/layout/index.json" >"$WORK/i" && mv "$WORK/i" "$WORK/layout/index.json"
push "oci:$WORK/layout:multi" "$REG/test/multi:1" --all
check_eq "the registry serves a manifest list" "application/vnd.oci.image.index.v1+json" \
	"$(curl -s -H 'Accept: application/vnd.oci.image.index.v1+json' \
		"http://$REG/v2/test/multi/manifests/1" | jq -r .mediaType)"
check_contains "a manifest list resolves to linux/amd64" "amd64" \
	"$(irun --image "$REG/test/multi:1" 2>&1)"

echo "-- errors"
out=$(bimg pull "$REG/test/app:nope" 2>&1)
check_contains "an unknown tag" "\`$REG/test/app:nope\` is not in registry \`$REG\`" "$out"
check_contains "an unknown tag: the registry's words" "MANIFEST_UNKNOWN" "$out"
check_contains "an unknown repository" "is not in registry" \
	"$(bimg pull "$REG/test/nothing:v1" 2>&1)"
closed=$(free_port)
out=$(bimg pull "127.0.0.1:$closed/test/app:v1" 2>&1)
check_contains "an unreachable registry" "Failed to connect to 127.0.0.1 port $closed" "$out"
check_contains "an unreachable registry names the pull" "pull \`127.0.0.1:$closed/test/app:v1\`" "$out"
check_contains "a bad reference" "is not a valid tag" "$(bimg pull "$REG/test/app:-x" 2>&1)"
check_contains "a bad digest" "is not a digest" "$(bimg pull "$REG/test/app@sha256:12" 2>&1)"
out=$(bimg pull "registry.invalid/test/app:v1" 2>&1)
check_contains "a remote registry is reached over HTTPS" "https://registry.invalid/v2/" "$out"
check_eq "berth run: exit status 125 when the image cannot be pulled" 125 \
	"$(irun --image "$REG/test/app:nope" >/dev/null 2>&1; echo $?)"

echo "-- a corrupted blob"
mkdir -p "$WORK/l3" && echo corrupt-me >"$WORK/l3/only-here"
COMPRESS=none mk_oci_layout "$WORK/layout" bad '{"Cmd": ["true"]}' "$L1" "$WORK/l3" >/dev/null
push "oci:$WORK/layout:bad" "$REG/test/bad:1"
# skopeo may have compressed the layers on the way: the registry's manifest says.
layer_of() { # REPO TAG N
	curl -s -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
		-H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
		"http://$REG/v2/$1/manifests/$2" | jq -r ".layers[$3].digest"
}
layer=$(layer_of test/bad 1 1)
data=$WORK/open/data/docker/registry/v2/blobs/sha256/${layer:7:2}/${layer#sha256:}/data
printf 'XXXX' | dd of="$data" bs=1 seek=40 conv=notrunc status=none
out=$(bimg pull "$REG/test/bad:1" 2>&1)
check_contains "a blob that does not match its digest is refused" \
	"content does not match its digest: expected $layer" "$out"
check_true "it is not in the store" test ! -e "$STATE/images/blobs/sha256/${layer#sha256:}"
check_true "nor left as a partial file" test ! -e "$STATE/images/tmp/partial-${layer#sha256:}"

echo "-- a pull killed half-way, resumed"
mkdir -p "$WORK/big"
head -c $((24 << 20)) /dev/urandom >"$WORK/big/random"
COMPRESS=none mk_oci_layout "$WORK/layout" big '{"Cmd": ["true"]}' "$L1" "$WORK/big" >/dev/null
push "oci:$WORK/layout:big" "$REG/test/big:1"
layer=$(layer_of test/big 1 1)
partial=$STATE/images/tmp/partial-${layer#sha256:}
# Started directly, so that $! is berth-image itself.
"$BERTH_BIN/berth-image" pull --state-dir "$STATE" --limit-rate 4M "$REG/test/big:1" \
	>"$WORK/pull1" 2>&1 &
pid=$!
half() { [ "$(stat -c %s "$partial" 2>/dev/null || echo 0)" -gt $((4 << 20)) ]; }
wait_for "some of the big layer" 100 half
kill -KILL "$pid"
wait "$pid" 2>/dev/null
size=$(stat -c %s "$partial")
check_true "killed half-way: the blob is not visible" test ! -e "$STATE/images/blobs/sha256/${layer#sha256:}"
check_true "killed half-way: a partial file stays" test "$size" -gt 0 -a "$size" -lt $((24 << 20))
out=$(bimg pull "$REG/test/big:1" 2>&1)
check_contains "the next pull resumes where the first stopped (a Range request, answered 206)" \
	"${layer:7:12}: 24.0 MiB (resumed at $(awk -v s="$size" 'BEGIN { printf "%.1f", s / 1048576 }') MiB)" "$out"
check_true "the blob is complete and right" \
	test "$(sha256sum "$STATE/images/blobs/sha256/${layer#sha256:}" | cut -d' ' -f1)" = "${layer#sha256:}"

echo "-- two pulls of one image at once"
"$BERTH_BIN/berth-image" pull --state-dir "$STATE/conc" --limit-rate 12M "$REG/test/big:1" \
	>"$WORK/c1" 2>&1 &
c1=$!
"$BERTH_BIN/berth-image" pull --state-dir "$STATE/conc" --limit-rate 12M "$REG/test/big:1" \
	>"$WORK/c2" 2>&1 &
c2=$!
wait $c1
s1=$?
wait $c2
s2=$?
check_eq "both succeed" "0 0" "$s1 $s2"
check_true "the blob is right" \
	test "$(sha256sum "$STATE/conc/images/blobs/sha256/${layer#sha256:}" | cut -d' ' -f1)" = "${layer#sha256:}"
check_eq "each of the 2 layers in one directory" 2 "$(ls "$STATE/conc/images/layers/sha256" | wc -l)"
check_eq "nothing left in tmp/" "" "$(ls "$STATE/conc/images/tmp")"

echo "-- token auth"
TPORT=$(free_port)
TOK=$WORK/token
mkdir -p "$TOK/www/cgi-bin"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$TOK/key.pem" -out "$TOK/cert.pem" \
	-days 1 -subj /CN=berth-test-token >/dev/null 2>&1
# The token CGI: a JWT (RS256, the certificate in x5c) granting what is asked.
cat >"$TOK/www/cgi-bin/token" <<CGI
#!/bin/sh
export PATH=/usr/bin:/bin
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
scope=\$(busybox httpd -d "\$(echo "\$QUERY_STRING" | tr '&' '\n' | sed -n 's/^scope=//p' | head -1)")
echo "\$scope" >> "$TOK/scopes"
access=\$(echo "\$scope" | tr ' ' '\n' | jq -R -s -c 'split("\n") | map(select(. != "") | split(":")
	| {type: .[0], name: (.[1:-1] | join(":")), actions: (.[-1] | split(","))})')
now=\$(date +%s)
ttl=\$(cat "$TOK/ttl" 2>/dev/null || echo 300)
x5c=\$(openssl x509 -in "$TOK/cert.pem" -outform DER | openssl base64 -A)
h=\$(jq -c -n --arg x "\$x5c" '{alg: "RS256", typ: "JWT", x5c: [\$x]}' | tr -d '\n' | b64url)
c=\$(jq -c -n --argjson a "\$access" --argjson n "\$now" --argjson t "\$ttl" '{iss: "berth-test", sub: "berth",
	aud: "berth-registry", exp: (\$n + \$t), nbf: (\$n - 100), iat: \$n, jti: "\(\$n)", access: \$a}' \
	| tr -d '\n' | b64url)
s=\$(printf '%s.%s' "\$h" "\$c" | openssl dgst -sha256 -sign "$TOK/key.pem" | b64url)
printf 'Content-Type: application/json\r\n\r\n{"token": "%s.%s.%s"}\n' "\$h" "\$c" "\$s"
CGI
chmod +x "$TOK/www/cgi-bin/token"
echo "/cgi-bin:berth:s3cret" >"$TOK/httpd.conf"
busybox httpd -f -p "127.0.0.1:$TPORT" -h "$TOK/www" -c "$TOK/httpd.conf" &
PIDS+=($!)
APORT=$(free_port)
start_registry auth "$APORT" "auth: {token: {realm: \"http://127.0.0.1:$TPORT/cgi-bin/token\",
  service: berth-registry, issuer: berth-test, rootcertbundle: $TOK/cert.pem}}"
AREG=127.0.0.1:$APORT
check_eq "the registry asks for a token" 401 \
	"$(curl -s -o /dev/null -w '%{http_code}' "http://$AREG/v2/")"
push "oci:$WORK/layout:v1" "$AREG/private/app:v1" --dest-creds berth:s3cret
out=$(bimg pull "$AREG/private/app:v1" 2>&1)
check_contains "without credentials the token server refuses" \
	"the token server of \`$AREG\` refused a token for repository:private/app:pull (HTTP 401" "$out"
echo '{"auths": {"'"$AREG"'": {"auth": "'"$(printf berth:wrong | base64)"'"}}}' >"$WORK/wrong.json"
check_contains "wrong credentials: refused" "refused a token" \
	"$(bimg pull --auth-file "$WORK/wrong.json" "$AREG/private/app:v1" 2>&1)"
echo '{"auths": {"'"$AREG"'": {"auth": "'"$(printf berth:s3cret | base64)"'"}}}' >"$WORK/auth.json"
out=$(bimg pull --auth-file "$WORK/auth.json" "$AREG/private/app:v1" 2>&1)
check_eq "with credentials from the auth file: a Bearer token, then the pull" 0 $?
check_contains "the token asked for the repository's pull scope" "repository:private/app:pull" \
	"$(cat "$TOK/scopes")"
check_eq "the pulled image runs" "amd64" \
	"$(BERTH_AUTH_FILE=$WORK/auth.json irun --image "$AREG/private/app:v1" -- echo amd64 2>&1)"
# A token that expires during the pull (the registry allows 60 s past exp: these
# live 2 s): one blob at a time, slowly, so a later blob's request gets a 401.
mkdir -p "$WORK/big2" "$WORK/l4"
head -c $((12 << 20)) /dev/urandom >"$WORK/big2/random"
echo small >"$WORK/l4/small"
COMPRESS=none mk_oci_layout "$WORK/layout" expiring '{"Cmd": ["true"]}' "$WORK/big2" "$WORK/l4" >/dev/null
push "oci:$WORK/layout:expiring" "$AREG/private/expiring:1" --dest-creds berth:s3cret
echo -58 >"$TOK/ttl"
: >"$TOK/scopes"
out=$(bimg pull --auth-file "$WORK/auth.json" --max-concurrent-downloads 1 --limit-rate 4M \
	"$AREG/private/expiring:1" 2>&1)
check_eq "a token that expires during a pull is renewed, and the pull goes on" 0 $?
check_eq "the token server was asked twice" 2 "$(grep -c 'repository:private/expiring:pull' "$TOK/scopes")"
rm -f "$TOK/ttl"

echo "-- berthd: a class's image pulled at start, or when an instance first starts"
COMPRESS=gzip mk_oci_layout "$WORK/layout" web '{"Cmd": ["sh", "-c", "env; exec echo-server --port 8080"],
	"Env": ["PATH=/usr/local/bin:/usr/bin:/bin", "FROM_IMAGE=yes", "BOTH=image"],
	"ExposedPorts": {"8080/tcp": {}}}' "$L1" >/dev/null
push "oci:$WORK/layout:web" "$REG/test/web:1"
SOCK=$STATE/berth.sock
cat >"$STATE/berth.jsonc" <<JSON
{
  "containers": [
    {"class_name": "Pulled", "image": "$REG/test/web:1", "envVars": {"BOTH": "class"}},
    {"class_name": "Layout", "image": "$WORK/layout:v1",
     "entrypoint": ["sh", "-c", "echo overridden; sleep 30"]},
    {"class_name": "Missing", "image": "$REG/test/web:nope"},
  ],
  "berth": {"state_dir": "$STATE/d", "api": {"socket": "$SOCK"}},
}
JSON
api() { curl -s --unix-socket "$SOCK" "$@"; }
"$BERTH_BIN/berthd" --config "$STATE/berth.jsonc" >>"$STATE/berthd.log" 2>&1 &
PIDS+=($!)
wait_for "the API" 50 test -S "$SOCK"
wait_for "the class's image" 100 grep -q "class \`Pulled\`: image \`$REG/test/web:1\` ready" \
	"$STATE/berthd.log"
check_contains "berthd pulls a class's image when it starts" \
	"class \`Pulled\`: image \`$REG/test/web:1\` ready" "$(cat "$STATE/berthd.log")"
wait_for "the missing image's warning" 100 grep -q "class \`Missing\`" "$STATE/berthd.log"
check_contains "an image it cannot pull is a warning at start" \
	"class \`Missing\`: image \`$REG/test/web:nope\`: pull" "$(cat "$STATE/berthd.log")"
# The pulls are events too (GET /v1/events, `berth events`).
bev() { timeout 10 "$BERTH_BIN/berth" events --socket "$SOCK" "$@"; }
phases() { # TYPE [events options]: the phases of TYPE events, in order
	bev --json "${@:2}" | jq -r --arg t "$1" 'select(.type == $t) | .data.phase' | tr '\n' ' ' |
		sed 's/ $//'
}
types() { bev --json "$@" | jq -r .type | tr '\n' ' ' | sed 's/ $//'; }
pulled_done() { [ "$(phases image_pull --class Pulled)" = "started done" ]; }
wait_for "the class's pull events" 50 pulled_done
check_eq "the pull at start: started, then done, as the class's events" "started done" \
	"$(phases image_pull --class Pulled)"
check_eq "of no instance" "null null" \
	"$(bev --json --class Pulled | jq -r 'select(.type == "image_pull") | .instance' | tr '\n' ' ' | sed 's/ $//')"
check_eq "done names the image's digest" \
	"$(api "http://b/v1/images/$REG/test/web:1" | jq -r .digest)" \
	"$(bev --json --class Pulled | jq -r 'select(.data.phase == "done") | .data.digest')"
check_true "berth events shows them" grep -qE \
	"^[0-9-]{10}T[0-9:.]{12}Z  image_pull    Pulled image=$REG/test/web:1 phase=started\$" \
	<<<"$(bev --class Pulled)"
missing_failed() { [ "$(phases image_pull --class Missing)" = "started failed" ]; }
wait_for "the missing image's events" 50 missing_failed
check_eq "an unknown tag: started, then failed" "started failed" "$(phases image_pull --class Missing)"
check_contains "failed says why" "\`$REG/test/web:nope\` is not in registry" \
	"$(bev --json --class Missing | jq -r 'select(.data.phase == "failed") | .data.error')"
out=$(api -X POST http://b/v1/classes/Pulled/instances/one/start)
check_contains "the instance starts from it, healthy on the image's exposed port" \
	'"status":"healthy"' "$out"
id=$(sed -n 's/.*"id":"\([0-9a-f]*\)".*/\1/p' <<<"$out")
log=$STATE/d/logs/$id/container.log
check_contains "the image's Env applies" "FROM_IMAGE=yes" "$(cat "$log")"
check_contains "the class's envVars win over the image's" "BOTH=class" "$(cat "$log")"
check_contains "the pull is in berthd's log" "$REG/test/web:1: " "$(cat "$STATE/berthd.log")"
out=$(api -X POST http://b/v1/classes/Pulled/instances/two/start)
check_contains "a second instance starts from the stored image" '"status":"healthy"' "$out"
check_eq "pulled once for both instances" 1 \
	"$(grep -c "$REG/test/web:1: pulling from http://$REG/v2/test/web" "$STATE/berthd.log")"
check_eq "starts from the stored image make no image events" "started done" \
	"$(phases image_pull --class Pulled)"
out=$(api -X POST -d '{"waitForPorts": false}' http://b/v1/classes/Layout/instances/l/start)
check_contains "a layout's image with the class's entrypoint" '"status":"healthy"' "$out"
id=$(sed -n 's/.*"id":"\([0-9a-f]*\)".*/\1/p' <<<"$out")
wait_for "its output" 50 grep -q overridden "$STATE/d/logs/$id/container.log"
check_contains "the class's entrypoint replaces ENTRYPOINT and CMD" "overridden" \
	"$(cat "$STATE/d/logs/$id/container.log")"
check_eq "the import on first use: the instance's events, before it is ready" \
	"start image_import image_import ready" "$(types --class Layout --name l)"
check_eq "started, then done" "started done" "$(phases image_import --class Layout --name l)"
check_eq "with the instance's id" "$id" \
	"$(bev --json --class Layout --name l | jq -r 'select(.type == "image_import") | .instance' | sort -u)"
api -X POST -d '{"waitForPorts": false}' http://b/v1/classes/Layout/instances/l2/start >/dev/null
check_eq "a second instance of the layout imports nothing: no events" "" \
	"$(phases image_import --class Layout --name l2)"
echo "-- /v1/images"
check_contains "GET /v1/images lists the pulled image" "\"$REG/test/web:1\"" "$(api http://b/v1/images)"
check_eq "GET /v1/images/NAME: its config" '{"8080/tcp":{}}' \
	"$(api "http://b/v1/images/$REG/test/web:1" | jq -c .config.config.ExposedPorts)"
out=$(api -X POST -d "{\"image\": \"$REG/test/app:v1\"}" http://b/v1/images/pull)
check_eq "POST /v1/images/pull: the image pulled" "$digest" "$(jq -r .digest <<<"$out")"
check_eq "its events are of no class" "started done" \
	"$(bev --json | jq -r --arg i "$REG/test/app:v1" \
		'select(.type == "image_pull" and .class == null and .data.image == $i) | .data.phase' |
		tr '\n' ' ' | sed 's/ $//')"
code() { curl -s -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" "$@"; }
out=$(api -N -X POST -d "{\"image\": \"$REG/test/big:1\"}" "http://b/v1/images/pull?stream=1")
check_contains "pull ?stream=1: progress as server-sent events" "event: progress" "$out"
check_contains "each blob finishes" '"finished":true' "$out"
check_contains "then done, with the image" "event: done
data: {\"digest\":" "$out"
check_contains "a failed streamed pull ends with an error event" "event: error" \
	"$(api -N -X POST -d "{\"image\": \"$REG/test/app:nope\"}" "http://b/v1/images/pull?stream=1")"
check_eq "a pull that fails: 502" 502 \
	"$(code -X POST -d "{\"image\": \"$REG/test/app:nope\"}" http://b/v1/images/pull)"
check_contains "saying why" "is not in registry" \
	"$(api -X POST -d "{\"image\": \"$REG/test/app:nope\"}" http://b/v1/images/pull)"
check_eq "a bad reference: 400" 400 \
	"$(code -X POST -d '{"image": "Bad:ref:x"}' http://b/v1/images/pull)"
check_eq "DELETE /v1/images/NAME" 200 "$(code -X DELETE "http://b/v1/images/$REG/test/app:v1")"
check_eq "then it is not found" 404 "$(code "http://b/v1/images/$REG/test/app:v1")"
out=$(api -X POST http://b/v1/images/prune)
check_eq "POST /v1/images/prune answers what it removed" "0 0" "$(jq -r '"\(.blobs) \(.layers)"' <<<"$out")"
check_eq "nothing: the image is still named by the Layout class's layout" 200 \
	"$(code "http://b/v1/images/$digest")"
check_eq "the running instances' image stays" 200 "$(code "http://b/v1/images/$REG/test/web:1")"
check_contains "and a new instance of it starts" '"status":"healthy"' \
	"$(api -X POST http://b/v1/classes/Pulled/instances/three/start)"

out=$(api -X POST http://b/v1/classes/Missing/instances/m/start)
want="failed to start container: pull \`$REG/test/web:nope\`: \`$REG/test/web:nope\` is not in registry"
check_contains "an image that cannot be pulled fails the start clearly" "$want" "$out"
# The answer may come before start_failed is durable: wait for it.
failed_recorded() { types --class Missing --name m | grep -q start_failed; }
wait_for "start_failed" 50 failed_recorded
check_eq "its pull on first use: the instance's events, then start_failed" \
	"start image_pull image_pull start_failed" "$(types --class Missing --name m)"
check_eq "started, then failed" "started failed" "$(phases image_pull --class Missing --name m)"

finish
