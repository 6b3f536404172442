# Test hosts for system tests: network namespaces primary/backup/client on a switch, with clean teardown.
#
# Source it from a bash test, then call hosts_setup. See docs/test-hosts.md.
#
#   source "$(dirname "$0")/../lib/hosts.sh"
#   hosts_setup                       # or: hosts_setup primary client
#   on_host client ping -c1 "$IP_PRIMARY"
#   on_host_bg primary some-daemon >log 2>&1; kill -9 "$HOST_PID"
#   cut_link primary; heal_link primary
#   kill_host primary
#
# Everything is torn down from an EXIT trap, also when the test fails or is
# interrupted: processes in the namespaces, the namespaces (and with them the
# veths and bridges) and the runtime directories. A test that needs its own
# cleanup registers it with hosts_at_exit "command"; it runs before teardown.

# Tag of this run: namespace names start with it, so parallel or leftover runs never collide.
HOSTS_TAG=${HOSTS_TAG:-tdm$$}
HOSTS_SUBNET_PREFIX=10.99.0
HOSTS_PREFIXLEN=24
HOSTS_SUBNET6_PREFIX=fd99::
HOSTS_PREFIXLEN6=64
HOSTS_ALL="primary backup client"
HOSTS_UP=""
HOSTS_DIR=""
HOSTS_EXIT_HOOKS=()
NS_SWITCH="$HOSTS_TAG-switch"

hosts_log() {
    echo "hosts: $*" >&2
}

# Exit 77 (skip) with a reason unless this process can build namespaces.
hosts_require() {
    if [ "$(id -u)" != 0 ]; then
        echo "SKIP: needs root to create network namespaces"
        exit 77
    fi
    if ! command -v ip >/dev/null 2>&1; then
        echo "SKIP: the ip command (iproute2) is not installed"
        exit 77
    fi
    local probe="$HOSTS_TAG-probe"
    if ! ip netns add "$probe" 2>/dev/null; then
        echo "SKIP: cannot create network namespaces here (ip netns add failed)"
        exit 77
    fi
    if ! ip -n "$probe" link add probe0 type bridge 2>/dev/null ||
        ! ip -n "$probe" link add pv0 type veth peer name pv1 2>/dev/null; then
        ip netns del "$probe" 2>/dev/null
        echo "SKIP: bridge or veth devices are not available in network namespaces"
        exit 77
    fi
    ip netns del "$probe"
}

# Address of a host on the test subnet: primary .1, backup .2, client .3.
host_ip() {
    case "$1" in
    primary) echo "$HOSTS_SUBNET_PREFIX.1" ;;
    backup) echo "$HOSTS_SUBNET_PREFIX.2" ;;
    client) echo "$HOSTS_SUBNET_PREFIX.3" ;;
    *) hosts_log "unknown host '$1' (expected primary, backup or client)"; return 1 ;;
    esac
}

# IPv6 address of a host: fd99::1, ::2, ::3 in the same order.
host_ip6() {
    local v4
    v4=$(host_ip "$1") || return 1
    echo "$HOSTS_SUBNET6_PREFIX${v4##*.}"
}

host_ns() {
    echo "$HOSTS_TAG-$1"
}

host_rundir() {
    echo "$HOSTS_DIR/$1"
}

# Build the switch and the hosts (default: primary backup client); sets
# NS_<HOST>, IP_<HOST>, RUNDIR_<HOST> and installs the teardown trap.
hosts_setup() {
    local hosts="${*:-$HOSTS_ALL}" h
    hosts_require
    hosts_reap_stale
    trap hosts_teardown EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    HOSTS_DIR=$(mktemp -d "${TMPDIR:-/tmp}/$HOSTS_TAG-hosts.XXXXXX") || return 1
    ip netns add "$NS_SWITCH" || return 1
    ip -n "$NS_SWITCH" link set lo up
    ip -n "$NS_SWITCH" link add sw type bridge || return 1
    ip -n "$NS_SWITCH" link set sw up
    for h in $hosts; do
        host_ip "$h" >/dev/null || return 1
        hosts_add "$h" || return 1
    done
}

# Create one host: namespace, br0 with the host address, a veth to the switch.
hosts_add() {
    local h=$1 ns ip ip6 upper
    ns=$(host_ns "$h")
    ip=$(host_ip "$h") || return 1
    ip6=$(host_ip6 "$h")
    upper=$(echo "$h" | tr '[:lower:]' '[:upper:]')
    ip netns add "$ns" || return 1
    HOSTS_UP="$HOSTS_UP $h"
    mkdir -p "$HOSTS_DIR/$h"
    ip -n "$ns" link set lo up
    ip -n "$ns" link add br0 type bridge || return 1
    # The switch end is named after the host; the host end is eth0 inside the namespace.
    ip -n "$NS_SWITCH" link add "sw-$h" type veth peer name eth0 netns "$ns" || return 1
    ip -n "$NS_SWITCH" link set "sw-$h" master sw up || return 1
    ip -n "$ns" link set eth0 master br0 up || return 1
    ip -n "$ns" addr add "$ip/$HOSTS_PREFIXLEN" dev br0 || return 1
    # nodad: usable at once; duplicate detection would only delay the tests
    ip -n "$ns" addr add "$ip6/$HOSTS_PREFIXLEN6" dev br0 nodad || return 1
    ip -n "$ns" link set br0 up || return 1
    # A fresh veth may report NO-CARRIER for a moment; tests start right after setup.
    local i=0
    while ip -n "$ns" -o link show eth0 | grep -q NO-CARRIER && [ $i -lt 40 ]; do
        sleep 0.05
        i=$((i + 1))
    done
    eval "NS_$upper=\$ns; IP_$upper=\$ip; IP6_$upper=\$ip6; RUNDIR_$upper=\$HOSTS_DIR/\$h"
    export "NS_$upper" "IP_$upper" "IP6_$upper" "RUNDIR_$upper"
}

# on_host HOST CMD...: run CMD in HOST's namespace with HOST's Tandem runtime directory.
on_host() {
    local h=$1
    shift
    ip netns exec "$(host_ns "$h")" env TANDEM_RUNDIR="$HOSTS_DIR/$h" "$@"
}

# on_host_bg HOST CMD...: like on_host, in the background; HOST_PID is CMD's own pid (for kill -9).
# Redirect the call as usual: on_host_bg primary daemon >log 2>&1
on_host_bg() {
    local h=$1
    shift
    ip netns exec "$(host_ns "$h")" env TANDEM_RUNDIR="$HOSTS_DIR/$h" "$@" &
    HOST_PID=$!
}

# Take HOST's link to the switch down (the host keeps running, unreachable) and back up.
cut_link() {
    ip -n "$NS_SWITCH" link set "sw-$1" down
}

heal_link() {
    ip -n "$NS_SWITCH" link set "sw-$1" up
}

# Kill every process in HOST's namespace, then delete the namespace: the host is gone.
kill_host() {
    local h=$1 ns
    ns=$(host_ns "$h")
    hosts_kill_ns "$ns"
    ip netns del "$ns" 2>/dev/null
    HOSTS_UP=$(echo " $HOSTS_UP " | sed "s/ $h / /; s/^ *//; s/ *$//")
}

# SIGKILL every process whose network namespace is ns, until none is left.
hosts_kill_ns() {
    local ns=$1 pids tries=0
    while :; do
        pids=$(ip netns pids "$ns" 2>/dev/null)
        [ -z "$pids" ] && return 0
        # shellcheck disable=SC2086
        kill -9 $pids 2>/dev/null
        tries=$((tries + 1))
        [ $tries -gt 50 ] && { hosts_log "processes survive in $ns: $pids"; return 1; }
        sleep 0.05
    done
}

# Register a command to run at exit, before the hosts are torn down.
hosts_at_exit() {
    HOSTS_EXIT_HOOKS+=("$1")
}

hosts_teardown() {
    local rc=$? hook h
    trap - EXIT INT TERM
    for hook in "${HOSTS_EXIT_HOOKS[@]}"; do
        eval "$hook" || true
    done
    for h in $HOSTS_UP; do
        hosts_kill_ns "$(host_ns "$h")"
        ip netns del "$(host_ns "$h")" 2>/dev/null
    done
    HOSTS_UP=""
    if ip netns list 2>/dev/null | grep -q "^$NS_SWITCH\b"; then
        hosts_kill_ns "$NS_SWITCH"
        ip netns del "$NS_SWITCH" 2>/dev/null
    fi
    [ -n "$HOSTS_DIR" ] && rm -rf "$HOSTS_DIR"
    HOSTS_DIR=""
    exit $rc
}

# Remove namespaces left by runs whose shell (tdm<pid>) no longer exists.
hosts_reap_stale() {
    local ns pid
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^tdm[0-9]+-'); do
        pid=${ns#tdm}
        pid=${pid%%-*}
        if [ "$pid" != "$$" ] && ! kill -0 "$pid" 2>/dev/null; then
            hosts_log "removing leftover namespace $ns"
            hosts_kill_ns "$ns"
            ip netns del "$ns" 2>/dev/null
        fi
    done
}

# Wait up to $2 seconds (default 5) for a TCP port ADDR:PORT to accept connections from HOST.
wait_tcp() {
    local h=$1 addr=$2 secs=${3:-5} i=0
    while [ $i -lt $((secs * 20)) ]; do
        if on_host "$h" bash -c "exec 3<>/dev/tcp/${addr%:*}/${addr##*:}" 2>/dev/null; then
            return 0
        fi
        sleep 0.05
        i=$((i + 1))
    done
    return 1
}
