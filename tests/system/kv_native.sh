#!/bin/bash
# System test: tandem-kvstore-native on primary, driven by tandem-kvclient from client, killed -9, restarted from its log: nothing acknowledged is lost.
# usage: kv_native.sh TANDEM-KVSTORE-NATIVE TANDEM-KVCLIENT [SERVER-OPTION...]
# (kv_native_async passes --async-flush: flushes complete later, through the server's poll loop)
HERE=$(cd "$(dirname "$0")" && pwd)
SERVER=$(realpath "${1:?path of tandem-kvstore-native}")
CLIENT=$(realpath "${2:?path of tandem-kvclient}")
shift 2
SERVER_OPTS=("$@")
source "$HERE/../lib/hosts.sh"

fail() {
    echo "FAIL: $*"
    exit 1
}

hosts_setup primary client
ADDR="$IP_PRIMARY:7000"
LOG="$RUNDIR_PRIMARY/kv.log"
HIST="$RUNDIR_CLIENT/history"

start_server() {
    on_host_bg primary "$SERVER" --listen "$ADDR" --log "$LOG" --size 8 "${SERVER_OPTS[@]}" >>"$RUNDIR_PRIMARY/server.out" 2>&1
    SERVER_PID=$HOST_PID
    wait_tcp client "$ADDR" 5 || { cat "$RUNDIR_PRIMARY/server.out"; fail "server did not come up on $ADDR"; }
}

start_server
# A short clean run first: the client works across the switch and reports no errors.
out=$(on_host client "$CLIENT" --server "$ADDR" --conns 4 --ops 2000) || fail "clean run failed: $out"
echo "$out" | tail -1
echo "$out" | grep -q "^ops: 2000 .*errors: 0 " || fail "clean run summary: $out"

# Open loop: --rate holds the total request rate (never above it, close to it when the server keeps up).
out=$(on_host client "$CLIENT" --server "$ADDR" --conns 4 --rate 300 --duration 2) || fail "rate run failed: $out"
echo "$out" | tail -1
rate=$(echo "$out" | tail -1 | sed -n 's/.*ops\/s: \([0-9.]*\).*/\1/p')
awk -v r="$rate" 'BEGIN { exit !(r >= 200 && r <= 320) }' || fail "--rate 300 gave $rate ops/s"

# Load with 8 connections; kill -9 the server in the middle.
on_host_bg client "$CLIENT" --server "$ADDR" --conns 8 --duration 4 --timeout 1000 --quiet \
    --history "$HIST" >"$RUNDIR_CLIENT/load.out" 2>&1
CLIENT_PID=$HOST_PID
sleep 1.5
kill -9 "$SERVER_PID"
wait "$CLIENT_PID"
tail -1 "$RUNDIR_CLIENT/load.out"
grep -q "errors: [1-9]" "$RUNDIR_CLIENT/load.out" || fail "the client did not notice the server dying"
grep -q "^E .* broken" "$HIST" || fail "broken connections are not in the history"
acked=$(grep -c "^R .* ack \(SET\|DEL\|INCR\) " "$HIST")
[ "$acked" -gt 100 ] || fail "only $acked writes acknowledged before the kill"

start_server
grep "records replayed" "$RUNDIR_PRIMARY/server.out" | tail -1
check=$(on_host client "$CLIENT" --check "$HIST" --server "$ADDR")
rc=$?
echo "$check" | tail -5
[ $rc = 0 ] || fail "checker exit $rc"
echo "$check" | tail -1 | grep -Eq "^acknowledged: [1-9][0-9]* lost: 0$" || fail "checker verdict"

# The checker is not blind: overwrite acknowledged keys behind its back and it must say so.
on_host client "$CLIENT" --server "$ADDR" --conns 1 --ops 300 --mix set=1 --keys 10 >/dev/null ||
    fail "overwrite run failed"
check=$(on_host client "$CLIENT" --check "$HIST" --server "$ADDR")
rc=$?
echo "$check" | tail -1
[ $rc = 1 ] || fail "checker exit $rc after overwriting acknowledged writes"
echo "$check" | tail -1 | grep -Eq "lost: [1-9]" || fail "checker missed overwritten keys"
echo "PASS: $acked acknowledged writes survived kill -9 and restart"
