#!/bin/bash
# Conformance with the real Sandbox SDK: @cloudflare/sandbox 0.12.x, installed
# from npm at test time, drives berthd's sandbox protocol with its own
# SandboxClient (over TCP, with the API's bearer token) on a busybox image:
# sessions, commands and their streams, files (utf-8 and base64, streamed),
# processes, the SDK's typed errors (tests/e2e/sdk/conformance.mjs), and a
# git checkout in an image with git (gitroot.sh).
# Node loads the package with a loader that maps the Workers-only module
# `cloudflare:workers` to a stub (tests/e2e/sdk/loader.mjs). Node 20 and
# Debian 12's own Node 18.20 both pass (18 needs the loader to say that
# @cloudflare/containers is ES modules, which 20 detects by itself).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/gitroot.sh"

SDK_VERSION=${BERTH_SANDBOX_SDK_VERSION:-0.12}
node_version=$(node --version 2>/dev/null)
if [ -z "$node_version" ] || ! command -v npm > /dev/null; then
	fail "node and npm are needed (scripts/install-deps.sh installs them)"
	finish
	exit 1
fi
echo "  (node $node_version, @cloudflare/sandbox@$SDK_VERSION)"

SOCK=$STATE/berth.sock
TOKEN=sdk-test-token-$RANDOM$RANDOM
free_port() {
	local p
	for _ in $(seq 50); do
		p=$((20000 + RANDOM % 40000))
		ss -Hltn "sport = :$p" | grep -q . || { echo "$p"; return 0; }
	done
	return 1
}
PORT=$(free_port)
mk_git_root "$STATE/gitroot"
cat > "$STATE/berth.jsonc" <<JSON
{
  "containers": [
    {"class_name": "Box", "image": "$ROOTFS", "entrypoint": ["sleep", "1000000"]},
    {"class_name": "Git", "image": "$STATE/gitroot", "entrypoint": ["sleep", "1000000"]},
  ],
  "berth": {"state_dir": "$STATE/state",
            "api": {"socket": "$SOCK", "listen": "127.0.0.1:$PORT", "token": "$TOKEN"}},
}
JSON
"$BERTH_BIN/berthd" --config "$STATE/berth.jsonc" > "$STATE/berthd.log" 2>&1 &
BERTHD=$!
wait_for "the API" 50 test -S "$SOCK"

mkdir -p "$STATE/sdk"
cp "$(dirname "$0")"/sdk/*.mjs "$STATE/sdk/"
if ! (cd "$STATE/sdk" && echo '{"private": true}' > package.json &&
	timeout 300 npm install --no-audit --no-fund --loglevel=error "@cloudflare/sandbox@$SDK_VERSION" > npm.log 2>&1); then
	fail "npm install @cloudflare/sandbox@$SDK_VERSION" "$(tail -5 "$STATE/sdk/npm.log")"
	finish
	exit 1
fi
echo "  (installed $(cd "$STATE/sdk" && node -p 'require("@cloudflare/sandbox/package.json").version'))"

BASE=http://127.0.0.1:$PORT/v1/classes/Box/instances/sdk/sandbox
GIT_BASE=http://127.0.0.1:$PORT/v1/classes/Git/instances/sdk/sandbox
check_eq "without the token: 401" 401 "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/api/ping")"
(cd "$STATE/sdk" && timeout 300 node --import ./register.mjs conformance.mjs "$BASE" "$TOKEN" "$GIT_BASE")
status=$?
check_eq "the SDK's conformance suite passes" 0 "$status"

kill -TERM $BERTHD
wait $BERTHD
check_eq "berthd stops cleanly" 0 $?
finish
