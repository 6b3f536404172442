#!/bin/bash
# System test: 4 workers create/pause/unpause/rename/destroy in a loop while another lists; nothing leaks.
source "$(dirname "$0")/lifecycle_lib.sh"
lc_init "$@"

ROUNDS=${LIFECYCLE_STRESS_ROUNDS:-10}
logs=$(mktemp -d /tmp/tdmlcs.XXXXXX)
trap 'lc_cleanup; rm -rf "$logs"' EXIT

worker() {
    local w=$1 r
    for r in $(seq "$ROUNDS"); do
        create "w$w" ticker || return 1
        "$T" pause "w$w" || return 1
        "$T" unpause "w$w" || return 1
        "$T" rename "w$w" "w$w-r" || return 1
        [ "$("$T" domname "$("$T" domid "w$w-r")")" = "w$w-r" ] || return 1
        "$T" destroy "w$w-r" || return 1
    done
}

lister() {
    while [ ! -e "$logs/stop" ]; do
        "$T" list >/dev/null || return 1
        "$T" list -l >/dev/null || return 1
    done
}

lister >"$logs/lister" 2>&1 &
lpid=$!
pids=()
for w in 1 2 3 4; do
    worker $w >"$logs/w$w" 2>&1 &
    pids+=($!)
done
for w in 1 2 3 4; do
    wait "${pids[$((w - 1))]}" || fail "worker $w failed: $(grep -v '^Parsing\|^Domain' "$logs/w$w")"
done
touch "$logs/stop"
wait $lpid || fail "list failed under load: $(cat "$logs/lister")"
assert_clean
echo "PASS"
