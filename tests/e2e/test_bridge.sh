#!/bin/bash
# Bridge networking (`berth run --net bridge`, berthd's enableInternet): a
# container reaches "the internet" (a network namespace of this test's own
# behind the host) through NAT; a loopback container cannot; bridged
# containers reach neither each other nor the host; addresses are distinct,
# given back at destroy, reclaimed from dead containers; the host's setup is
# idempotent and repairs itself. lib.sh gave the test its own bridge, subnet
# and nftables table.
. "$(dirname "$0")/lib.sh"

n=$(($$ % 250 + 1))
INET_NS="berth-e2e-inet-$$"
INET_HOST="bti$$"          # the host's end of the link to "the internet"
SERVER=198.18.$n.1         # a server out there
HOST_OUT=198.18.$n.2       # the host's address on that link: what NAT shows
GATEWAY=${BERTH_SUBNET%/*} # the bridge's address
PREFIX=${GATEWAY%.*}.      # the containers' addresses start so
LEASES=/run/berth-network/$BERTH_BRIDGE
# A second bridge with a /30: room for one container.
SMALL_BRIDGE="bts$$"
SMALL_TABLE="berth_e2e_small_$$"
SMALL_SUBNET="10.214.$n.1/30"
PIDS=()

cleanup_bridge() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	ip netns del "$INET_NS" 2>/dev/null
	ip link del "$INET_HOST" 2>/dev/null
	ip link del "$SMALL_BRIDGE" 2>/dev/null
	nft delete table ip "$SMALL_TABLE" 2>/dev/null
	rm -rf "/run/berth-network/$SMALL_BRIDGE"
	cleanup_e2e
}
trap cleanup_bridge EXIT

# An HTTP request from inside a container: the response, or nc's complaint and status.
http_from() { # OPTIONS... -- ADDR PORT PATH
	local args=()
	while [ "$1" != -- ]; do args+=("$1"); shift; done
	brun "${args[@]}" -- sh -c "printf 'GET $4 HTTP/1.0\r\n\r\n' | nc -w 2 $2 $3 2>&1; echo status=\$?"
}
leases() { find "$LEASES" -type l 2>/dev/null | wc -l; }
# berthd's prepared slots: bridged namespaces made ahead, each with a lease and a port.
POOL=/run/berth-netns/bridge-$BERTH_BRIDGE
slots() { stat -f -c %T "$POOL"/slot-* 2>/dev/null | grep -c nsfs; }
slots_are() { test "$(slots)" = "$1"; }
# Leases of containers (those of slots point into the pool).
container_leases() { find "$LEASES" -type l -printf '%l\n' 2>/dev/null | grep -vc "^$POOL/"; }
ports() { ip -o link show master "$1" 2>/dev/null | wc -l; }
leases_are() { test "$(leases)" = "$1"; }
ports_are() { test "$(ports "$1")" = "$2"; }

# "The internet": a namespace with a server, one hop away from the host.
ip netns add "$INET_NS"
ip link add "$INET_HOST" type veth peer name eth0 netns "$INET_NS"
ip addr add "$HOST_OUT/30" dev "$INET_HOST"
ip link set "$INET_HOST" up
ip -n "$INET_NS" addr add "$SERVER/30" dev eth0
ip -n "$INET_NS" link set eth0 up
ip -n "$INET_NS" link set lo up
ip netns exec "$INET_NS" "$E2E_ROOT/build/progs/echo-server" --bind "$SERVER" --port 8080 \
	> "$STATE/internet.out" 2>&1 &
PIDS+=($!)
wait_for "the server out there" 50 curl -sf "http://$SERVER:8080/health"

# Out through NAT: the server sees the host's address, not the container's.
out=$(http_from --net bridge -- "$SERVER" 8080 /hello)
check_contains "a bridge container reaches a server outside" '"path":"/hello"' "$out"
check_contains "the server sees the host's NATed address" "\"remote_addr\":\"$HOST_OUT\"" "$out"
out=$(brun --net bridge -- sh -c 'ip -4 -o addr show eth0; ip route')
check_contains "eth0 has an address of the bridge's subnet" "inet $PREFIX" "$out"
check_contains "the default route goes through the bridge" "default via $GATEWAY dev eth0" "$out"
check_contains "lo is up too" "UP" "$(brun --net bridge -- ip -o link show lo)"
# The veth is deleted and the address given back just after `berth run`
# returns, by the child it leaves to tidy up (a deletion waits for RCU).
wait_for "the host end to go" 50 ports_are "$BERTH_BRIDGE" 0
check_eq "the host end is gone after the container" 0 "$(ports "$BERTH_BRIDGE")"
wait_for "the lease to go" 50 leases_are 0
check_eq "and the lease with it" 0 "$(leases)"

out=$(http_from -- "$SERVER" 8080 /hello)
check_contains "a loopback container cannot reach it" "Network is unreachable" "$out"
check_not_contains "nor does its request arrive" "/hello\"" "$(http_from -- "$SERVER" 8080 /x)"

# Host setup: the bridge with the gateway's address, forwarding, one table.
check_contains "the bridge has the gateway's address" "inet $BERTH_SUBNET" \
	"$(ip -4 -o addr show dev "$BERTH_BRIDGE")"
check_eq "IPv4 forwarding is on" 1 "$(cat /proc/sys/net/ipv4/ip_forward)"
check_contains "the masquerade rule is there" "masquerade" "$(nft list table ip "$BERTH_NFT_TABLE")"
brun --net bridge -- true
brun --net bridge -- true
check_eq "set up once: one address on the bridge" 1 \
	"$(ip -4 -o addr show dev "$BERTH_BRIDGE" | wc -l)"
check_eq "and one masquerade rule" 1 "$(nft list table ip "$BERTH_NFT_TABLE" | grep -c masquerade)"
nft delete table ip "$BERTH_NFT_TABLE"
out=$(http_from --net bridge -- "$SERVER" 8080 /again)
check_contains "a deleted table is put back by the next start" "\"remote_addr\":\"$HOST_OUT\"" "$out"

# Two bridged containers, each with a server on its eth0.
for name in a b; do
	brun_bg --name "$name" --net bridge -- sh -c \
		'ip -4 -o addr show eth0; exec echo-server --bind 0.0.0.0 --port 8080' \
		> "$STATE/$name.out" 2>&1
	PIDS+=($!)
done
wait_for "a's server" 50 grep -q listening "$STATE/a.out"
wait_for "b's server" 50 grep -q listening "$STATE/b.out"
ip_a=$(sed -n 's/.*inet \([0-9.]*\)\/.*/\1/p' "$STATE/a.out")
ip_b=$(sed -n 's/.*inet \([0-9.]*\)\/.*/\1/p' "$STATE/b.out")
check_true "two containers get two addresses" test -n "$ip_a" -a -n "$ip_b" -a "$ip_a" != "$ip_b"
check_contains "the host reaches a container's server" "ok" \
	"$(curl -s -m 5 "http://$ip_a:8080/health")"
out=$(brun --name c --net bridge -- sh -c \
	"printf 'GET /x HTTP/1.0\r\n\r\n' | nc -w 2 $ip_a 8080 2>&1; echo status=\$?")
check_contains "another container cannot reach it" "status=1" "$out"
check_not_contains "(no answer)" "HTTP/1.1" "$out"
host_end=$(ip -o link show master "$BERTH_BRIDGE" | sed -n 's/^[0-9]*: \([^:@]*\).*/\1/p' | head -n 1)
check_contains "its bridge port is isolated" "isolated on" "$(bridge -d link show dev "$host_end")"

# The host itself: a server on all of the host's addresses, which the host
# reaches through the bridge's address, is out of the containers' reach.
"$E2E_ROOT/build/progs/echo-server" --bind 0.0.0.0 --port 0 > "$STATE/host.out" 2>&1 &
PIDS+=($!)
wait_for "the host's server" 50 grep -q listening "$STATE/host.out"
hport=$(sed -n 's/listening on \([0-9]*\).*/\1/p' "$STATE/host.out")
check_contains "the host's server answers on the bridge's address" "ok" \
	"$(curl -s -m 5 "http://$GATEWAY:$hport/health")"
out=$(http_from --net bridge -- "$GATEWAY" "$hport" /host)
check_contains "a container cannot connect to the host" "status=1" "$out"
check_not_contains "(no answer from the host)" "HTTP/1.1" "$out"
out=$(http_from --net bridge -- "$HOST_OUT" "$hport" /host)
check_not_contains "nor to the host's other addresses" "HTTP/1.1" "$out"

kill -TERM "${PIDS[1]}" "${PIDS[2]}"
wait "${PIDS[1]}" "${PIDS[2]}"
check_nothing_left a
check_nothing_left b
check_eq "no ports are left on the bridge" 0 "$(ports "$BERTH_BRIDGE")"
check_eq "no leases are left" 0 "$(leases)"

# Concurrent starts get distinct addresses.
many=()
for i in 1 2 3 4 5 6; do
	brun --name "many$i" --net bridge -- sh -c 'ip -4 -o addr show eth0; sleep 1' \
		> "$STATE/many$i.out" 2>&1 &
	many+=($!)
done
wait "${many[@]}"
addrs=$(sed -n 's/.*inet \([0-9.]*\)\/.*/\1/p' "$STATE"/many*.out | sort)
check_eq "six concurrent starts: six addresses" 6 "$(wc -l <<<"$addrs")"
check_eq "all distinct" 6 "$(uniq <<<"$addrs" | wc -l)"
wait_for "the leases to go" 50 leases_are 0
check_eq "all given back" 0 "$(leases)"

# A container that dies without a destroy leaves its lease; the next start
# of that name frees it.
brun_bg --name k --net bridge -- sleep 30 > /dev/null 2>&1
kpid=$!
wait_for "k's lease" 50 leases_are 1
{ kill -KILL "$kpid"; wait "$kpid"; } 2>/dev/null
check_eq "a SIGKILLed berth run leaves its lease" 1 "$(leases)"
wait_for "k's veth to go with its namespace" 50 ports_are "$BERTH_BRIDGE" 0
brun --name k --net bridge -- true
wait_for "k's leases to go" 50 leases_are 0
check_eq "the next start of that name frees it" 0 "$(leases)"

# A full subnet: a clear error; a dead container's lease is reclaimed.
small() { BERTH_BRIDGE=$SMALL_BRIDGE BERTH_SUBNET=$SMALL_SUBNET BERTH_NFT_TABLE=$SMALL_TABLE "$@"; }
small brun_bg --name only --net bridge -- sleep 30 > /dev/null 2>&1
opid=$!
wait_for "the only address to be taken" 50 ports_are "$SMALL_BRIDGE" 1
out=$(small brun --name second --net bridge -- true 2>&1)
check_contains "a full subnet is reported" \
	"subnet 10.214.$n.0/30 is exhausted: all 1 container addresses are in use" "$out"
{ kill -KILL "$opid"; wait "$opid"; } 2>/dev/null
out=$(small brun --name second --net bridge -- sh -c 'ip -4 -o addr show eth0' 2>&1)
check_contains "a dead container's address is reclaimed" "inet 10.214.$n.2/30" "$out"
small brun --name only --net bridge -- true
# Before the child that tidies up has deleted the last one's veth: a full
# subnet ends its departed leases itself.
out=$(small brun --name next --net bridge -- true 2>&1 && small brun --name next --net bridge -- true 2>&1 && echo started)
check_eq "back-to-back starts on a full subnet" "started" "$out"
small_leases_are() { test "$(find "/run/berth-network/$SMALL_BRIDGE" -type l | wc -l)" = "$1"; }
wait_for "the small subnet's lease to go" 50 small_leases_are 0
check_eq "and given back" 0 "$(find "/run/berth-network/$SMALL_BRIDGE" -type l | wc -l)"

out=$(BERTH_SUBNET=10.1.2.3/40 brun --net bridge -- true 2>&1)
check_contains "a bad subnet is reported" "subnet \`10.1.2.3/40\`: the prefix length must be 8 to 30" "$out"

# berthd: enableInternet (the class's, or the start's) picks the network.
SOCK=$STATE/berth.sock
cat > "$STATE/berth.jsonc" <<JSON
{
  "containers": [
    {"class_name": "Out", "image": "$ROOTFS", "defaultPort": 8080,
     "entrypoint": ["sh", "-c", "ip -o link show eth0; exec echo-server --port 8080"]},
    {"class_name": "In", "image": "$ROOTFS", "defaultPort": 8080, "enableInternet": false,
     "entrypoint": ["sh", "-c", "ip -o link show eth0; exec echo-server --port 8080"]},
    {"class_name": "Net", "image": "$ROOTFS", "defaultPort": 8080,
     "entrypoint": ["sh", "-c", "ip -4 -o addr show eth0; ip route; printf 'GET /pooled HTTP/1.0\\r\\n\\r\\n' | nc -w 2 $SERVER 8080; exec echo-server --port 8080"]},
  ],
  "berth": {"state_dir": "$STATE/state", "api": {"socket": "$SOCK"}},
}
JSON
"$BERTH_BIN/berthd" --config "$STATE/berth.jsonc" >> "$STATE/berthd.log" 2>&1 &
PIDS+=($!)
wait_for "the API" 50 test -S "$SOCK"
api() { curl -s --unix-socket "$SOCK" "$@"; }
log_of() { cat "$STATE"/state/logs/"$1"/container.log; }
id_of() { sed -n 's/.*"id":"\([0-9a-f]*\)".*/\1/p' <<<"$1"; }

out=$(api -X POST http://b/v1/classes/Out/instances/x/start)
check_contains "berthd: enableInternet (default true) starts" '"status":"healthy"' "$out"
check_contains "with eth0" "eth0@" "$(log_of "$(id_of "$out")")"
check_eq "and a lease" 1 "$(container_leases)"
out=$(api -X POST http://b/v1/classes/In/instances/y/start)
check_contains "enableInternet false starts" '"status":"healthy"' "$out"
check_contains "without eth0" "can't find device 'eth0'" "$(log_of "$(id_of "$out")")"
out=$(api -X POST -d '{"enableInternet": false}' http://b/v1/classes/Out/instances/z/start)
check_contains "the start's enableInternet wins over the class's" "can't find device 'eth0'" \
	"$(log_of "$(id_of "$out")")"
for i in x z; do api -X POST "http://b/v1/classes/Out/instances/$i/destroy" > /dev/null; done
api -X POST http://b/v1/classes/In/instances/y/destroy > /dev/null
# berthd's housekeeping deletes the veths after the destroys are answered.
container_leases_are() { test "$(container_leases)" = "$1"; }
wait_for "the containers' leases to go" 50 container_leases_are 0
check_eq "destroyed through berthd: no container's lease left" 0 "$(container_leases)"

# Prepared slots: after a bridged start berthd keeps two bridged namespaces,
# each an isolated port with a lease; the next bridged start takes one.
wait_for "two prepared slots" 50 slots_are 2
check_eq "each slot holds a lease" 2 "$(leases)"
check_eq "and a port of the bridge" 2 "$(ports "$BERTH_BRIDGE")"
check_eq "isolated, as a start's own" 2 "$(ip -d link show master "$BERTH_BRIDGE" | grep -c 'isolated on')"
pooled=$(find "$LEASES" -type l -printf '%f %l\n' | awk -v p="$POOL/" 'index($2, p) == 1 {print $1}')
out=$(api -X POST http://b/v1/classes/Net/instances/p/start)
check_contains "a bridged start with slots ready" '"status":"healthy"' "$out"
log=$(log_of "$(id_of "$out")")
addr=$(sed -n 's/.*inet \([0-9.]*\)\/.*/\1/p' <<<"$log")
check_eq "took one: its address ($addr) is a slot's" yes \
	"$(grep -qx "${addr:-none}" <<<"$pooled" && echo yes)"
check_eq "which is the container's lease now" "$STATE/state/containers/$(id_of "$out")" \
	"$(readlink "$LEASES/$addr")"
check_contains "its default route is the bridge's" "default via $GATEWAY dev eth0" "$log"
check_contains "it reaches the server outside through NAT" '"path":"/pooled"' "$log"
check_contains "as the host's address" "\"remote_addr\":\"$HOST_OUT\"" "$log"
wait_for "the pool refilled" 50 slots_are 2
api -X POST http://b/v1/classes/Net/instances/p/destroy > /dev/null
wait_for "p's lease to go" 50 container_leases_are 0
check_eq "destroyed: its lease is gone" 0 "$(container_leases)"
check_eq "and its veth: only the slots' ports are left" 2 "$(ports "$BERTH_BRIDGE")"
kill -TERM "${PIDS[-1]}"
wait "${PIDS[-1]}"
check_eq "berthd stopped: no lease left" 0 "$(leases)"
check_eq "no port" 0 "$(ports "$BERTH_BRIDGE")"
check_eq "no slot" "" "$(ls -A "$POOL" 2>/dev/null)"
check_eq "no slot mounted" 0 "$(grep -c "$POOL/" /proc/self/mountinfo)"

finish
