#!/bin/bash
# tandem save / restore through the CLI and libtandem (docs/checkpoint.md): statecheck continues,
# save -c keeps the domain, existing names and damaged images are refused leaving nothing behind,
# [CONFIG] replaces the embedded configuration.
# Usage: save_cli.sh TANDEM_EXE TANDEM_VMM_EXE GUEST_DIR
set -u
source "$(dirname "$0")/lifecycle_lib.sh"
lc_init "$@"
[ -f "$G/statecheck.elf" ] || lc_skip "guest image $G/statecheck.elf is not built"
HERE=$(cd "$(dirname "$0")" && pwd)
W=$(mktemp -d /tmp/tdmsave.XXXXXX) || fail "mktemp"
trap 'lc_cleanup; rm -rf "$W"' EXIT

rounds() { "$T" console --log "$1" | grep -c "register checks, ok"; }
has_rounds() { [ "$(rounds "$1")" -ge "$2" ]; }
no_mismatch() { ! "$T" console --log "$1" | grep -q MISMATCH; }

# 1. statecheck: save (destroys), restore into a fresh VMM, checks continue without a mismatch.
create sc statecheck 'cmdline="mem=8"' >/dev/null 2>&1 || fail "create sc"
wait_for 20 has_rounds sc 2 || fail "statecheck made no progress"
out=$("$T" save sc "$W/sc.img" 2>&1) || fail "save sc: $out"
case "$out" in *"Saved domain sc"*"destroyed it"*) ;; *) fail "save said: $out" ;; esac
"$T" domid sc >/dev/null 2>&1 && fail "sc still exists after save without -c"
size=$(stat -c %s "$W/sc.img")
[ "$size" -lt $((24 << 20)) ] || fail "image of a 32 MiB domain is $size bytes"
out=$("$T" restore "$W/sc.img" 2>&1) || fail "restore: $out"
case "$out" in *"restored from"*running*) ;; *) fail "restore said: $out" ;; esac
[ "$(state_of sc)" = "r-----" ] || [ "$(state_of sc)" = "-b----" ] || [ -n "$(state_of sc)" ] ||
    fail "restored sc not listed"
wait_for 20 has_rounds sc 2 || fail "statecheck made no progress after restore"
no_mismatch sc || fail "statecheck mismatch after restore: $("$T" console --log sc | tail -3)"

# 2. save -c leaves it running; restoring the image under the same name is refused.
out=$("$T" save -c -l sc "$W/sc2.img" 2>&1) || fail "save -c -l: $out"
case "$out" in *"still running"*) ;; *) fail "save -c said: $out" ;; esac
"$T" list sc | grep -q "^sc " || fail "sc gone after save -c"
n_before=$(ls "$TANDEM_RUNDIR/domains" | wc -l)
expect_fail "exists" "$T" restore "$W/sc2.img"
[ "$(ls "$TANDEM_RUNDIR/domains" | wc -l)" = "$n_before" ] || fail "refused restore left a folder"
sleep 1
no_mismatch sc || fail "statecheck mismatch after save -c"
# On a terminal: a progress line (phase, round, percent, MB, MB/s) rewritten with \r.
if command -v script >/dev/null; then
    out=$(script -qec "'$T' save -c sc '$W/tty.img'" /dev/null) || fail "save on a tty: $out"
    case "$out" in *$'\r'"saving: "*round*%*MB/s*) ;; *) fail "no progress line on a tty: $out" ;; esac
fi

# 3. [CONFIG] replaces the embedded configuration (new name); a different memory size is refused.
sed -e 's/^name = .*/name = "sc3"/' "$LC_CFG" >"$W/sc3.cfg"
echo "kernel = \"$G/statecheck.elf\"" >>"$W/sc3.cfg"
echo 'cmdline = "mem=8"' >>"$W/sc3.cfg"
out=$("$T" restore -p "$W/sc2.img" "$W/sc3.cfg" 2>&1) || fail "restore with CONFIG: $out"
case "$(state_of sc3)" in *p*) ;; *) fail "sc3 not paused: '$(state_of sc3)'" ;; esac
"$T" unpause sc3 || fail "unpause sc3"
wait_for 20 has_rounds sc3 2 || fail "sc3 made no progress"
no_mismatch sc3 || fail "sc3 mismatch"
sed -e 's/^name = .*/name = "sc4"/' -e 's/^memory = .*/memory = 64/' "$W/sc3.cfg" >"$W/sc4.cfg"
expect_fail "memory" "$T" restore "$W/sc2.img" "$W/sc4.cfg"
"$T" domid sc4 >/dev/null 2>&1 && fail "sc4 exists after a refused restore"
"$T" destroy sc >/dev/null 2>&1
"$T" destroy sc3 >/dev/null 2>&1
assert_clean

# 4. Damaged images: refused before anything is created, naming offset and record.
python3 "$HERE/save_images.py" "$W/sc.img" "$W/bad" >"$W/bad.list" || fail "save_images.py"
count=0
while read -r name rec; do
    out=$("$T" restore "$W/bad/$name" 2>&1)
    rc=$?
    [ $rc -eq 1 ] || fail "$name: restore exited $rc: $out"
    case "$name" in
    magic) want="not a tandem stream" ;;
    version) want="newer" ;;
    *) want="record $rec" ;;
    esac
    case "$out" in *"$want"*) ;; *) fail "$name: message lacks '$want': $out" ;; esac
    if [ "$rec" != 0 ]; then
        case "$out" in *"offset "[0-9]*) ;; *) fail "$name: message lacks the offset: $out" ;; esac
    fi
    assert_clean
    count=$((count + 1))
done <"$W/bad.list"
[ $count -ge 10 ] || fail "only $count damaged images tried"
echo "ok: save/restore, save -c, CONFIG, existing name, $count damaged images refused"
