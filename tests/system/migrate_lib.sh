# Helpers of the migration system tests (migrate_*.sh; sourced after kv_guest_lib.sh): commands,
# domain states per host, a running kvstore under load.
#
# Usage: source "$HERE/kv_guest_lib.sh"; source "$HERE/migrate_lib.sh"; then ng_init ...; mig_init

# mig_init: key files and the remote command pieces; call after hosts_setup.
mig_init() {
    KEY="$HOSTS_DIR/mig.key"
    BADKEY="$HOSTS_DIR/mig-bad.key"
    head -c 32 /dev/urandom >"$KEY"
    head -c 32 /dev/urandom >"$BADKEY"
    chmod 600 "$KEY" "$BADKEY"
}

# receiver_cmd HOST: the receiver command run inside HOST's namespace by `ip netns exec`.
receiver_cmd() {
    echo "env TANDEM_RUNDIR=$(host_rundir "$1") TANDEM_VMM=$TANDEM_VMM $T migrate-receive"
}

# migrate_shell FROM TO NAME [OPTIONS...]: tandem migrate on FROM through `ip netns exec TO-ns`.
migrate_shell() {
    local from=$1 to=$2 name=$3
    shift 3
    on_host "$from" "$T" migrate -s "ip netns exec" --receiver "$(receiver_cmd "$to")" "$@" \
        "$name" "$(host_ns "$to")"
}

# state HOST NAME: the domain's state letters column from tandem list, or "none".
state() {
    local s
    s=$(on_host "$1" "$T" list 2>/dev/null | awk -v n="$2" '$1 == n { print $5 }')
    echo "${s:-none}"
}

# running HOST NAME: true if NAME runs (r or b) on HOST.
running() {
    case $(state "$1" "$2") in
    r* | -b*) return 0 ;;
    *) return 1 ;;
    esac
}

# domains HOST: the names of all domains on HOST, one line.
domains() {
    on_host "$1" "$T" list 2>/dev/null | awk 'NR > 1 { printf "%s ", $1 }'
}

# exactly_one NAME: fail unless NAME runs on exactly one of primary/backup and nothing else is
# left (no --incoming copy); prints where it runs.
exactly_one() {
    local n=0 where="" h tries=0
    # `tandem list` on a loaded machine can lag a state change by a moment: look a few times.
    while :; do
        n=0
        for h in primary backup; do
            if running "$h" "$1"; then
                n=$((n + 1))
                where=$h
            fi
        done
        [ $n = 1 ] || [ $tries -ge 20 ] && break
        tries=$((tries + 1))
        sleep 0.25
    done
    if [ $n != 1 ]; then
        echo "$1 runs on $n hosts (primary: $(state primary "$1"), backup: $(state backup "$1"))" >&2
        fail "$1 runs on $n hosts (primary: $(state primary "$1"), backup: $(state backup "$1"))"
    fi
    for h in primary backup; do
        case " $(domains "$h")" in
        *"--incoming"*)
            echo "a --incoming copy is left on $h: $(domains "$h")" >&2
            fail "a --incoming copy is left on $h: $(domains "$h")"
            ;;
        esac
    done
    echo "$where"
}

# wait_until SECS CMD...: poll CMD every 0.1 s until it succeeds.
wait_until() {
    local n=$(($1 * 10))
    shift
    while [ $n -gt 0 ]; do
        "$@" && return 0
        sleep 0.1
        n=$((n - 1))
    done
    return 1
}

# proc_stopped PID: true once PID is stopped (SIGSTOP from TANDEM_MIGRATE_TEST_STOP).
proc_stopped() {
    [ "$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)" = T ]
}

# find_proc HOSTRUNDIR STOPTAG [STATE]: pid of a tandem process whose environment has
# TANDEM_RUNDIR=HOSTRUNDIR and TANDEM_MIGRATE_TEST_STOP=STOPTAG (STOPTAG "-": none), in STATE (T:
# stopped; default any). Prints it; false if none.
find_proc() {
    local p env
    for p in /proc/[0-9]*; do
        [ -r "$p/environ" ] || continue
        env=$({ tr '\0' '\n' <"$p/environ"; } 2>/dev/null) || continue
        grep -qx "TANDEM_RUNDIR=$1" <<<"$env" || continue
        { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | grep -q "tandem migrate" || continue
        if [ "$2" != - ]; then
            grep -qx "TANDEM_MIGRATE_TEST_STOP=$2" <<<"$env" || continue
        fi
        if [ -n "${3:-}" ]; then
            [ "$(awk '{ print $3 }' "$p/stat" 2>/dev/null)" = "$3" ] || continue
        fi
        echo "${p#/proc/}"
        return 0
    done
    return 1
}

# has_domain HOST NAME: true if HOST lists NAME (any state).
has_domain() {
    case " $(domains "$1")" in
    *" $2 "*) return 0 ;;
    esac
    return 1
}

# no_domains HOST: true when HOST has no domain at all.
no_domains() {
    [ -z "$(domains "$1")" ]
}
