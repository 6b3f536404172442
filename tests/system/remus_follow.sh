#!/bin/bash
# System test: tandem_domain_remus_follow (through `tandem remus-status --follow`) delivers every
# epoch's steps through the save path's callbacks, in order: suspend, postcopy, checkpoint N, then
# N's telemetry, for consecutive epochs; two followers at once; following ends with protection
# (domain destroyed: exit 0, "protection ... ended"); a domain that is not protected is refused.
# usage: remus_follow.sh TANDEM TANDEM-VMM GUEST-DIR TANDEM-KVCLIENT
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/remus_lib.sh"
rm_init "$@"
[ -f "$G/ticker.elf" ] || ng_skip "guest image $G/ticker.elf is not built"
hosts_setup primary
trap_show() { [ "${PASSED:-}" = 1 ] || show_domain primary tk; }
hosts_at_exit trap_show

# check_order FILE N: FILE holds N complete epochs, each suspend, postcopy, checkpoint E, epoch E:
# ..., with E consecutive.
check_order() {
    awk -v want="$2" '
        { line[NR] = $0 }
        END {
            if (NR != 4 * want) { print "expected " 4 * want " lines, got " NR; exit 1 }
            prev = -1
            for (i = 1; i <= NR; i += 4) {
                if (line[i] != "suspend" || line[i + 1] != "postcopy") { print "bad order at line " i ": " line[i] " / " line[i + 1]; exit 1 }
                split(line[i + 2], c, " "); split(line[i + 3], t, "[ :]")
                if (c[1] != "checkpoint" || t[1] != "epoch" || c[2] != t[2]) { print "bad checkpoint/telemetry at line " i + 2 ": " line[i + 2] " / " line[i + 3]; exit 1 }
                if (line[i + 3] !~ /pause [0-9]+ us, [0-9]+ dirty pages, [0-9]+ bytes, send [0-9.]+ ms, ack [0-9.]+ ms/) { print "bad telemetry: " line[i + 3]; exit 1 }
                if (prev >= 0 && c[2] != prev + 1) { print "epochs not consecutive: " prev " then " c[2]; exit 1 }
                prev = c[2]
            }
        }' "$1"
}

on_host primary "$T" create "$NG_EXAMPLES/ticker.cfg" name=tk "kernel=\"$G/ticker.elf\"" memory=32 >/dev/null ||
    fail "tandem create of the ticker guest failed"
out=$(on_host primary "$T" remus-status --follow tk 2>&1) && fail "following an unprotected domain was accepted"
echo "$out" | grep -q "not protected" || fail "following an unprotected domain: $out"
on_host primary "$T" remus -F -b -i 10 tk 2>"$HOSTS_DIR/remus.err" ||
    { cat "$HOSTS_DIR/remus.err"; fail "tandem remus -F -b failed"; }

# Two followers at once, 30 epochs each.
on_host primary "$T" remus-status --follow --epochs 30 tk >"$HOSTS_DIR/f1" 2>&1 &
p1=$!
on_host primary "$T" remus-status --follow --epochs 30 tk >"$HOSTS_DIR/f2" 2>&1 || fail "follower 2: $(tail -2 "$HOSTS_DIR/f2")"
wait $p1 || fail "follower 1: $(tail -2 "$HOSTS_DIR/f1")"
why=$(check_order "$HOSTS_DIR/f1" 30) || fail "follower 1: $why"
why=$(check_order "$HOSTS_DIR/f2" 30) || fail "follower 2: $why"
echo "1. two followers, 30 epochs each, in order: $(sed -n 3p "$HOSTS_DIR/f1") .. $(tail -2 "$HOSTS_DIR/f1" | head -1)"

# Following until protection ends: the domain destroyed ends it.
on_host primary "$T" remus-status --follow tk >"$HOSTS_DIR/f3" 2>"$HOSTS_DIR/f3.err" &
p3=$!
sleep 0.5
on_host primary "$T" destroy tk || fail "destroy"
wait $p3 || fail "follow did not end cleanly with the domain: $(cat "$HOSTS_DIR/f3.err")"
grep -q "ended" "$HOSTS_DIR/f3.err" || fail "follow: no word on the end: $(cat "$HOSTS_DIR/f3.err")"
n=$(grep -c '^epoch ' "$HOSTS_DIR/f3")
[ "$n" -ge 10 ] || fail "only $n epochs followed in 0.5 s at 100 Hz"
echo "2. followed $n epochs until the domain was destroyed: $(cat "$HOSTS_DIR/f3.err")"
PASSED=1
echo "PASS: remus_follow"
