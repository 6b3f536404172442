#!/bin/bash
# System test: Remus invariants under faults other than a killed primary VMM (docs/remus.md "Tests"):
#  1. output commit: with the backup frozen (SIGSTOP) no reply, ping or ping6 reply leaves the primary
#     until the backup acknowledges again; with -n (no netbuf) the same requests are fast;
#  2. backup killed: the primary keeps serving, remus-status says unprotected (RPO != 0);
#  3. the whole primary host deleted (kill_host): the backup takes over, nothing acknowledged lost;
#  4. initial sync cut short: primary killed -> the backup does not take over;
#     backup killed -> `tandem remus` fails and the primary serves on;
#  5. remus_backup = "HOST" in the configuration protects the domain from its creation.
# usage: remus_faults.sh TANDEM TANDEM-VMM GUEST-DIR TANDEM-KVCLIENT
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/remus_lib.sh"
rm_init "$@"
rm_hosts
trap_show() { [ "${PASSED:-}" = 1 ] || { show_domain primary kvstore; echo "--- backup vmm.log"; rm_backup_log | tail -30; }; }
hosts_at_exit trap_show

fresh() {
    on_host primary "$T" destroy kvstore >/dev/null 2>&1
    on_host backup "$T" destroy kvstore >/dev/null 2>&1
    pkill_backup_receivers
    truncate -s 0 "$PDISK" "$BDISK" && truncate -s 16M "$PDISK" "$BDISK"
    rm_create
}

# The backup's VMM pid (also before it took over: it has no vmm.pid then).
backup_vmm_pid() {
    local p
    for p in $(ip netns pids "$NS_BACKUP"); do
        { tr '\0' ' ' <"/proc/$p/cmdline"; } 2>/dev/null | grep -q -- '--remus-ack-fd' && echo "$p"
    done
}

pkill_backup_receivers() {
    local p
    for p in $(ip netns pids "$NS_BACKUP" 2>/dev/null); do
        { tr '\0' ' ' <"/proc/$p/cmdline"; } 2>/dev/null | grep -q -- 'remus-receive' && kill -9 "$p"
    done
}

# one_request_ms: wall time of one GET from client, in ms.
one_request_ms() {
    local t0 t1
    t0=$(date +%s%N)
    on_host client "$CLIENT" --server "$RM_ADDR" --ops 1 --mix get=1 --timeout 5000 --quiet >/dev/null 2>&1 ||
        fail "a request failed"
    t1=$(date +%s%N)
    echo $(((t1 - t0) / 1000000))
}

ping_ms() { # ping_ms -4|-6 ADDR: RTT of one ping in ms (integer)
    on_host client ping "$1" -c1 -W5 "$2" 2>/dev/null | sed -n 's/.*time=\([0-9.]*\) ms.*/\1/p' | cut -d. -f1
}

# ---- 1. output commit ------------------------------------------------------------------------------
fresh
on_host primary "$T" remus -s "ip netns exec $NS_BACKUP env TANDEM_RUNDIR=$RUNDIR_BACKUP TANDEM_VMM=$TANDEM_VMM" \
    --receiver "$T remus-receive --disk-map $PDISK=$BDISK" -i 25 --timeout 5000 kvstore "" 2>/dev/null ||
    fail "tandem remus failed"
base=$(one_request_ms)
echo "1. protected, backup running: one request takes $base ms"
b=$(backup_vmm_pid)
[ -n "$b" ] || fail "no backup VMM"
kill -STOP "$b"
t0=$(date +%s%N)
( sleep 0.8; kill -CONT "$b" ) &
on_host client ip neigh flush dev br0
p4=$(ping_ms -4 "$RM_IP")
wait
kill -STOP "$b"
( sleep 0.8; kill -CONT "$b" ) &
on_host client ip -6 neigh flush dev br0
p6=$(ping_ms -6 fd99::100)
wait
kill -STOP "$b"
( sleep 0.8; kill -CONT "$b" ) &
req=$(one_request_ms)
wait
echo "   backup frozen for 800 ms, three times: ping (with ARP) ${p4:-none} ms, ping6 (with ND) ${p6:-none} ms, a GET $req ms"
[ -n "$p4" ] && [ "$p4" -ge 500 ] ||
    fail "a ping reply (or the ARP reply before it) left the primary while the backup could not ACK (${p4:-no reply} ms)"
[ -n "$p6" ] && [ "$p6" -ge 500 ] ||
    fail "a ping6 reply (or the NA before it) left the primary while the backup could not ACK (${p6:-no reply} ms)"
[ "$req" -ge 500 ] || fail "a kvstore reply left the primary while the backup could not ACK ($req ms)"
on_host primary "$T" remus-status kvstore | grep -q '"state": "protected"' || fail "not protected after the freeze"
# The same freeze without output buffering (unsafe): the reply is not held.
on_host primary "$T" destroy kvstore || fail "destroy"
fresh
on_host primary "$T" remus -F -n -s "ip netns exec $NS_BACKUP env TANDEM_RUNDIR=$RUNDIR_BACKUP TANDEM_VMM=$TANDEM_VMM" \
    --receiver "$T remus-receive --disk-map $PDISK=$BDISK" -i 25 --timeout 5000 kvstore "" 2>/dev/null ||
    fail "tandem remus -F -n failed"
b=$(backup_vmm_pid)
kill -STOP "$b"
( sleep 0.8; kill -CONT "$b" ) &
on_host client ip neigh flush dev br0
p4n=$(ping_ms -4 "$RM_IP")
wait
echo "   the same with -n (no netbuf): ping ${p4n:-none} ms"
[ -n "$p4n" ] && [ "$p4n" -lt 300 ] || fail "without netbuf the ping should not wait for the backup (${p4n:-no reply} ms)"
! on_host primary "$T" remus kvstore "" 2>/dev/null || fail "a second remus on a protected domain was accepted"
out=$(on_host primary "$T" save kvstore "$HOSTS_DIR/kv.save" 2>&1) && fail "a save of a protected domain was accepted"
echo "$out" | grep -q "protected by Remus" || fail "save of a protected domain: $out"
echo "   a second remus and a save of the protected domain are refused"

# ---- 2. backup killed ------------------------------------------------------------------------------
fresh
rm_protect -i 25 --timeout 1000 --heartbeat 50
HIST="$RUNDIR_CLIENT/history.backupkill"
rm_load "$HIST" 3
sleep 1
kill -9 "$(backup_vmm_pid)" || fail "kill the backup VMM"
wait "$CLIENT_PID" || fail "the client failed after the backup died: $(tail -1 "$HIST.out")"
st=$(rm_status primary)
echo "$st" | grep -q '"state": "unprotected"' || fail "status after the backup died: $st"
echo "$st" | grep -q '"rpo_zero": false' || fail "status does not say RPO != 0: $st"
grep -q "UNPROTECTED" "$(host_rundir primary)/names/kvstore/vmm.log" || fail "no UNPROTECTED message in vmm.log"
rm_check "$HIST"
echo "2. backup killed: primary serves on ($(tail -1 "$HIST.out" | cut -d' ' -f1-6)), status unprotected: $(echo "$st" | sed -n 's/.*"reason": "\(.*\)".*/\1/p')"

# ---- 4. initial sync cut short ---------------------------------------------------------------------
# A receiver that starts reading late keeps the primary inside its initial sync (the pipe is full).
printf '#!/bin/sh\nsleep 1.5\nexec "%s" remus-receive --disk-map "%s=%s"\n' "$T" "$PDISK" "$BDISK" \
    >"$HOSTS_DIR/slowrecv.sh"
chmod +x "$HOSTS_DIR/slowrecv.sh"
slow_protect() {
    on_host_bg primary "$T" remus -s "ip netns exec $NS_BACKUP env TANDEM_RUNDIR=$RUNDIR_BACKUP TANDEM_VMM=$TANDEM_VMM" \
        --receiver "$HOSTS_DIR/slowrecv.sh" kvstore "" >"$1" 2>&1
    REMUS_PID=$HOST_PID
    sleep 0.5
}
# 4a. the primary dies during the sync: the backup must not take over.
fresh
slow_protect "$HOSTS_DIR/sync-a.log"
kill -9 "$(rm_vmm_pid primary)" || fail "kill the primary VMM"
wait "$REMUS_PID" && fail "tandem remus succeeded although its primary died"
sleep 3
[ -z "$(rm_vmm_pid backup)" ] || fail "the backup took over without a complete checkpoint"
[ -z "$(backup_vmm_pid)" ] || fail "a backup VMM still runs after the primary died during the sync"
grep -q "ended without taking over" "$HOSTS_DIR/sync-a.log" ||
    fail "the receiver did not say it did not take over: $(cat "$HOSTS_DIR/sync-a.log")"
echo "4a. primary killed during the initial sync: the backup did not take over"
# 4b. the backup dies during the sync: the primary serves on, unprotected.
fresh
slow_protect "$HOSTS_DIR/sync-b.log"
for p in $(ip netns pids "$NS_BACKUP"); do kill -9 "$p"; done
wait "$REMUS_PID" && fail "tandem remus succeeded although its backup died"
ms=$(one_request_ms)
st=$(rm_status primary)
echo "$st" | grep -q '"rpo_zero": false' || fail "status after a failed sync: $st"
echo "4b. backup killed during the initial sync: remus failed, the primary answers in $ms ms"

# ---- 5. remus_backup in the configuration: protected from creation ------------------------------------
fresh
on_host primary "$T" destroy kvstore >/dev/null 2>&1
# The "remote shell" drops HOST and runs the receiver in the backup namespace.
printf '#!/bin/sh\nshift\nexec ip netns exec %s env TANDEM_RUNDIR=%s TANDEM_VMM=%s "$@"\n' \
    "$NS_BACKUP" "$RUNDIR_BACKUP" "$TANDEM_VMM" >"$HOSTS_DIR/toback.sh"
chmod +x "$HOSTS_DIR/toback.sh"
on_host primary env TANDEM_REMUS_SHELL="$HOSTS_DIR/toback.sh" \
    TANDEM_REMUS_RECEIVER="$T remus-receive --disk-map $PDISK=$BDISK" \
    "$T" create "$NG_EXAMPLES/kvstore.cfg" "kernel=\"$G/kvstore.elf\"" "memory=64" \
    "extra=\"ip=$RM_IP/24 ip6=fd99::100/64 port=7000\"" "disk=[\"$PDISK,raw,xvda,rw\"]" \
    'vif=["bridge=br0"]' 'remus_backup="backup"' 2>"$HOSTS_DIR/create.err" ||
    fail "create with remus_backup failed: $(cat "$HOSTS_DIR/create.err")"
rm_status primary | grep -q '"state": "protected"' || fail "remus_backup: not protected: $(rm_status primary)"
echo "5. remus_backup = \"backup\": $(grep PROTECTED "$HOSTS_DIR/create.err")"

# ---- 3. the primary host deleted ---------------------------------------------------------------------
fresh
rm_protect -i 25 --timeout 1000 --heartbeat 50
HIST="$RUNDIR_CLIENT/history.hostkill"
rm_load "$HIST" 3
sleep 1.2
kill_host primary
rm_wait_backup_running 5 || fail "the backup did not take over after kill_host primary"
wait "$CLIENT_PID" || fail "client: $(tail -1 "$HIST.out")"
rm_check "$HIST"
echo "3. primary host deleted: backup took over, client: $(tail -1 "$HIST.out" | cut -d' ' -f1-6)"

PASSED=1
echo "PASS: output commit, backup loss, primary host loss"
