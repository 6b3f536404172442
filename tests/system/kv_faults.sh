#!/bin/bash
# System test: kvclient --reconnect rides through a cut link and a server kill -9/restart; nothing acknowledged is lost.
# usage: kv_faults.sh TANDEM-KVSTORE-NATIVE TANDEM-KVCLIENT
HERE=$(cd "$(dirname "$0")" && pwd)
SERVER=$(realpath "${1:?path of tandem-kvstore-native}")
CLIENT=$(realpath "${2:?path of tandem-kvclient}")
source "$HERE/../lib/hosts.sh"

fail() {
    echo "FAIL: $*"
    exit 1
}

hosts_setup primary client
ADDR="$IP_PRIMARY:7001"
LOG="$RUNDIR_PRIMARY/kv.log"
HIST="$RUNDIR_CLIENT/history"

start_server() {
    on_host_bg primary "$SERVER" --listen "$ADDR" --log "$LOG" --size 8 >>"$RUNDIR_PRIMARY/server.out" 2>&1
    SERVER_PID=$HOST_PID
    wait_tcp client "$ADDR" 5 || { cat "$RUNDIR_PRIMARY/server.out"; fail "server did not come up on $ADDR"; }
}

start_server
on_host_bg client "$CLIENT" --server "$ADDR" --conns 4 --duration 60 --timeout 400 --reconnect --progress 0.25 \
    --history "$HIST" >"$RUNDIR_CLIENT/load.out" 2>&1
CLIENT_PID=$HOST_PID

sleep 1
cut_link primary # requests and reconnects time out while the link is down
sleep 1.2
heal_link primary
wait_tcp client "$ADDR" 5 || fail "primary unreachable after heal_link"
sleep 1 # the client reconnects and works again
kill -9 "$SERVER_PID" # connections break; reconnects are refused until the restart
sleep 0.5
restart_us=$(($(date +%s%N) / 1000))
start_server
sleep 2
kill -INT "$CLIENT_PID" # the client stops issuing, waits for what is in flight and reports
wait "$CLIENT_PID"
tail -1 "$RUNDIR_CLIENT/load.out"

grep -q "^E .* timeout: no reply in time" "$HIST" || fail "no request timed out while the link was cut"
grep -q "^progress: .* ops: 0 " "$RUNDIR_CLIENT/load.out" || fail "--progress shows no pause during the cut"
grep -Eq "^progress: .* ops: [1-9]" "$RUNDIR_CLIENT/load.out" || fail "--progress shows no work"
grep -q "^E .* broken" "$HIST" || fail "no connection broke when the server was killed"
grep -q "^E .* reconnecting" "$HIST" || fail "the client did not reconnect"
# acknowledged writes after the restart: the client went on working
start_unix=$(sed -n 's/.*start_unix_us=\([0-9]*\).*/\1/p' "$HIST")
after=$(awk -v t=$((restart_us - start_unix)) '$1 == "R" && $6 == "ack" && $4 > t' "$HIST" | wc -l)
[ "$after" -gt 50 ] || fail "only $after requests acknowledged after the restart"

check=$(on_host client "$CLIENT" --check "$HIST" --server "$ADDR")
rc=$?
echo "$check" | tail -3
[ $rc = 0 ] || fail "checker exit $rc"
echo "$check" | tail -1 | grep -Eq "^acknowledged: [1-9][0-9]* lost: 0$" || fail "checker verdict"
echo "PASS: timeouts on a cut link, reconnects after kill -9, $after acks after restart, lost: 0"
