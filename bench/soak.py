#!/usr/bin/python3
"""A soak of kvdb: mixed load for a long time, with snapshots, and a crowd
of idle and half-open connections (slowloris) in the middle of it.

One kvdb (src/dsd) on a free loopback port, its data on disk under
/var/tmp, timed snapshots every 60 s (and the log-size ones).  dsd-bench
runs get=60,tas=34,del=5,set=1 at 16 x 100 on 100,000 prefilled keys for
the whole run.  From 25% to 75% of the run, a crowd holds --idle
connections that never send a byte and --half-open ones that send part of
the HTTP/2 preface and stall, reopening whatever the server closes, so
that together they are more than the server's connection limit.  Every
5 s a new client connects and asks for health, timed.  Every 30 s the
server's RSS, open files and the snapshot's size are sampled; the start's
figures are those of the first sample a tenth of the run in (the prefill
and a first snapshot done).  At the end
the load stops and `dsd-cli check` must pass against the same server.

Prints one line per sample, then a summary: RSS and open files at start
and end, RSS growth against the data's (the snapshot's) growth, the load's
throughput before, during and after the crowd, the health checks' latency
in each phase, what the server logged about the crowd, and the check's
result.  Exits non-zero if the check failed, the server died, or a health
check went unanswered.

usage: bench/soak.py [--duration 3600] [--idle 600] [--half-open 600]
                     [--dsd src/dsd]
"""
import argparse
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(TOP, "tests", "kvdb"))
from kvclient import free_port  # noqa: E402

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def proc_stat(pid):
    rss = 0
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
    fds = len(os.listdir("/proc/%d/fd" % pid))
    return rss, fds


class Crowd:
    """Idle and half-open connections, topped up once a second."""

    def __init__(self, port, idle, half):
        self.port, self.want = port, {"idle": idle, "half": half}
        self.socks = {"idle": [], "half": []}
        self.closed = 0         # closed by the server, seen here
        self.refused = 0        # connect() failed
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def open_one(self, kind):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", self.port))
        except BlockingIOError:
            pass
        except OSError:
            self.refused += 1
            s.close()
            return
        if kind == "half":
            try:
                s.send(PREFACE[:10])
            except OSError:
                pass
        self.socks[kind].append(s)

    def reap(self):
        for kind, lst in self.socks.items():
            keep = []
            for s in lst:
                try:
                    d = s.recv(4096)
                    if d == b"":
                        raise ConnectionResetError
                    keep.append(s)      # got bytes (a GOAWAY): still open
                except BlockingIOError:
                    keep.append(s)
                except OSError:
                    self.closed += 1
                    s.close()
            self.socks[kind] = keep

    def run(self):
        while not self.stop.is_set():
            self.reap()
            for kind in self.socks:
                while len(self.socks[kind]) < self.want[kind]:
                    self.open_one(kind)
                    if self.stop.is_set():
                        break
            self.stop.wait(1)
        for kind, lst in self.socks.items():
            for s in lst:
                s.close()
            self.socks[kind] = []

    def held(self):
        return sum(len(v) for v in self.socks.values())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=3600)
    ap.add_argument("--idle", type=int, default=600)
    ap.add_argument("--half-open", type=int, default=600)
    ap.add_argument("--dsd", default=os.path.join(TOP, "src", "dsd"))
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = a.idle + a.half_open + 256
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))

    bench = os.path.join(TOP, "tools", "dsd-bench")
    cli = os.path.join(TOP, "tools", "dsd-cli")
    d = tempfile.mkdtemp(prefix="dsd-soak.", dir="/var/tmp")
    port = free_port()
    addr = "127.0.0.1:%d" % port
    log = open(os.path.join(d, "dsd.log"), "wb")
    srv = subprocess.Popen(
        [a.dsd, "--mode=kvdb", "--listen", addr, "--data-dir",
         os.path.join(d, "data"), "--snapshot-interval=60", "-v"],
        stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    ok = True
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        load = subprocess.Popen(
            [bench, "-a", addr, "-c", "16", "-s", "100", "-d",
             str(a.duration), "--mix", "get=60,tas=34,del=5,set=1",
             "--prefill", "100000"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        rates = []              # (t, calls/s)

        def read_progress():
            for line in load.stderr:
                m = re.match(r"\[\s*(\d+)s\] (\d+) calls/s", line)
                if m:
                    rates.append((int(m.group(1)), int(m.group(2))))
        rt = threading.Thread(target=read_progress, daemon=True)
        rt.start()
        out = []
        ot = threading.Thread(target=lambda: out.append(load.stdout.read()),
                              daemon=True)
        ot.start()

        crowd = Crowd(port, a.idle, a.half_open)
        t0 = time.time()
        c_start, c_end = a.duration * 0.25, a.duration * 0.75
        health = {"before": [], "crowd": [], "after": []}
        unanswered = 0
        samples = []
        next_sample = 0
        print("%6s %10s %6s %12s %8s %8s" % ("t", "rss-MiB", "fds",
                                              "snap-MiB", "calls/s",
                                              "crowd"))
        while load.poll() is None:
            t = time.time() - t0
            if t >= c_start and not crowd.thread.is_alive() and \
                    not crowd.stop.is_set():
                crowd.thread.start()
            if t >= c_end and crowd.thread.is_alive():
                crowd.stop.set()
                crowd.thread.join()
            phase = "before" if t < c_start else \
                "crowd" if t < c_end else "after"
            h0 = time.time()
            r = subprocess.run([cli, "-a", addr, "-t", "10000", "health"],
                               capture_output=True, text=True)
            if "SERVING" in r.stdout:
                health[phase].append(time.time() - h0)
            else:
                unanswered += 1
            if srv.poll() is not None:
                print("the server died")
                ok = False
                break
            if t >= next_sample:
                rss, fds = proc_stat(srv.pid)
                snap = os.path.join(d, "data", "snapshot")
                ss = os.path.getsize(snap) if os.path.exists(snap) else 0
                rate = rates[-1][1] if rates else 0
                samples.append((t, rss, fds, ss))
                print("%5ds %10.1f %6d %12.1f %8d %8d" % (
                    t, rss / 2**20, fds, ss / 2**20, rate, crowd.held()),
                    flush=True)
                next_sample += 30
            time.sleep(5)
        crowd.stop.set()
        load.wait()
        ot.join()
        rt.join()
        rss, fds = proc_stat(srv.pid)
        chk = subprocess.run([cli, "-a", addr, "check"], capture_output=True,
                             text=True)
        print("dsd-cli check: exit %d: %s" % (
            chk.returncode, (chk.stdout.strip().splitlines() or ["?"])[-1]))
        ok = ok and chk.returncode == 0 and unanswered == 0
        srv.terminate()
        srv.wait(timeout=60)
        log.close()
        text = open(os.path.join(d, "dsd.log"), errors="replace").read()

        def rate_in(lo, hi):
            v = [r for s, r in rates if lo <= s < hi]
            return statistics.median(v) if v else 0
        # The start: the first sample once the prefill and the first
        # snapshot are done (a tenth of the run, at least 60 s in).
        later = [x for x in samples if x[0] >= min(60, a.duration * 0.1)]
        first = later[0] if later else samples[0] if samples else \
            (0, 0, 0, 0)
        print("summary:")
        print("  rss: %.1f MiB at %ds, %.1f MiB at the end; the data "
              "(snapshot) %.1f -> %.1f MiB; rss grew %.1f MiB, the data "
              "%.1f MiB" % (first[1] / 2**20, first[0], rss / 2**20,
                            first[3] / 2**20, samples[-1][3] / 2**20,
                            (rss - first[1]) / 2**20,
                            (samples[-1][3] - first[3]) / 2**20))
        print("  open files: %d at the start, %d at the end (load "
              "stopped)" % (first[2], fds))
        print("  throughput (median calls/s): %d before the crowd, %d "
              "during, %d after" % (rate_in(10, c_start),
                                    rate_in(c_start + 10, c_end),
                                    rate_in(c_end + 10, a.duration)))
        for ph, v in health.items():
            if v:
                print("  health of a new client, %s: median %.3f s, worst "
                      "%.3f s (%d)" % (ph, statistics.median(v), max(v),
                                       len(v)))
        print("  health checks unanswered: %d" % unanswered)
        print("  crowd: %d idle + %d half-open held; %d closed by the "
              "server, %d connects failed" % (a.idle, a.half_open,
                                              crowd.closed, crowd.refused))
        lines = [ln for ln in text.splitlines()
                 if re.search(r"connection|preface|handshake", ln)]
        print("  server log lines about connections: %d; the last: %s" % (
            len(lines), lines[-1] if lines else "none"))
        summary = [ln for ln in (out[0] if out else "").splitlines()
                   if ln.startswith("summary:")]
        print("  load " + (summary[0] if summary else "summary missing"))
    finally:
        if srv.poll() is None:
            srv.kill()
        shutil.rmtree(d, ignore_errors=True)
    print("soak: %s" % ("passed" if ok else "FAILED"))
    sys.exit(0 if ok else 1)


main()
