#!/bin/bash
# System test: a Remus-protected kvstore under client load; the primary VMM is SIGKILLed at a random
# moment, RUNS times (default 20). The backup takes over: every acknowledged write is readable and
# the client's connections survive (it never reconnects: an error would show in its summary).
# usage: remus_failover.sh TANDEM TANDEM-VMM GUEST-DIR TANDEM-KVCLIENT [RUNS]
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/remus_lib.sh"
rm_init "$@"
RUNS=${5:-${REMUS_RUNS:-20}}
rm_hosts
trap_show() { [ "${PASSED:-}" = 1 ] || { show_domain primary kvstore; echo "--- backup vmm.log"; rm_backup_log | tail -40; }; }
hosts_at_exit trap_show

total_acked=0
for run in $(seq 1 "$RUNS"); do
    # A fresh pair each run: both images empty and identical, no domain on either host.
    truncate -s 0 "$PDISK" "$BDISK" && truncate -s 16M "$PDISK" "$BDISK"
    rm_create
    rm_protect -i 25 --timeout 1000 --heartbeat 50
    rm_status primary | grep -q '"state": "protected"' || fail "run $run: not protected: $(rm_status primary)"
    HIST="$RUNDIR_CLIENT/history.$run"
    rm_load "$HIST" 3
    # Somewhere in the middle of the load: 0.5 .. 2.0 s.
    sleep "$(awk -v r=$RANDOM 'BEGIN { printf "%.2f", 0.5 + 1.5 * r / 32767 }')"
    pid=$(rm_vmm_pid primary) || fail "run $run: no primary vmm.pid"
    t0=$(date +%s%N)
    kill -9 "$pid" || fail "run $run: kill -9 $pid"
    rm_wait_backup_running 5 || fail "run $run: the backup did not take over: $(rm_backup_log | grep remus | tail -3)"
    t1=$(date +%s%N)
    wait "$CLIENT_PID"
    crc=$?
    summary=$(tail -1 "$HIST.out")
    [ $crc = 0 ] || fail "run $run: client exit $crc: $summary"
    echo "$summary" | grep -q " errors: 0 " || fail "run $run: the client saw errors (a connection did not survive): $summary"
    rm_check "$HIST"
    total_acked=$((total_acked + RM_ACKED))
    echo "run $run: failover $(((t1 - t0) / 1000000)) ms after the kill; $(rm_backup_log | grep -o 'FAILOVER: [^;]*;' | tail -1)"
    # The primary's folder is reaped by the next create; the backup's domain goes.
    on_host backup "$T" destroy kvstore || fail "run $run: destroy on backup"
    on_host primary "$T" list >/dev/null 2>&1
done
PASSED=1
echo "PASS: $RUNS SIGKILLs of the primary, $total_acked acknowledged writes, none lost, no client errors"
