#!/bin/sh
# End-to-end test of `tandem config-check`: JSON output, overrides, errors and exit statuses.
# Usage: config_check.sh PATH/TO/tandem
set -u
TANDEM=${1:?usage: config_check.sh TANDEM_BINARY}
case $TANDEM in /*) ;; *) TANDEM=$(pwd)/$TANDEM ;; esac
[ -x "$TANDEM" ] || { echo "config_check: $TANDEM is not executable"; exit 1; }
dir=$(mktemp -d /tmp/tandem-config-check.XXXXXX)
trap 'rm -rf "$dir"' EXIT
fails=0

fail() {
    echo "FAIL: $*"
    fails=$((fails + 1))
}

# check NAME WANT_STATUS WANT_STDOUT_FILE WANT_STDERR_FILE -- ARGS...
check() {
    name=$1 want_rc=$2 want_out=$3 want_err=$4
    shift 5
    "$TANDEM" "$@" >"$dir/out" 2>"$dir/err"
    rc=$?
    [ "$rc" = "$want_rc" ] || fail "$name: exit status $rc, want $want_rc (stderr: $(cat "$dir/err"))"
    if [ -n "$want_out" ] && ! diff -u "$want_out" "$dir/out" >"$dir/diff"; then
        fail "$name: stdout differs:"
        cat "$dir/diff"
    fi
    if [ -n "$want_err" ] && ! diff -u "$want_err" "$dir/err" >"$dir/diff"; then
        fail "$name: stderr differs:"
        cat "$dir/diff"
    fi
}

cd "$dir" || exit 1

cat >vm.cfg <<'EOF'
# a test domain
name = "vm1"
memory = 0x100; vcpus = 2
extra = 'console=hvc0'
extra += " quiet"
disk = [ 'a.img,raw,xvda,rw',
         # second disk
         "b.img,raw,xvdb,ro", ]
EOF

cat >want.json <<'EOF'
[
    {
        "name": "name",
        "op": "=",
        "value": "vm1",
        "line": 2,
        "source": "vm.cfg"
    },
    {
        "name": "memory",
        "op": "=",
        "value": 256,
        "line": 3,
        "source": "vm.cfg"
    },
    {
        "name": "vcpus",
        "op": "=",
        "value": 2,
        "line": 3,
        "source": "vm.cfg"
    },
    {
        "name": "extra",
        "op": "=",
        "value": "console=hvc0",
        "line": 4,
        "source": "vm.cfg"
    },
    {
        "name": "extra",
        "op": "+=",
        "value": " quiet",
        "line": 5,
        "source": "vm.cfg"
    },
    {
        "name": "disk",
        "op": "=",
        "value": [
            "a.img,raw,xvda,rw",
            "b.img,raw,xvdb,ro"
        ],
        "line": 6,
        "source": "vm.cfg"
    }
]
EOF
: >empty
check plain 0 want.json empty -- config-check vm.cfg
check dashdash 0 want.json empty -- config-check -- vm.cfg

# Overrides come after the file's settings, numbered by position.
sed '$d' want.json | sed '$s/}$/},/' >want2.json
cat >>want2.json <<'EOF'
    {
        "name": "memory",
        "op": "=",
        "value": 512,
        "line": 1,
        "source": "<command line>"
    },
    {
        "name": "name",
        "op": "=",
        "value": "bare",
        "line": 2,
        "source": "<command line>"
    }
]
EOF
check overrides 0 want2.json empty -- config-check vm.cfg memory=512 name=bare

echo "[]" >want_empty.json
check empty_file 0 want_empty.json empty -- config-check empty

printf 'name = "x"\nmemory = [1,,]\n' >bad.cfg
echo "bad.cfg:2: config parsing error near ',': syntax error, unexpected ',', expecting STRING or NUMBER or NEWLINE or '[' or ']'" >want_err
check syntax_error 1 empty want_err -- config-check bad.cfg

echo "<command line>:2: config parsing error near ',': syntax error, unexpected ',', expecting STRING or NUMBER or NEWLINE or '[' or ']'" >want_err
check override_error 1 empty want_err -- config-check vm.cfg memory=1 'disk=["a",,]'

echo "missing.cfg: unable to open configuration file: No such file or directory" >want_err
check missing_file 1 empty want_err -- config-check missing.cfg

check no_file 2 empty "" -- config-check
grep -q "missing FILE" err || fail "no_file: stderr does not say what is missing: $(cat err)"
check bad_option 2 empty "" -- config-check --frobnicate vm.cfg
check help 0 "" empty -- config-check --help
grep -q "Usage: tandem config-check" out || fail "help: no usage line in: $(cat out)"

if [ "$fails" -ne 0 ]; then
    echo "$fails config-check case(s) failed"
    exit 1
fi
echo "config-check: all cases passed"
exit 0
