#!/bin/bash
# System test: 8 parallel creates get distinct domids; 2 parallel creates of one name: one wins.
source "$(dirname "$0")/lifecycle_lib.sh"
lc_init "$@"

out=$(mktemp -d /tmp/tdmlco.XXXXXX)
trap 'lc_cleanup; rm -rf "$out"' EXIT
pids=()
for i in 0 1 2 3 4 5 6 7; do
    create "c$i" ticker >"$out/c$i" 2>&1 &
    pids+=($!)
done
for i in 0 1 2 3 4 5 6 7; do
    wait "${pids[$i]}" || fail "create c$i failed: $(cat "$out/c$i")"
done
ids=$(for i in 0 1 2 3 4 5 6 7; do "$T" domid "c$i" || fail "domid c$i"; done | sort -n | tr '\n' ' ')
[ "$ids" = "1 2 3 4 5 6 7 8 " ] || fail "domids of 8 parallel creates are '$ids'"
[ "$("$T" list | tail -n +2 | wc -l)" = 8 ] || fail "list does not show 8 domains"
for i in 0 1 2 3 4 5 6 7; do
    [ "$("$T" domname "$("$T" domid "c$i")")" = "c$i" ] || fail "name and id of c$i disagree"
done
for i in 0 1 2 3 4 5 6 7; do
    "$T" destroy "c$i" &
    pids[$i]=$!
done
for i in 0 1 2 3 4 5 6 7; do
    wait "${pids[$i]}" || fail "parallel destroy of c$i failed"
done
assert_clean

create twin ticker >"$out/a" 2>&1 &
a=$!
create twin ticker >"$out/b" 2>&1 &
b=$!
wait $a
ra=$?
wait $b
rb=$?
[ $((ra == 0)) -ne $((rb == 0)) ] || fail "two creates of 'twin': exit codes $ra and $rb"
grep -q "a domain named 'twin' already exists" "$out/a" "$out/b" || fail "the loser's message"
[ "$("$T" list | tail -n +2 | wc -l)" = 1 ] || fail "more than one 'twin'"
"$T" destroy twin || fail "destroy twin"
assert_clean
echo "PASS"
