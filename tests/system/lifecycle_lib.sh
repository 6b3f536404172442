# Helpers of the lifecycle system tests (sourced): a private runtime dir, create/wait/assert helpers.
#
# Usage from a test:  source "$(dirname "$0")/lifecycle_lib.sh"; lc_init "$@"
# Arguments: TANDEM_EXE TANDEM_VMM_EXE GUEST_DIR (build/guest). The test skips
# (exit 77 with a reason) without /dev/kvm, the VMM or the guest images.
# Every domain and file of the test is removed from an EXIT trap, also on failure.

LC_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LC_CFG="$LC_HERE/lifecycle.cfg"

fail() {
    echo "FAIL: $*"
    exit 1
}

lc_skip() {
    echo "SKIP: $*"
    exit 77
}

# Kill every VMM of our runtime dir and remove it (EXIT trap). VMMs are found by their
# pid files and, for ones whose folder is already gone, by their --domain-dir under our root.
lc_cleanup() {
    local pidf pid
    [ -n "${TANDEM_RUNDIR:-}" ] && [ -d "$TANDEM_RUNDIR" ] || return 0
    for pidf in "$TANDEM_RUNDIR"/domains/*/vmm.pid; do
        [ -f "$pidf" ] || continue
        pid=$(cat "$pidf" 2>/dev/null)
        [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
    done
    for pid in $(pgrep -f -- "--domain-dir $TANDEM_RUNDIR/domains/"); do
        kill -9 "$pid" 2>/dev/null
    done
    sleep 0.1
    rm -rf "$TANDEM_RUNDIR"
}

lc_init() {
    [ $# -ge 3 ] || fail "usage: $0 TANDEM_EXE TANDEM_VMM_EXE GUEST_DIR"
    T=$(realpath -- "$1")
    TANDEM_VMM=$(realpath -- "$2")
    export TANDEM_VMM
    G=$(realpath -m -- "$3")
    [ -x "$T" ] || fail "no tandem executable at $T"
    [ -e /dev/kvm ] || lc_skip "/dev/kvm is missing"
    [ -r /dev/kvm ] && [ -w /dev/kvm ] || lc_skip "/dev/kvm is not accessible to $(id -un)"
    [ -x "$TANDEM_VMM" ] || lc_skip "no tandem-vmm at $TANDEM_VMM"
    for img in hello ticker; do
        [ -f "$G/$img.elf" ] || lc_skip "guest image $G/$img.elf is not built"
    done
    # Short: control.sock paths must fit in 108 bytes.
    TANDEM_RUNDIR=$(mktemp -d /tmp/tdmlc.XXXXXX) || fail "mktemp"
    export TANDEM_RUNDIR
    trap lc_cleanup EXIT
}

# create NAME IMAGE [KEY=VALUE...]: create a domain from lifecycle.cfg running IMAGE.elf.
create() {
    local name=$1 img=$2
    shift 2
    "$T" create "$LC_CFG" "name=\"$name\"" "kernel=\"$G/$img.elf\"" "$@"
}

# wait_for SECONDS COMMAND...: poll COMMAND every 0.1 s until it succeeds; 1 on timeout.
wait_for() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        [ $SECONDS -lt $deadline ] || return 1
        sleep 0.1
    done
}

console_bytes() {
    "$T" console --log "$1" | wc -c
}

# Fields of `tandem list -l` through python: jq-like one-liners without jq.
list_json() {
    "$T" list -l "$@" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(json.dumps(d))'
}

vmm_pid_of() {
    "$T" list -l "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["info"]["vmm_pid"])'
}

# State column of `tandem list` for domain NAME.
state_of() {
    "$T" list "$1" | awk -v n="$1" '$1 == n { print $5 }'
}

# After `tandem list` (which reaps), nothing may remain of any domain.
assert_clean() {
    "$T" list >/dev/null || fail "list failed"
    [ -z "$(ls -A "$TANDEM_RUNDIR/domains")" ] ||
        fail "stale domain folders: $(ls -A "$TANDEM_RUNDIR/domains")"
    [ -z "$(ls -A "$TANDEM_RUNDIR/names")" ] || fail "stale names: $(ls -A "$TANDEM_RUNDIR/names")"
    if pgrep -f -- "--domain-dir $TANDEM_RUNDIR/" >/dev/null; then
        fail "a tandem-vmm of this test is still running"
    fi
}

# expect_fail "MESSAGE PART" COMMAND...: COMMAND must exit 1 and print MESSAGE PART on stderr.
expect_fail() {
    local want=$1 out rc
    shift
    out=$("$@" 2>&1 >/dev/null)
    rc=$?
    [ $rc -eq 1 ] || fail "'$*' exited $rc (want 1): $out"
    case "$out" in
    *"$want"*) ;;
    *) fail "'$*' said '$out', which lacks '$want'" ;;
    esac
}
