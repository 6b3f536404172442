#!/bin/bash
# System test: guest state across live migration, without a network. statecheck (registers
# including AVX/AVX-512, memory it rewrites during the pre-copy, clock) and ticker (guest time)
# move between two runtime directories on this machine (-s '' with `env TANDEM_RUNDIR=...` as
# HOST) and on again; statecheck keeps checking with no MISMATCH and ticker's guest time never
# goes back. A domain paused before the migration arrives paused.
# usage: migrate_state.sh TANDEM TANDEM-VMM GUEST-DIR
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/lifecycle_lib.sh"
lc_init "$@"
for g in statecheck ticker; do
    [ -f "$G/$g.elf" ] || lc_skip "guest image $G/$g.elf is not built"
done
A="$TANDEM_RUNDIR/a"
B="$TANDEM_RUNDIR/b"
mkdir -p "$A" "$B"
VMM=$(realpath -- "$2")

# move FROM TO NAME: migrate NAME from runtime dir FROM to TO through the remote-shell path.
move() {
    TANDEM_RUNDIR=$1 "$T" migrate -s '' --receiver "$T migrate-receive" "$3" \
        "env TANDEM_RUNDIR=$2 TANDEM_VMM=$VMM" 2>&1
}

# console DIR NAME
console() {
    cat "$1/names/$2/console.log" 2>/dev/null
}

# checks DIR: the number of statecheck "ok" lines so far.
checks() {
    console "$1" sc | grep -c ', ok$'
}

TANDEM_RUNDIR=$A "$T" create "$LC_CFG" name=sc kernel="$G/statecheck.elf" memory=64 \
    on_crash=preserve >/dev/null 2>&1 || fail "create statecheck"
TANDEM_RUNDIR=$A "$T" create "$LC_CFG" name=tk kernel="$G/ticker.elf" memory=32 \
    'extra="count=100000"' on_crash=preserve >/dev/null 2>&1 || fail "create ticker"
for i in $(seq 50); do [ "$(checks "$A")" -ge 1 ] && break; sleep 0.1; done
[ "$(checks "$A")" -ge 1 ] || fail "statecheck does not report: $(console "$A" sc | tail -2)"
sleep 1.5

# a -> b -> a, twice for statecheck; each time it must go on checking without a mismatch.
for hop in "$A $B" "$B $A" "$A $B"; do
    set -- $hop
    out=$(move "$1" "$2" sc) || fail "migrate statecheck $1 -> $2: $out"
    echo "$out" | tail -1
    n=$(checks "$2")
    for i in $(seq 60); do [ "$(checks "$2")" -gt "$n" ] && break; sleep 0.1; done
    [ "$(checks "$2")" -gt "$n" ] || fail "statecheck stopped reporting after the move: $(console "$2" sc | tail -2)"
    console "$2" sc | grep -q MISMATCH && fail "statecheck: $(console "$2" sc | grep MISMATCH | head -2)"
done

# A migrated domain (created as sc--incoming, renamed at "go") saved and restored comes back as
# sc; a domain renamed by hand comes back under its new name (the VMM's config follows rename).
# listed DIR NAME: true if DIR's `tandem list` shows NAME.
listed() {
    TANDEM_RUNDIR=$1 "$T" list 2>/dev/null | awk -v n="$2" '$1 == n { f = 1 } END { exit !f }'
}
out=$(TANDEM_RUNDIR=$B "$T" save sc "$TANDEM_RUNDIR/sc.img" 2>&1) || fail "save migrated sc: $out"
out=$(TANDEM_RUNDIR=$B "$T" restore "$TANDEM_RUNDIR/sc.img" 2>&1) || fail "restore sc: $out"
listed "$B" sc || fail "migrated sc came back as: $(TANDEM_RUNDIR=$B "$T" list)"
TANDEM_RUNDIR=$B "$T" rename sc scr || fail "rename sc scr"
out=$(TANDEM_RUNDIR=$B "$T" save scr "$TANDEM_RUNDIR/scr.img" 2>&1) || fail "save scr: $out"
out=$(TANDEM_RUNDIR=$B "$T" restore "$TANDEM_RUNDIR/scr.img" 2>&1) || fail "restore scr: $out"
listed "$B" scr || fail "renamed scr came back as: $(TANDEM_RUNDIR=$B "$T" list)"
TANDEM_RUNDIR=$B "$T" list -l scr | grep -q '"name": *"scr"' ||
    fail "list -l shows the old name: $(TANDEM_RUNDIR=$B "$T" list -l scr | grep name)"
echo "save/restore after migration and rename: names kept"

times() {
    console "$1" tk | sed -n 's/^tick [0-9]*: guest time \([0-9.]*\) s.*/\1/p'
}
times "$A" >"$TANDEM_RUNDIR/times"
out=$(move "$A" "$B" tk) || fail "migrate ticker: $out"
sleep 3.5
times "$B" >>"$TANDEM_RUNDIR/times"
[ "$(wc -l <"$TANDEM_RUNDIR/times")" -ge 5 ] || fail "ticker did not go on: $(console "$B" tk | tail -3)"
sort -n -c "$TANDEM_RUNDIR/times" || fail "ticker's guest time went back: $(tr '\n' ' ' <"$TANDEM_RUNDIR/times")"
echo "ticker guest times: $(tr '\n' ' ' <"$TANDEM_RUNDIR/times" | tail -c 80)"

# Paused stays paused.
TANDEM_RUNDIR=$B "$T" pause tk || fail "pause ticker"
out=$(move "$B" "$A" tk) || fail "migrate paused ticker: $out"
TANDEM_RUNDIR=$A "$T" list tk | grep -q -- '--p---' || fail "a paused domain arrived running: $(TANDEM_RUNDIR=$A "$T" list tk)"

TANDEM_RUNDIR=$B "$T" destroy scr
TANDEM_RUNDIR=$A "$T" destroy tk
echo "PASS: statecheck and ticker state survived live migrations; a paused domain stayed paused; names kept through save/restore"
