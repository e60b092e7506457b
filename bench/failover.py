#!/usr/bin/python3
"""How long a 3-node cluster takes to serve writes again after kill -9 of
its leader, under load: for dsd kvdb-replicated and for etcd, by the same
measure.  Prints one line per trial and a summary line; used by
bench/kvdb-replicated-vs-etcd.sh.  Not a test: it reports.

A trial: start a fresh cluster, run writers (several threads, each its own
connection to every node but the leader, one write in flight each, a
1-second deadline per write), kill -9 the leader, and take the time from
the kill to the first success of a write sent after it, from any writer.  The
writers never talk to the dead node, so the figure is the election plus
the first commit, not a client's reconnection.

usage: failover.py dsd|etcd TRIALS WORKDIR
"""
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time

import grpc

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "tests", "kvdb"))
from kvclient import Client, f_bytes, f_int, free_port, key_bytes  # noqa

TOP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
DSD = os.path.join(TOP, "src", "dsd")
ETCD = shutil.which("etcd")
ETCDCTL = shutil.which("etcdctl")


class Cluster:
    """Three nodes of either kind; .clients[i] is node i's client address,
    .procs[i] its process."""

    def __init__(self, kind, top):
        self.kind = kind
        self.top = top
        self.clients = ["127.0.0.1:%d" % free_port() for _ in range(3)]
        self.peers = ["127.0.0.1:%d" % free_port() for _ in range(3)]
        self.procs = []
        self.logs = []
        for i in range(3):
            d = os.path.join(top, "n%d" % i)
            log = open(os.path.join(top, "n%d.log" % i), "ab")
            self.logs.append(log)
            if kind == "dsd":
                spec = ",".join("%d=%s/%s" % (j + 1, self.peers[j],
                                              self.clients[j])
                                for j in range(3))
                args = [DSD, "--mode=kvdb-replicated", "--node-id=%d" % (i + 1),
                        "--cluster=" + spec, "--data-dir=" + d]
            else:
                init = ",".join("m%d=http://%s" % (j, self.peers[j])
                                for j in range(3))
                args = [ETCD, "--name", "m%d" % i, "--data-dir", d,
                        "--listen-client-urls", "http://" + self.clients[i],
                        "--advertise-client-urls", "http://" + self.clients[i],
                        "--listen-peer-urls", "http://" + self.peers[i],
                        "--initial-advertise-peer-urls",
                        "http://" + self.peers[i],
                        "--initial-cluster", init,
                        "--initial-cluster-state", "new",
                        "--initial-cluster-token", os.path.basename(top),
                        "--log-level", "error"]
            self.procs.append(subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=log, stderr=log))

    def leader(self, timeout=30):
        """The index of the leader, once every node names the same one."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                if self.kind == "dsd":
                    ids = set()
                    for a in self.clients:
                        c = Client(a, timeout=2)
                        ids.add(c.status(timeout=2)["leader_id"])
                        c.close()
                    if len(ids) == 1 and 0 not in ids:
                        return ids.pop() - 1
                else:
                    out = subprocess.run(
                        [ETCDCTL, "--endpoints", ",".join(self.clients),
                         "endpoint", "status", "-w", "json"],
                        capture_output=True, timeout=5,
                        env=dict(os.environ, ETCDCTL_API="3")).stdout
                    st = json.loads(out)
                    leaders = {s["Status"]["leader"] for s in st}
                    if len(st) == 3 and len(leaders) == 1:
                        lid = leaders.pop()
                        for i, s in enumerate(st):
                            if s["Status"]["header"]["member_id"] == lid:
                                return self.clients.index(s["Endpoint"])
            except (grpc.RpcError, grpc.FutureTimeoutError, ValueError,
                    KeyError, subprocess.TimeoutExpired):
                pass
            time.sleep(0.2)
        raise RuntimeError("no leader in %d s" % timeout)

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        for log in self.logs:
            log.close()


class Writer(threading.Thread):
    def __init__(self, kind, addr, base, stop, successes):
        super().__init__(daemon=True)
        self.kind, self.addr, self.base = kind, addr, base
        self.stop, self.successes = stop, successes

    def run(self):
        ch = grpc.insecure_channel(self.addr)
        if self.kind == "dsd":
            call = ch.unary_unary("/dsd.kvdb.v1.KV/Set",
                                  request_serializer=None,
                                  response_deserializer=None)
        else:
            call = ch.unary_unary("/etcdserverpb.KV/Put",
                                  request_serializer=None,
                                  response_deserializer=None)
        i = 0
        while not self.stop.is_set():
            i += 1
            k = key_bytes(self.base + i)
            if self.kind == "dsd":
                body = f_bytes(1, k) + f_int(2, i) + f_bytes(3, b"x")
            else:
                body = f_bytes(1, k) + f_bytes(2, b"x")
            t0 = time.monotonic()
            try:
                call(body, timeout=1.0)
                self.successes.append((t0, time.monotonic()))
            except grpc.RpcError:
                time.sleep(0.005)
        ch.close()


def trial(kind, top, n):
    d = os.path.join(top, "t%d" % n)
    os.makedirs(d)
    c = Cluster(kind, d)
    try:
        lead = c.leader()
        stop = threading.Event()
        successes = []
        writers = [Writer(kind, c.clients[i], 1000000 * (i + 1) + 1000 * w,
                          stop, successes)
                   for i in range(3) if i != lead for w in range(4)]
        for w in writers:
            w.start()
        time.sleep(1.0)
        if len(successes) == 0:
            raise RuntimeError("no write succeeded before the kill")
        before = len(successes)
        c.procs[lead].send_signal(signal.SIGKILL)
        t_kill = time.monotonic()
        deadline = t_kill + 30
        back = None
        while time.monotonic() < deadline:
            # A write sent before the kill may still come back after it:
            # only one sent after the kill shows the cluster serving.
            after = [end for start, end in successes[before:]
                     if start > t_kill]
            if after:
                back = min(after)
                break
            time.sleep(0.005)
        stop.set()
        for w in writers:
            w.join(5)
        if back is None:
            raise RuntimeError("no write succeeded within 30 s of the kill")
        return back - t_kill
    finally:
        c.stop()
        shutil.rmtree(d, ignore_errors=True)


def main():
    kind, trials, top = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    if kind == "etcd" and (ETCD is None or ETCDCTL is None):
        sys.exit("etcd or etcdctl not found: apt-get install etcd-server "
                 "etcd-client")
    os.makedirs(top, exist_ok=True)
    times = []
    for n in range(trials):
        try:
            t = trial(kind, top, n)
            times.append(t)
            print("  %s failover trial %d: writes again %.3f s after kill -9 "
                  "of the leader" % (kind, n + 1, t), file=sys.stderr,
                  flush=True)
        except RuntimeError as e:
            print("  %s failover trial %d failed: %s" % (kind, n + 1, e),
                  file=sys.stderr, flush=True)
    if times:
        print("failover %s trials=%d median_s=%.3f max_s=%.3f min_s=%.3f" %
              (kind, len(times), statistics.median(times), max(times),
               min(times)))
    else:
        print("failover %s trials=0" % kind)


if __name__ == "__main__":
    main()
