#!/bin/bash
# System test: an echo guest saved and restored announces itself again (new clock generation):
# the client's neighbour entries, poisoned with a wrong MAC, are corrected without the client asking.
# usage: echo_resume.sh TANDEM TANDEM-VMM GUEST-DIR   (skips on a tandem without save/restore)
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/kv_guest_lib.sh"
ng_init "$@" echo
"$T" help 2>&1 | grep -qw restore || ng_skip "tandem has no save/restore commands yet"
hosts_setup primary client

IP=10.99.0.100
IP6=fd99::100
BOGUS=02:00:00:00:00:01
on_host primary "$T" create "$NG_EXAMPLES/echo.cfg" "kernel=\"$G/echo.elf\"" \
    "extra=\"ip=$IP/24 ip6=$IP6/64 port=7\"" 'vif=["bridge=br0"]' ||
    fail "tandem create of the echo guest failed"
trap_show() { [ "${PASSED:-}" = 1 ] || show_domain primary echo; }
hosts_at_exit trap_show
wait_console primary echo "listening on port 7" 10 || fail "the echo guest did not start"
mac=$(console primary echo | sed -n 's/^echo: vif [0-9]* mac \([0-9a-f:]*\) .*/\1/p')
on_host client ping -c 1 -W 2 "$IP" >/dev/null || fail "no ping reply from $IP"
on_host client ping -6 -c 1 -W 2 "$IP6" >/dev/null || fail "no ping reply from $IP6"

# The guest "moves": the client's entries now point elsewhere, as after a failover to a new port.
# (After the second boot-time announcement, 1 s after link up, so that one cannot do the work.)
sleep 1.5
on_host primary "$T" save echo "$RUNDIR_PRIMARY/echo.save" || fail "tandem save failed"
on_host client ip neigh replace "$IP" lladdr "$BOGUS" dev br0 nud stale || fail "ip neigh replace"
on_host client ip -6 neigh replace "$IP6" lladdr "$BOGUS" dev br0 nud stale ||
    fail "ip -6 neigh replace"
sleep 1.2 # past the neighbour entry's locktime, so an announcement may override it
on_host primary "$T" restore "$RUNDIR_PRIMARY/echo.save" || fail "tandem restore failed"
wait_console primary echo "net: clock generation [0-9]+ -> [0-9]+: resumed elsewhere" 10 ||
    fail "the restored guest did not notice its new clock generation"

# No traffic from the client: only the guest's announcements can fix the entries.
ok=""
for _ in $(seq 30); do
    if on_host client ip neigh show "$IP" dev br0 | grep -q "lladdr $mac" &&
        on_host client ip -6 neigh show "$IP6" dev br0 | grep -q "lladdr $mac"; then
        ok=1
        break
    fi
    sleep 0.1
done
[ -n "$ok" ] || fail "client entries not corrected: $(on_host client ip neigh show dev br0 | tr '\n' ';')"
out=$(on_host client python3 "$HERE/echo_client.py" "$IP" 7 --conns 4 --bytes 16384) ||
    fail "echo after restore: $out"
on_host primary "$T" destroy echo || fail "tandem destroy echo failed"
PASSED=1
echo "PASS: restored echo guest re-announced $IP and $IP6 as $mac"
