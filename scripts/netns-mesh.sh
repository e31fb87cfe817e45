#!/usr/bin/env bash
# Real-packet fault injection (root): each node of the simulator mesh in its own
# network namespace, on its own address of a Linux bridge, speaking UDP subnet
# broadcast exactly as the boards do on Wi-Fi. Faults are applied to real
# packets with nftables inside the namespaces.
#
#   scripts/netns-mesh.sh up                 bridge tdos0 (10.42.0.1/24 on the host) + 6 nodes
#   scripts/netns-mesh.sh loss NODE PCT      drop PCT % of the packets NODE receives
#   scripts/netns-mesh.sh partition A B      drop every packet between nodes A and B (both ways)
#   scripts/netns-mesh.sh rate NODE KBIT     limit NODE's outgoing rate (tbf)
#   scripts/netns-mesh.sh heal               remove every fault
#   scripts/netns-mesh.sh kill NODE | start NODE
#   scripts/netns-mesh.sh down               stop the nodes, delete namespaces and bridge
#
# Then, from the host:  tdos nodes --broadcast 10.42.0.255 --bind 10.42.0.1
#
# This kernel has no netem qdisc ("Specified qdisc kind is unknown"), so delay,
# reordering and duplication of real packets are not available here; those
# faults live in the deterministic simulation (tdos-sim), which has all of them.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tdos="${TDOS_BIN:-$root/.build/release/tdos}"
run="${TDOS_RUN_DIR:-/tmp/tdos-netns}"
bridge=tdos0
nodes=(kernel temp-a humidity light temp-b storage)
declare -A args=(
    [kernel]="--role kernel"
    [temp-a]="--role sensor --service temp_sensor"
    [humidity]="--role sensor --service humidity_sensor"
    [light]="--role sensor --service light_sensor"
    [temp-b]="--role sensor --service temp_sensor:backup --calibration 0.2"
    [storage]="--role storage"
)

[ "$(id -u)" -eq 0 ] || { echo "netns-mesh: needs root (network namespaces, bridge, nftables)" >&2; exit 1; }
ENSURE_PACKAGES_FOR="scripts/netns-mesh.sh" "$root/scripts/ensure-packages.sh" iproute2 nftables >/dev/null

index_of() { local i; for i in "${!nodes[@]}"; do [ "${nodes[$i]}" = "$1" ] && { echo "$i"; return; }; done
             echo "netns-mesh: no node $1 (nodes: ${nodes[*]})" >&2; exit 2; }
addr_of() { echo "10.42.0.$(( $(index_of "$1") + 10 ))"; }
ns_of() { echo "tdos-$1"; }

start_node() {
    local n="$1" ns; ns="$(ns_of "$n")"
    # shellcheck disable=SC2086
    ip netns exec "$ns" "$tdos" node --name "$n" ${args[$n]} --broadcast 10.42.0.255 --bind "$(addr_of "$n")" \
        --state-dir "$run/state" >>"$run/$n.log" 2>&1 &
    echo $! >"$run/$n.pid"
}

nft_base() { # NS: a fresh table for TDOS faults in that namespace
    ip netns exec "$1" nft -f - <<NFT
table inet tdos {
    chain input {
        type filter hook input priority 0;
    }
}
flush table inet tdos
NFT
}

case "${1:-}" in
up)
    [ -x "$tdos" ] || { echo "netns-mesh: build first: swift build -c release --product tdos" >&2; exit 1; }
    mkdir -p "$run/state"
    ip link add "$bridge" type bridge 2>/dev/null || true
    ip addr add 10.42.0.1/24 dev "$bridge" 2>/dev/null || true
    ip link set "$bridge" up
    for n in "${nodes[@]}"; do
        ns="$(ns_of "$n")"; i="$(index_of "$n")"
        ip netns add "$ns" 2>/dev/null || true
        ip link add "veth$i" type veth peer name eth0 netns "$ns" 2>/dev/null || true
        ip link set "veth$i" master "$bridge" up
        ip -n "$ns" addr add "$(addr_of "$n")/24" dev eth0 2>/dev/null || true
        ip -n "$ns" link set eth0 up
        ip -n "$ns" link set lo up
        nft_base "$ns"
        start_node "$n"
    done
    echo "netns-mesh: ${#nodes[@]} nodes on $bridge (10.42.0.10-15); try: $tdos nodes --broadcast 10.42.0.255 --bind 10.42.0.1"
    ;;
loss)
    ns="$(ns_of "$2")"
    ip netns exec "$ns" nft add rule inet tdos input udp dport 4210 numgen random mod 100 \< "$3" drop
    echo "netns-mesh: $2 now drops $3 % of its incoming TDOS packets"
    ;;
partition)
    a="$(addr_of "$2")"; b="$(addr_of "$3")"
    ip netns exec "$(ns_of "$2")" nft add rule inet tdos input ip saddr "$b" drop
    ip netns exec "$(ns_of "$3")" nft add rule inet tdos input ip saddr "$a" drop
    echo "netns-mesh: $2 and $3 no longer hear each other (others still relay)"
    ;;
rate)
    ip -n "$(ns_of "$2")" link set eth0 up
    tc -n "$(ns_of "$2")" qdisc replace dev eth0 root tbf rate "${3}kbit" burst 4kb latency 100ms
    echo "netns-mesh: $2 sends at most $3 kbit/s"
    ;;
heal)
    for n in "${nodes[@]}"; do
        nft_base "$(ns_of "$n")"
        tc -n "$(ns_of "$n")" qdisc del dev eth0 root 2>/dev/null || true
    done
    echo "netns-mesh: every fault removed"
    ;;
kill)
    kill -9 "$(cat "$run/$2.pid")" && echo "netns-mesh: killed $2 with SIGKILL"
    ;;
start)
    start_node "$2"; echo "netns-mesh: started $2"
    ;;
down)
    for n in "${nodes[@]}"; do
        [ -f "$run/$n.pid" ] && kill "$(cat "$run/$n.pid")" 2>/dev/null || true
    done
    sleep 1
    for n in "${nodes[@]}"; do
        [ -f "$run/$n.pid" ] && kill -9 "$(cat "$run/$n.pid")" 2>/dev/null || true
        rm -f "$run/$n.pid"
        ip netns del "$(ns_of "$n")" 2>/dev/null || true
    done
    ip link del "$bridge" 2>/dev/null || true
    echo "netns-mesh: down"
    ;;
*)
    sed -n '2,20p' "$0"; exit 2 ;;
esac
