# Helpers of the networked-guest system tests (echo.sh, kv_guest.sh; sourced): tools, skips, domains.
#
# Usage: source "$(dirname "$0")/kv_guest_lib.sh"; ng_init TANDEM TANDEM-VMM GUEST-DIR [IMAGE...]
# Skips (77, one line) without root, /dev/kvm, the VMM or the images; tests/lib/hosts.sh
# skips without namespaces. Domains are created inside the host namespaces with
# `on_host HOST tandem create ...`; hosts.sh's teardown kills their VMMs with the namespace.

NG_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NG_EXAMPLES=$(cd "$NG_HERE/../../examples" && pwd)

fail() {
    echo "FAIL: $*"
    exit 1
}

ng_skip() {
    echo "SKIP: $*"
    exit 77
}

ng_init() {
    [ $# -ge 3 ] || fail "usage: $0 TANDEM TANDEM-VMM GUEST-DIR"
    T=$(realpath -- "$1")
    TANDEM_VMM=$(realpath -- "$2")
    export TANDEM_VMM
    G=$(realpath -m -- "$3")
    shift 3
    [ "$(id -u)" = 0 ] || ng_skip "needs root (network namespaces, TAP devices)"
    [ -e /dev/kvm ] || ng_skip "/dev/kvm is missing"
    [ -r /dev/kvm ] && [ -w /dev/kvm ] || ng_skip "/dev/kvm is not accessible"
    [ -x "$TANDEM_VMM" ] || ng_skip "no tandem-vmm at $TANDEM_VMM"
    local img
    for img in "$@"; do
        [ -f "$G/$img.elf" ] || ng_skip "guest image $G/$img.elf is not built"
    done
    source "$NG_HERE/../lib/hosts.sh"
}

# console HOST NAME: the domain's console log so far.
console() {
    cat "$(host_rundir "$1")/names/$2/console.log" 2>/dev/null
}

# show_domain HOST NAME: console and VMM log, for failure messages.
show_domain() {
    local d
    d="$(host_rundir "$1")/names/$2"
    echo "--- console of $2 on $1"
    tail -n 30 "$d/console.log" 2>/dev/null
    echo "--- vmm.log of $2 on $1"
    tail -n 30 "$d/vmm.log" 2>/dev/null
    echo "---"
}

# wait_console HOST NAME REGEX SECS: wait until the console matches REGEX.
wait_console() {
    local i=0 n=$(($4 * 10))
    while [ $i -lt $n ]; do
        console "$1" "$2" | grep -Eq "$3" && return 0
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}

# ng_kvstore_create HOST NAME IP DISK [KEY=VALUE...]: create a kvstore domain NAME on HOST's br0
# serving IP:7000 (and IPv6 fd99::<last octet of IP>) with its log on the raw image DISK; waits
# until the guest listens and HOST's peers can connect from `client`. Extra arguments are config
# overrides (e.g. 'memory=256'). For the save/migration/Remus tests too.
ng_kvstore_create() {
    local host=$1 name=$2 ip=$3 disk=$4
    shift 4
    on_host "$host" "$T" create "$NG_EXAMPLES/kvstore.cfg" "name=\"$name\"" \
        "kernel=\"$G/kvstore.elf\"" "extra=\"ip=$ip/24 ip6=fd99::${ip##*.}/64 port=7000\"" \
        "disk=[\"$disk,raw,xvda,rw\"]" 'vif=["bridge=br0"]' "$@" ||
        fail "tandem create of kvstore domain $name on $host failed"
    wait_console "$host" "$name" "listening on port 7000" 20 ||
        fail "kvstore domain $name on $host did not start: $(console "$host" "$name" | tail -3)"
    wait_tcp client "$ip:7000" 10 || fail "kvstore domain $name not reachable at $ip:7000 from client"
}
