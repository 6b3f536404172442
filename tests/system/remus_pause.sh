#!/bin/bash
# System test: a user's pause and the Remus epoch engine's brief pauses are kept apart.
# With checkpoints every 2 ms (blackhole, so no backup is needed):
#  - `info` never shows the running domain as paused (the epochs' pauses are the engine's);
#  - a user `pause` (which often lands inside an epoch) stays: the state stays paused and the
#    vCPU's CPU time does not move while epochs go on; `unpause` lets it run again.
# usage: remus_pause.sh TANDEM TANDEM-VMM GUEST-DIR TANDEM-KVCLIENT
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/remus_lib.sh"
rm_init "$@"
[ -f "$G/ticker.elf" ] || ng_skip "guest image $G/ticker.elf is not built"
hosts_setup primary
trap_show() { [ "${PASSED:-}" = 1 ] || show_domain primary tk; }
hosts_at_exit trap_show

# vmm_cmd HOST NAME CMD: one raw control request (docs/control.md), the JSON reply on stdout.
vmm_cmd() {
    python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.connect(sys.argv[1])
s.send(("{\"cmd\": \"%s\"}" % sys.argv[2]).encode())
print(s.recv(1 << 20).decode())' "$(host_rundir "$1")/names/$2/control.sock" "$3"
}

# info_states N: N `info` replies in a row, one state per line.
info_states() {
    python3 -c 'import json, socket, sys
for i in range(int(sys.argv[2])):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(sys.argv[1])
    s.send(b"{\"cmd\": \"info\"}")
    print(json.loads(s.recv(1 << 20))["info"]["state"])
    s.close()' "$(host_rundir primary)/names/tk/control.sock" "$1"
}

field() { # field JSON KEY: an integer field of a JSON reply
    echo "$1" | grep -oE "\"$2\": ?[0-9]+" | head -1 | grep -oE '[0-9]+$'
}

on_host primary "$T" create "$NG_EXAMPLES/ticker.cfg" name=tk "kernel=\"$G/ticker.elf\"" memory=32 >/dev/null ||
    fail "tandem create of the ticker guest failed"
on_host primary "$T" remus -F -b -i 2 tk 2>"$HOSTS_DIR/remus.err" ||
    { cat "$HOSTS_DIR/remus.err"; fail "tandem remus -F -b failed"; }

# 1. Running and protected: no `info` may say paused.
states=$(info_states 400)
n_paused=$(echo "$states" | grep -c paused)
n_running=$(echo "$states" | grep -c running)
echo "1. 400 info replies while checkpointing every 2 ms: $n_running running, $n_paused paused"
[ "$n_paused" = 0 ] || fail "info showed an epoch's pause as paused ($n_paused of 400)"
[ "$n_running" = 400 ] || fail "unexpected states: $(echo "$states" | sort | uniq -c | tr '\n' ' ')"

# 2. User pauses (landing at random points of the epochs) stay.
for i in $(seq 1 15); do
    on_host primary "$T" pause tk || fail "pause $i"
    sleep 0.05
    a=$(vmm_cmd primary tk info)
    s1=$(on_host primary "$T" remus-status tk 2>&1) || fail "pause $i: remus-status: $s1"
    e1=$(field "$s1" epoch)
    sleep 0.2
    b=$(vmm_cmd primary tk info)
    s2=$(on_host primary "$T" remus-status tk 2>&1) || fail "pause $i: remus-status: $s2"
    e2=$(field "$s2" epoch)
    echo "$a" | grep -qE '"state": ?"paused"' || fail "pause $i: info right after: $a"
    echo "$b" | grep -qE '"state": ?"paused"' || fail "pause $i: an epoch undid the user's pause: $b"
    [ "$(field "$a" cpu_time_ns)" = "$(field "$b" cpu_time_ns)" ] ||
        fail "pause $i: the vCPU ran while paused ($(field "$a" cpu_time_ns) -> $(field "$b" cpu_time_ns) ns)"
    [ "$e2" -gt "$e1" ] || fail "pause $i: no checkpoint while paused (epoch $e1 -> $e2)"
    on_host primary "$T" unpause tk || fail "unpause $i"
    sleep 0.05
    c=$(vmm_cmd primary tk info)
    echo "$c" | grep -qE '"state": ?"running"' || fail "unpause $i: $c"
done
c1=$(field "$(vmm_cmd primary tk info)" cpu_time_ns)
sleep 0.3
c2=$(field "$(vmm_cmd primary tk info)" cpu_time_ns)
[ "$c2" -gt "$c1" ] || fail "the guest does not run after the last unpause ($c1 -> $c2 ns)"
on_host primary "$T" remus-status tk | grep -q '"state": "protected"' || fail "not protected at the end"
echo "2. 15 user pauses during 2 ms epochs: each stayed paused (CPU time frozen, epochs going on), each unpause ran again"
PASSED=1
echo "PASS: remus_pause"
