#!/bin/bash
# System test: the test-host topology comes up, hosts reach each other, cut_link and kill_host work, teardown leaves nothing.
HERE=$(cd "$(dirname "$0")" && pwd)

fail() {
    echo "FAIL: $*"
    exit 1
}

if [ "${1:-}" = "--inner" ]; then
    # Runs as a child: builds the hosts, checks them, then fails on purpose so the
    # parent can check that the EXIT trap still removed everything.
    source "$HERE/../lib/hosts.sh"
    hosts_setup
    echo "$HOSTS_TAG $HOSTS_DIR" >"$2"
    for h in primary backup client; do
        ip netns list | grep -q "^$(host_ns $h)\b" || fail "namespace of $h missing"
        [ -d "$(host_rundir $h)" ] || fail "runtime directory of $h missing"
        on_host "$h" ip -o link show br0 | grep -q ",UP" || fail "br0 of $h is not up"
    done
    [ "$(on_host primary sh -c 'echo $TANDEM_RUNDIR')" = "$RUNDIR_PRIMARY" ] ||
        fail "on_host does not set TANDEM_RUNDIR"
    on_host client ping -c1 -W2 "$IP_PRIMARY" >/dev/null || fail "client cannot ping primary"
    on_host client ping -c1 -W2 "$IP_BACKUP" >/dev/null || fail "client cannot ping backup"
    on_host primary ping -c1 -W2 "$IP_BACKUP" >/dev/null || fail "primary cannot ping backup"
    on_host client ping -6 -c1 -W2 "$IP6_PRIMARY" >/dev/null || fail "client cannot ping primary over IPv6"
    on_host client ping -6 -c1 -W2 "$IP6_BACKUP" >/dev/null || fail "client cannot ping backup over IPv6"
    # namespaces are isolated: the root namespace has no route to the test subnet
    ping -c1 -W1 "$IP_PRIMARY" >/dev/null 2>&1 && fail "root namespace reaches the test subnet"

    cut_link primary
    on_host client ping -c1 -W1 "$IP_PRIMARY" >/dev/null && fail "ping crosses a cut link"
    on_host client ping -c1 -W2 "$IP_BACKUP" >/dev/null || fail "cut_link primary broke backup"
    heal_link primary
    # the bridges need a moment to forward again after carrier returns
    ok=0
    for _ in 1 2 3 4 5; do
        on_host client ping -c1 -W1 "$IP_PRIMARY" >/dev/null && { ok=1; break; }
    done
    [ $ok = 1 ] || fail "heal_link did not restore primary within 5 s"

    # a process on backup dies with its host
    on_host_bg backup sleep 300
    victim=$HOST_PID
    on_host_bg primary sleep 300
    echo "$victim $HOST_PID" >>"$2"
    sleep 0.2
    kill -0 "$victim" || fail "process on backup did not start"
    kill_host backup
    sleep 0.1
    kill -0 "$victim" 2>/dev/null && fail "kill_host left a process running"
    ip netns list | grep -q "^$(host_ns backup)\b" && fail "kill_host left the namespace"
    on_host client ping -c1 -W1 "$IP_BACKUP" >/dev/null && fail "dead backup still answers"
    echo "inner checks passed"
    exit 3 # a failing test: teardown must still run
fi

if ! command -v ping >/dev/null 2>&1; then
    echo "SKIP: ping is not installed (package iputils-ping, tools/install-deps.sh)"
    exit 77
fi
state=$(mktemp)
trap 'rm -f "$state"' EXIT
bash "$0" --inner "$state"
rc=$?
[ $rc = 77 ] && exit 77
[ $rc = 3 ] || fail "inner test exited $rc"
read -r tag dir <"$state"
pids=$(sed -n 2p "$state")
[ -n "$tag" ] || fail "inner test did not record its tag"
leftover=$(ip netns list | awk '{print $1}' | grep "^$tag-")
[ -z "$leftover" ] && echo "no namespaces left" || fail "namespaces left behind: $leftover"
[ -e "$dir" ] && fail "runtime directory $dir left behind"
for p in $pids; do
    kill -0 "$p" 2>/dev/null && fail "process $p left running"
done
ip -o link | grep -q "sw-primary\|$tag" && fail "interfaces left in the root namespace"
echo "PASS: topology up, ping, cut_link, kill_host, teardown after a failed test"
exit 0
