#!/bin/bash
# System test: a SIGKILLed VMM is reaped by list, console ends with its domain, bad configs leave nothing.
source "$(dirname "$0")/lifecycle_lib.sh"
lc_init "$@"

# VMM killed -9: list reaps it, lookups say it is gone, its name is free again.
create victim ticker || fail "create victim"
pid=$(vmm_pid_of victim)
[ -n "$pid" ] && kill -0 "$pid" || fail "no VMM pid for victim"
kill -9 "$pid"
wait_for 5 sh -c "! kill -0 $pid 2>/dev/null || grep -q '^[^)]*) Z' /proc/$pid/stat" || fail "VMM survived kill -9"
[ -z "$("$T" list | tail -n +2)" ] || fail "list still shows the killed domain"
assert_clean
create victim ticker || fail "name of the killed domain is not free"
"$T" destroy victim || fail "destroy victim"

# An attached console ends when its domain is destroyed.
create watched ticker || fail "create watched"
"$T" console watched >"$TANDEM_RUNDIR/console.out" </dev/null &
cpid=$!
wait_for 5 grep -q "tick 1" "$TANDEM_RUNDIR/console.out" 2>/dev/null || fail "console shows no ticks"
"$T" destroy watched || fail "destroy watched"
wait_for 3 sh -c "! kill -0 $cpid 2>/dev/null" || fail "console did not end with its domain"
wait $cpid || fail "console exited non-zero"
rm -f "$TANDEM_RUNDIR/console.out"
assert_clean

# On a terminal, Ctrl-] detaches the console and leaves the domain running and the tty as it was.
create detach ticker || fail "create detach"
python3 - "$T" <<'PY' || fail "Ctrl-] did not detach the console"
import os, pty, select, sys, termios, time
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], [sys.argv[1], "console", "detach"])
before = termios.tcgetattr(fd)
out, deadline = b"", time.time() + 5
while b"tick 1" not in out and time.time() < deadline:
    if select.select([fd], [], [], 0.2)[0]:
        out += os.read(fd, 4096)
assert b"tick 1" in out, out
os.write(fd, b"\x1d")
deadline = time.time() + 3
while time.time() < deadline:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        break
    if select.select([fd], [], [], 0.1)[0]:
        try:
            os.read(fd, 4096)
        except OSError:
            pass
else:
    sys.exit("console still attached 3 s after Ctrl-]")
assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
PY
[ "$(state_of detach)" = "r-----" ] || fail "domain not running after detach"
"$T" destroy detach || fail "destroy detach"
assert_clean

# A guest that powers off with on_poweroff=preserve stays listed as shut down.
create kept hello on_poweroff=preserve || fail "create kept"
wait_for 5 sh -c "\"$T\" list kept | grep -q -- '---s--'" || fail "preserved domain shows '$(state_of kept)'"
"$T" console --log kept | grep -q SUCCESS || fail "console --log of the preserved domain"
"$T" destroy kept || fail "destroy kept"
assert_clean

# A crashing guest: preserved, list shows it crashed; destroyed, the lookup says why it ended.
if [ -f "$G/badptr.elf" ]; then
    create crashy badptr on_crash=preserve || fail "create crashy"
    wait_for 5 sh -c "\"$T\" list crashy | grep -q -- '---sc-'" ||
        fail "crashed+preserved domain shows '$(state_of crashy)'"
    "$T" list -l crashy | grep -q '"state": "crashed"' || fail "list -l does not say crashed"
    "$T" destroy crashy || fail "destroy crashy"
    create crashy badptr || fail "create crashy (on_crash=destroy)"
    wait_for 5 sh -c "! \"$T\" domid crashy >/dev/null 2>&1" || fail "crashy did not go away"
    assert_clean
    create crashy badptr || fail "create crashy again"
    sleep 1
    expect_fail "domain 'crashy' (id 1) has exited (crash, code -1: bad pointer" "$T" pause crashy
    assert_clean
fi

# Bad input: one clear message naming the problem, nothing left behind.
expect_fail "/nonexistent/nothing.elf" "$T" create "$LC_CFG" name=bad 'kernel="/nonexistent/nothing.elf"'
assert_clean
echo "not an ELF" >"$TANDEM_RUNDIR/notelf.elf"
expect_fail "domain 'bad': kernel $TANDEM_RUNDIR/notelf.elf: not an ELF file" \
    "$T" create "$LC_CFG" name=bad "kernel=\"$TANDEM_RUNDIR/notelf.elf\""
rm -f "$TANDEM_RUNDIR/notelf.elf"
assert_clean
expect_fail "domain 'bad': vcpus=2: tandem-vmm runs exactly one vCPU" create bad ticker vcpus=2
assert_clean
expect_fail "domain name '12' is all digits" create 12 ticker
assert_clean
if [ -f "$G/wrongabi.elf" ]; then
    expect_fail "domain 'bad': kernel $G/wrongabi.elf: guest ABI version 999" create bad wrongabi
    assert_clean
fi
echo "PASS"
