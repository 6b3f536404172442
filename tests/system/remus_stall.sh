#!/bin/bash
# System test: a full Remus output buffer stalls the guest's TX ring instead of dropping frames.
# The netperf guest floods N frames (far more than the 8 MiB buffer) while the backup is frozen
# (SIGSTOP, so no ACK releases anything); afterwards every frame must have reached the TAP, the
# ring must report tx_dropped 0 and at least one stall, and the domain must still be protected.
# usage: remus_stall.sh TANDEM TANDEM-VMM GUEST-DIR TANDEM-KVCLIENT
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/remus_lib.sh"
rm_init "$@"
[ -f "$G/netperf.elf" ] || ng_skip "guest image $G/netperf.elf is not built"
rm_hosts
trap_show() { [ "${PASSED:-}" = 1 ] || { show_domain primary np; echo "--- backup vmm.log"; rm_backup_log | tail -30; }; }
hosts_at_exit trap_show

COUNT=20000 # x 1514 bytes = 29 MB, more than three times VMM_NETBUF_CAP
SIZE=1514

# vmm_cmd HOST NAME CMD: one raw control request (docs/control.md), the JSON reply on stdout.
vmm_cmd() {
    python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.connect(sys.argv[1])
s.send(("{\"cmd\": \"%s\"}" % sys.argv[2]).encode())
print(s.recv(1 << 20).decode())' "$(host_rundir "$1")/names/$2/control.sock" "$3"
}

backup_vmm_pid() {
    local p
    for p in $(ip netns pids "$NS_BACKUP"); do
        { tr '\0' ' ' <"/proc/$p/cmdline"; } 2>/dev/null | grep -q -- '--remus-ack-fd' && echo "$p"
    done
}

# Created paused: nothing is sent before the protection holds the output.
on_host primary "$T" create -p "$NG_EXAMPLES/hello.cfg" name=np "kernel=\"$G/netperf.elf\"" memory=32 \
    "extra=\"mode=tx count=$COUNT size=$SIZE secs=120 linger=30\"" 'vif=["bridge=br0"]' >/dev/null ||
    fail "tandem create of the netperf guest failed"
on_host primary "$T" remus -s "ip netns exec $NS_BACKUP env TANDEM_RUNDIR=$RUNDIR_BACKUP TANDEM_VMM=$TANDEM_VMM" \
    --receiver "$T remus-receive" -i 25 --timeout 5000 np "" 2>"$HOSTS_DIR/remus.err" ||
    { cat "$HOSTS_DIR/remus.err"; fail "tandem remus failed"; }
ifname=$(vmm_cmd primary np devices | grep -oE '"ifname": ?"[^"]*"' | head -1 | cut -d'"' -f4)
[ -n "$ifname" ] || fail "no vif TAP on the primary"
rx0=$(on_host primary cat "/sys/class/net/$ifname/statistics/rx_packets")

b=$(backup_vmm_pid)
[ -n "$b" ] || fail "no backup VMM"
kill -STOP "$b"
on_host primary "$T" unpause np || { kill -CONT "$b"; fail "unpause"; }
sleep 1
# Frozen backup: nothing acknowledged, so at most the 8 MiB buffer (plus the epoch in flight) left.
mid=$(($(on_host primary cat "/sys/class/net/$ifname/statistics/rx_packets") - rx0))
kill -CONT "$b"
wait_console primary np "SUCCESS|FAIL" 120 || fail "netperf did not finish"
console primary np | grep -q SUCCESS || fail "netperf: $(console primary np | tail -2)"
sleep 0.5 # the last epoch's ACK releases the last frames
sent=$(console primary np | sed -n 's/^netperf tx frames \([0-9]*\) .*eagain \([0-9]*\).*/\1 \2/p')
arrived=$(($(on_host primary cat "/sys/class/net/$ifname/statistics/rx_packets") - rx0))
devs=$(vmm_cmd primary np devices | sed 's/":/": /g')
st=$(on_host primary "$T" remus-status np)
echo "guest sent (frames, EAGAINs): $sent; reached the TAP: $arrived (during the 1 s freeze: $mid)"
echo "ring counters: $(echo "$devs" | grep -oE '"tx_(dropped|stalls)": [0-9]+' | tr '\n' ' ')"
[ "${sent%% *}" = "$COUNT" ] || fail "the guest sent ${sent%% *} frames, not $COUNT"
[ "$mid" -le $(((8 << 20) / SIZE + 2000)) ] ||
    fail "$mid frames left the primary while the backup could not ACK (buffer is 8 MiB)"
[ "$arrived" -eq "$COUNT" ] || fail "$arrived of $COUNT frames reached the TAP"
echo "$devs" | grep -q '"tx_dropped": 0' || fail "the ring dropped frames: $devs"
echo "$devs" | grep -qE '"tx_stalls": [1-9]' || fail "the ring never stalled (was the buffer full?): $devs"
echo "$st" | grep -q '"state": "protected"' || fail "not protected after the freeze: $st"
PASSED=1
echo "PASS: remus_stall"
