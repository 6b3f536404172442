#!/usr/bin/env python3
"""Network device guest tests: TAP + bridge in a temporary network namespace, the netecho guest.

Usage: net_test.py --vmm PATH --guests DIR CASE
Exit 0 = pass, 77 = skip (no /dev/kvm, not root, no network namespaces), else fail.
"""
import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

ARGS = None
NS = f"tdm-net{os.getpid()}"
GUEST_IP = "10.77.0.2"


class Fail(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Fail(msg)


def sh(*cmd, ok=True):
    p = subprocess.run(list(cmd), capture_output=True, text=True)
    if ok and p.returncode != 0:
        raise Fail(f"{' '.join(cmd)}: {p.stderr.strip()}")
    return p


def ns(*cmd, ok=True):
    return sh("ip", "netns", "exec", NS, *cmd, ok=ok)


def vmm_cmd(vif, cmdline):
    return ["ip", "netns", "exec", NS, ARGS.vmm, "--kernel",
            os.path.join(ARGS.guests, "netecho.elf"), "--vif", vif, "--cmdline", cmdline]


def start(vif, cmdline):
    return subprocess.Popen(vmm_cmd(vif, cmdline), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def run(vif, cmdline="ip=" + GUEST_IP + " secs=1"):
    return subprocess.run(vmm_cmd(vif, cmdline), capture_output=True, text=True, timeout=60)


def links():
    return ns("ip", "-o", "link", "show").stdout


def taps():
    return re.findall(r"^\d+: (vif[^:@]*)[:@]", links(), re.M)


def wait_for_link(name, secs=10):
    end = time.time() + secs
    while time.time() < end:
        if re.search(rf"^\d+: {re.escape(name)}[:@]", links(), re.M):
            return
        time.sleep(0.05)
    raise Fail(f"{name} did not appear")


def expect_refused(p, pattern, what):
    check(p.returncode == 1, f"{what}: exit {p.returncode}, expected 1; {p.stderr!r}")
    err = p.stderr.strip()
    check(re.search(pattern, err), f"{what}: message {err!r} does not match {pattern!r}")
    check(p.stdout == "", f"{what}: guest ran: {p.stdout!r}")
    check(taps() == [], f"{what}: TAP devices left behind: {taps()}")


def case_net_ping(tmp):
    g = start("bridge=br0,mac=00:16:3e:12:34:56,mtu=1400", f"ip={GUEST_IP} pings=25 secs=30")
    try:
        wait_for_link("vif0.0")
        info = ns("ip", "-d", "link", "show", "vif0.0").stdout
        check("master br0" in info and "mtu 1400" in info and "UP" in info,
              f"TAP not up on br0 with mtu 1400: {info}")
        p = ns("ping", "-c", "20", "-i", "0.05", "-W", "2", "-s", "1000", GUEST_IP, ok=False)
        check(" 0% packet loss" in p.stdout, f"ping: {p.stdout}{p.stderr}")
        # The bridge learned the guest's MAC on the TAP port (frames came from the guest).
        fdb = ns("bridge", "fdb", "show", "dev", "vif0.0").stdout
        check("00:16:3e:12:34:56" in fdb, f"bridge fdb on vif0.0: {fdb!r}")
        p = ns("ping", "-c", "5", "-i", "0.05", "-W", "2", GUEST_IP, ok=False)
        check(" 0% packet loss" in p.stdout, f"ping: {p.stdout}{p.stderr}")
        out, err = g.communicate(timeout=30)
    finally:
        if g.poll() is None:
            g.kill()
            g.wait()
    check(g.returncode == 0 and "SUCCESS" in out, f"guest: {g.returncode} {out}{err}")
    check("mtu 1400 mac 00:16:3e:12:34:56" in out, f"boot-info vif entry: {out!r}")
    check(taps() == [], f"TAP left after the guest exited: {taps()}")


def case_net_ping_hypercalls(tmp):
    """The per-request path (tg_rings=0) answers too, with full-size frames."""
    g = start("bridge=br0,mac=00:16:3e:12:34:57", f"ip={GUEST_IP} pings=10 secs=30 tg_rings=0")
    try:
        wait_for_link("vif0.0")
        p = ns("ping", "-c", "10", "-i", "0.05", "-W", "2", "-s", "1472", GUEST_IP, ok=False)
        check(" 0% packet loss" in p.stdout, f"ping: {p.stdout}{p.stderr}")
        out, err = g.communicate(timeout=30)
    finally:
        if g.poll() is None:
            g.kill()
            g.wait()
    check(g.returncode == 0 and "SUCCESS" in out, f"guest: {g.returncode} {out}{err}")


def case_net_flood(tmp):
    """A flood fills the RX ring (the VMM stops reading the TAP, the guest's doorbell resumes it):
    the guest still gets 20000 benchmark frames, and a new guest answers ping afterwards."""
    bd = os.path.join(os.path.dirname(ARGS.vmm), "..", "bench", "bench_dev")
    if not os.path.exists(bd):
        print("skip: bench_dev is not built")
        sys.exit(77)
    g = subprocess.Popen(["ip", "netns", "exec", NS, ARGS.vmm, "--kernel",
                          os.path.join(ARGS.guests, "netperf.elf"), "--vif",
                          "bridge=br0,mac=00:16:3e:00:0b:01", "--cmdline",
                          "mode=rx count=20000 secs=20"], stdout=subprocess.PIPE, text=True)
    try:
        wait_for_link("vif0.0")
        time.sleep(0.3)
        for _ in range(4):
            ns(bd, "send", "br0", "00:16:3e:00:0b:01", "20000", "60")
        out, _ = g.communicate(timeout=30)
    finally:
        if g.poll() is None:
            g.kill()
            g.wait()
    check(g.returncode == 0 and "SUCCESS" in out, f"netperf rx: {out}")
    n = int(re.search(r"frames (\d+)", out).group(1))
    check(n == 20000, f"only {n} frames through a full ring")
    case_net_ping(tmp)


def case_net_bad_vif(tmp):
    expect_refused(run("bridge=nobr0"), r"vif vif0.0: bridge 'nobr0' does not exist",
                   "missing bridge")
    expect_refused(run("bridge=br0,mac=00:16:3e:zz:00:01"), r"mac: expected xx:xx", "bad MAC")
    expect_refused(run("bridge=lo"), r"'lo' is not a bridge", "not a bridge")
    # A MAC some other port of the bridge already has.
    ns("ip", "link", "add", "txv0", "type", "veth", "peer", "name", "txv1")
    ns("ip", "link", "set", "txv0", "address", "00:16:3e:aa:bb:01", "master", "br0", "up")
    try:
        expect_refused(run("bridge=br0,mac=00:16:3e:aa:bb:01"),
                       r"MAC 00:16:3e:aa:bb:01 is already in use on bridge br0 \(by port txv0\)",
                       "port MAC")
        # A MAC the bridge has learned from a station behind a port (txv1 talks on bringing up).
        ns("ip", "link", "set", "txv1", "address", "00:16:3e:aa:bb:02", "up")
        end = time.time() + 10
        while "00:16:3e:aa:bb:02" not in ns("bridge", "fdb", "show", "br", "br0").stdout:
            check(time.time() < end, "the bridge never learned txv1's MAC")
            time.sleep(0.1)
        expect_refused(run("bridge=br0,mac=00:16:3e:aa:bb:02"),
                       r"MAC 00:16:3e:aa:bb:02 is already in use on bridge br0 \(by a station "
                       r"the bridge has learned on port txv0\)", "learned MAC")
        # A static FDB entry.
        ns("bridge", "fdb", "add", "00:16:3e:aa:bb:04", "dev", "txv0", "master", "static")
        expect_refused(run("bridge=br0,mac=00:16:3e:aa:bb:04"),
                       r"MAC 00:16:3e:aa:bb:04 is already in use on bridge br0 \(by a static FDB "
                       r"entry on port txv0\)", "static FDB MAC")
    finally:
        ns("ip", "link", "del", "txv0", ok=False)
    # A MAC another running guest has (before it sent anything).
    g = start("bridge=br0,mac=00:16:3e:aa:bb:03", f"ip={GUEST_IP} secs=20")
    try:
        wait_for_link("vif0.0")
        p = run("bridge=br0,mac=00:16:3e:aa:bb:03,vifname=vif9.0")
        check(p.returncode == 1 and "already in use on bridge br0 (by the guest behind port "
              "vif0.0)" in p.stderr, f"duplicate guest MAC: {p.returncode} {p.stderr!r}")
        # The same name twice is refused and the first TAP is untouched.
        p = run("bridge=br0")
        check(p.returncode == 1 and "vif0.0: a network interface with that name already exists"
              in p.stderr, f"duplicate name: {p.stderr!r}")
        check(taps() == ["vif0.0"], f"taps now {taps()}")
    finally:
        g.kill()
        g.wait()


def case_net_sigkill(tmp):
    g = subprocess.Popen(["ip", "netns", "exec", NS, ARGS.vmm, "--kernel",
                          os.path.join(ARGS.guests, "netecho.elf"), "--vif", "bridge=br0",
                          "--cmdline", f"ip={GUEST_IP} secs=60"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_link("vif0.0")
    finally:
        g.send_signal(signal.SIGKILL)  # ip netns exec execs the VMM: this is the VMM
        g.wait()
    end = time.time() + 5
    while taps() and time.time() < end:
        time.sleep(0.05)
    check(taps() == [], f"TAP survived SIGKILL of the VMM: {taps()}")


def case_net_script(tmp):
    log = os.path.join(tmp, "script.log")
    script = os.path.join(tmp, "vif-test")
    with open(script, "w") as f:
        f.write("#!/bin/sh\n"
                f"echo \"$1 vif=$vif bridge=$bridge mac=$mac mtu=$mtu up=$(cat /sys/class/net/$vif/operstate)\" >> {log}\n"
                "[ -e " + os.path.join(tmp, "fail") + " ] && exit 3\n"
                "exit 0\n")
    os.chmod(script, 0o755)
    p = run(f"bridge=br0,mac=00:16:3e:00:00:42,script={script}")
    check(p.returncode == 0 and "SUCCESS" in p.stdout, f"guest: {p.stdout}{p.stderr}")
    lines = open(log).read().splitlines()
    check(len(lines) == 2, f"script calls: {lines}")
    check(lines[0].startswith("online vif=vif0.0 bridge=br0 mac=00:16:3e:00:00:42 mtu=1500"),
          f"online call: {lines[0]}")
    check(lines[1].startswith("offline vif=vif0.0"), f"offline call: {lines[1]}")
    # A failing script refuses the vif and leaves no TAP.
    open(os.path.join(tmp, "fail"), "w").close()
    expect_refused(run(f"bridge=br0,script={script}"),
                   rf"vif vif0.0: script {re.escape(script)} online failed with status 3",
                   "failing script")


def case_net_mac_generated(tmp):
    p = run("bridge=br0")
    check(p.returncode == 0, f"guest: {p.stdout}{p.stderr}")
    m = re.search(r"mac ([0-9a-f:]{17})", p.stdout)
    check(m and m.group(1).startswith("00:16:3e:"), f"generated MAC: {p.stdout!r}")
    p2 = run("bridge=br0")
    m2 = re.search(r"mac ([0-9a-f:]{17})", p2.stdout)
    check(m2 and m2.group(1) != m.group(1), "two generated MACs are equal")


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--vmm", required=True)
    ap.add_argument("--guests", required=True)
    ap.add_argument("case")
    ARGS = ap.parse_args()
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        print("skip: /dev/kvm is not usable here")
        return 77
    if os.geteuid() != 0:
        print("skip: network namespaces and TAP devices need root")
        return 77
    if sh("ip", "netns", "add", NS, ok=False).returncode != 0:
        print("skip: cannot create a network namespace")
        return 77
    fn = globals().get("case_" + ARGS.case)
    rc = 0
    try:
        if not fn:
            print(f"unknown case {ARGS.case}")
            return 2
        ns("ip", "link", "set", "lo", "up")
        ns("ip", "link", "add", "br0", "type", "bridge")
        ns("ip", "addr", "add", "10.77.0.1/24", "dev", "br0")
        ns("ip", "link", "set", "br0", "up")
        with tempfile.TemporaryDirectory(prefix="tandem-net-") as tmp:
            fn(tmp)
        print("PASS")
    except (Fail, subprocess.TimeoutExpired) as e:
        print(f"FAIL: {e}")
        rc = 1
    finally:
        sh("ip", "netns", "del", NS, ok=False)
    return rc


if __name__ == "__main__":
    sys.exit(main())
