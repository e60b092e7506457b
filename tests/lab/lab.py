#!/usr/bin/python3
"""The cluster lab: dsd --mode=kvdb-replicated as real processes on a real
(virtual) network, real faults, Jepsen-style clients recording a history,
and the checks.

    lab.py run [options]      one run: a cluster, a nemesis, the checks
    lab.py suite [--soak]     the runs tests/lab/run.sh and bench/lab-soak.sh
                              make (CI: about five minutes on two cores)
    lab.py clean              remove what crashed runs left behind

A run starts N nodes (each in its own network namespace, or on loopback
with --net=loopback), client threads that each keep one operation in
flight over a small sliding set of keys, a prober per node that writes a
fresh key every --probe-interval (for the recovery figures), and a nemesis
that alternates --heal seconds of calm with --fault seconds of a fault.
Every client and probe operation goes into HISTORY (JSON lines: invoke,
then ok / fail / info, read by tests/lab/linearizability.py).  At the
end: the faults are healed, the clients stop, every key is read once more
through the leader (recorded too), and the checks run:

  (a) the history is linearizable (the checker; its smallest failing
      window is printed when it is not);
  (b) the replicas converge: every node reaches the same applied and last
      index and reports the same Status digest;
  (c) no acknowledged write is missing: the final reads are in the
      history; and each probe key, written once and never deleted, holds
      exactly what its acknowledged Set wrote;
  (d) after each fault ends (heal, restart, SIGCONT) a write succeeds
      within 3 s through some node (every figure is printed);
  (e) no node died on its own, every node exits 0 on SIGTERM, and no log
      has a sanitizer report or a C library abort.

Outcomes in the history: "fail" only when the write certainly did not
happen (dsd's own UNAVAILABLE, or a call that never left for want of a
connection); "info" for everything else that is not ok (UNKNOWN,
DEADLINE_EXCEEDED, a connection cut, and any other status); after an
info, the client thread goes on as a new process, as in Jepsen.
"""

import argparse
import collections
import concurrent.futures
import glob
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

try:
    import grpc            # noqa: E402  (Debian's python3-grpcio)
except ImportError:
    print("SKIP: python3-grpcio is missing (apt-get install python3-grpcio)")
    sys.exit(77)
import labclient            # noqa: E402
import labnet              # noqa: E402

RECOVERY_BOUND_S = 3.0
CHECKER = os.path.join(HERE, "linearizability.py")
# Lines in a node's log that mean it crashed or a sanitizer spoke.
BAD_LOG = re.compile(r"AddressSanitizer|LeakSanitizer|ThreadSanitizer|"
                     r"runtime error:|double free|free\(\): |corrupted |"
                     r"Segmentation fault|Assertion .* failed|"
                     r"dsd: fatal:|stack smashing")


def now():
    return time.monotonic_ns()


def secs(ns):
    return ns / 1e9


def say(*a):
    print(*a, flush=True)


# -- keys ---------------------------------------------------------------------

def key_of(n):
    """The n-th workload key: small, negative and big integers in turn, so
    that keys of several encoded lengths are exercised."""
    return (n, -1000000 + n, 2 ** 64 + n, -(2 ** 80) + n)[n % 4]


PROBE_KEY_BASE = 10 ** 12


class Keys:
    """A sliding set of active keys: each serves ops_per_key operations,
    then is replaced by a fresh one, so that operations collide while each
    key's history stays small enough to check."""

    def __init__(self, nkeys, ops_per_key):
        self.lock = threading.Lock()
        self.next = 0
        self.active = []
        self.used = []
        self.count = {}
        self.version = {}
        self.ops_per_key = ops_per_key
        for _ in range(nkeys):
            self.active.append(self._fresh())

    def _fresh(self):
        k = key_of(self.next)
        self.next += 1
        self.used.append(k)
        self.count[k] = 0
        return k

    def pick(self, rng):
        with self.lock:
            i = rng.randrange(len(self.active))
            k = self.active[i]
            self.count[k] += 1
            if self.ops_per_key and self.count[k] >= self.ops_per_key:
                self.active[i] = self._fresh()
            return k

    def saw(self, k, value):
        if value is not None:
            with self.lock:
                self.version[k] = value["version"]

    def guess_version(self, k, rng):
        """Mostly the last version seen, sometimes a wrong one."""
        with self.lock:
            v = self.version.get(k, 1)
        r = rng.random()
        if r < 0.7:
            return v
        if r < 0.8:
            return v + 1
        if r < 0.9:
            return max(v - 1, 0)
        return rng.randint(1, 5)


# -- the history --------------------------------------------------------------

class History:
    def __init__(self, path):
        self.f = open(path, "w")
        self.lock = threading.Lock()
        self.proc_lock = threading.Lock()
        self.next_process = 0
        self.counts = collections.Counter()
        self.errors = collections.Counter()

    def new_process(self):
        with self.proc_lock:
            p = self.next_process
            self.next_process += 1
            return p

    def _write(self, ev):
        line = json.dumps(ev, separators=(",", ":"))
        with self.lock:
            self.f.write(line + "\n")

    def invoke(self, process, f, key, arg):
        ev = {"type": "invoke", "process": process, "f": f, "key": str(key),
              "arg": arg, "time": now()}
        self._write(ev)
        return ev

    def attempt(self, node, f, key, arg, timeout, metadata=None):
        """One call; returns (type, result, status code name)."""
        try:
            return "ok", node.kv(f, key, arg, timeout,
                                 metadata=metadata), "OK"
        except grpc.RpcError as e:
            typ, code, msg = labclient.classify_error(e)
            self.errors[(f, typ, code, _short(msg))] += 1
            return typ, {"error": code, "message": msg[:200]}, code
        except Exception as e:          # a bug of ours: unknown outcome
            self.errors[(f, "info", "EXCEPTION", repr(e)[:60])] += 1
            return "info", {"error": "EXCEPTION", "message": repr(e)}, "?"

    def complete(self, ev, typ, res):
        done = {"type": typ, "process": ev["process"], "f": ev["f"],
                "key": ev["key"], "arg": ev["arg"], "result": res,
                "time": now()}
        self._write(done)
        self.counts[(ev["f"], typ)] += 1
        return done

    def call(self, node, process, f, key, arg, timeout, metadata=None):
        """Invoke f on node, record both ends; return (type, result,
        invocation time, completion time)."""
        ev = self.invoke(process, f, key, arg)
        typ, res, _ = self.attempt(node, f, key, arg, timeout, metadata)
        done = self.complete(ev, typ, res)
        return typ, res, ev["time"], done["time"]

    def close(self):
        with self.lock:
            self.f.close()


def _short(msg):
    """An error message without its addresses and numbers, for counting."""
    return re.sub(r"[0-9]+", "N", msg)[:70]


# -- nodes and the cluster ----------------------------------------------------

class NodeProc:
    def __init__(self, cluster, i):
        self.c = cluster
        self.i = i
        self.proc = None
        self.down = False          # stopped by us (kill -9, or not started)
        self.paused = False
        self.datadir = os.path.join(cluster.dir, "n%d" % i)
        self.logpath = os.path.join(cluster.dir, "n%d.log" % i)
        self.crashes = []          # (time, exit status) of deaths not ours
        self.starts = 0
        self.lock = threading.Lock()
        self.join = False

    def argv(self):
        c = self.c
        members = ",".join("%d=%s/%s" % (j, c.net.raft_addr(j),
                                         c.net.client_addr(j))
                           for j in range(1, c.n + 1))
        # A node re-added after its removal starts (and restarts) with
        # --join, as an operator would start it.
        how = ("--join=%s/%s" % (c.net.raft_addr(self.i),
                                 c.net.client_addr(self.i)) if self.join
               else "--cluster=" + members)
        return (c.net.prefix(self.i) +
                [c.dsd, "--mode=kvdb-replicated", "--node-id=%d" % self.i,
                 how, "--data-dir=" + self.datadir, "-v"] +
                c.net.node_args(self.i) + c.extra_args)

    def start(self):
        with open(self.logpath, "ab") as log:
            log.write(("lab: start %d: %s\n" % (self.starts + 1, " ".join(
                self.argv()))).encode())
            log.flush()
            self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log,
                                         start_new_session=True)
        self.starts += 1
        self.down = False
        self.paused = False
        if hasattr(self.c.net, "set_pid"):
            self.c.net.set_pid(self.i, self.proc.pid)
        with open(os.path.join(self.c.dir, "pids"), "a") as f:
            f.write("%d\n" % self.proc.pid)

    def signal(self, sig):
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.send_signal(sig)
            except ProcessLookupError:
                pass

    def kill(self):
        """kill -9, as the nemesis does."""
        with self.lock:
            self.down = True
            self.paused = False
            self.signal(signal.SIGKILL)
        if self.proc is not None:
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass

    def pause(self):
        self.paused = True
        self.signal(signal.SIGSTOP)

    def resume(self):
        self.signal(signal.SIGCONT)
        self.paused = False

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def check_crash(self):
        """Record a death we did not cause; True if there was one."""
        with self.lock:
            if self.proc is None or self.down:
                return False
            rc = self.proc.poll()
            if rc is None:
                return False
            self.crashes.append((now(), rc))
            self.down = True
            return True


class Cluster:
    def __init__(self, n, net, dsd, rundir, extra_args):
        self.n = n
        self.net = net
        self.dsd = dsd
        self.dir = rundir
        self.extra_args = list(extra_args)
        self.nodes = {i: NodeProc(self, i) for i in range(1, n + 1)}
        self.admin = {}
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=n + 2)
        self.monitor_stop = threading.Event()
        self.monitor = None
        self.crash_log = []

    def start(self):
        for nd in self.nodes.values():
            nd.start()
        self.admin = {i: labclient.Node(self.net.test_addr(i))
                      for i in self.nodes}
        self.monitor = threading.Thread(target=self._watch, daemon=True,
                                        name="monitor")
        self.monitor.start()

    def _watch(self):
        while not self.monitor_stop.wait(0.2):
            for nd in self.nodes.values():
                if nd.check_crash():
                    self.crash_log.append(
                        "node %d exited on its own with status %s" %
                        (nd.i, _rc(nd.crashes[-1][1])))

    def mark(self, text):
        """A line in every node's log (appended, as the nodes' own lines
        are), with the history's clock: seconds of time.monotonic_ns()."""
        line = ("lab: [%.3f] %s\n" % (now() / 1e9, text)).encode()
        for nd in self.nodes.values():
            try:
                with open(nd.logpath, "ab") as f:
                    f.write(line)
            except OSError:
                pass

    def admin_call(self, i, method, body, timeout):
        """A raw dsd.kvdb.v1.Admin call to node i; returns the reply."""
        m = self.admin[i].ch.unary_unary(
            "/dsd.kvdb.v1.Admin/" + method, request_serializer=None,
            response_deserializer=None)
        return m(body, timeout=timeout)

    def members(self, i, timeout=2.0):
        """Node i's member ids, or None."""
        try:
            m = labclient.parse(self.admin_call(i, "MemberList", b"",
                                               timeout))
        except grpc.RpcError:
            return None
        ms = m.get(1, [])
        if not isinstance(ms, list):
            ms = [ms]
        return sorted(labclient.parse(x).get(1) for x in ms)

    def member_change(self, method, node, body, want, timeout=20):
        """Ask random nodes for a membership change until the leader's
        member list says it is done (a change whose outcome was unknown
        is looked at, not blindly repeated).  Returns (ok, note)."""
        deadline = time.monotonic() + timeout
        notes = []
        while time.monotonic() < deadline:
            ld = self.leader(wait=2.0)
            if ld is not None:
                ms = self.members(ld)
                if ms is not None and (node in ms) == want:
                    return True, "; ".join(notes)
            i = random.choice([j for j in self.nodes if j != node])
            try:
                self.admin_call(i, method, body, max(1.0, min(
                    10.0, deadline - time.monotonic())))
            except grpc.RpcError as e:
                notes.append("%s via %d: %s %s" % (
                    method, i, e.code().name, (e.details() or "")[:80]))
                time.sleep(0.2)
        return False, "; ".join(notes) or "timed out"

    def status(self, i, digest=False, timeout=0.7):
        try:
            return self.admin[i].status(digest=digest, timeout=timeout)
        except (grpc.RpcError, ValueError):     # ValueError: closed
            return None

    def statuses(self, digest=False, timeout=0.7):
        futs = {i: self.pool.submit(self.status, i, digest, timeout)
                for i in self.nodes}
        return {i: f.result() for i, f in futs.items()}

    def leader(self, wait=3.0):
        """The node that says it leads, with the highest term; None."""
        deadline = time.monotonic() + wait
        while True:
            st = self.statuses()
            leaders = [s for s in st.values()
                       if s is not None and s["state"] == "leader"]
            if leaders:
                return max(leaders, key=lambda s: s["term"])["id"]
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.1)

    def wait_serving(self, timeout):
        """Wait until a leader is known and every node answers health
        SERVING; returns (ok, seconds, why)."""
        t0 = time.monotonic()
        why = ""
        while time.monotonic() - t0 < timeout:
            ok = True
            for i in self.nodes:
                try:
                    if not self.admin[i].health(timeout=0.5):
                        ok, why = False, "node %d not SERVING" % i
                        break
                except grpc.RpcError as e:
                    ok, why = False, "node %d: %s" % (i, e.code().name)
                    break
            if ok and self.leader(wait=0.5) is not None:
                return True, time.monotonic() - t0, ""
            time.sleep(0.1)
        return False, time.monotonic() - t0, why

    def stop_all(self, timeout=20):
        """SIGTERM every running node; return {node: exit status}."""
        self.monitor_stop.set()
        if self.monitor is not None:
            self.monitor.join(5)
        # An idle client connection holds a node's shutdown for 2 s (its
        # grace for the connection): close ours first.
        for a in self.admin.values():
            a.close()
        for nd in self.nodes.values():
            if nd.paused:
                nd.resume()
            if nd.alive():
                nd.signal(signal.SIGTERM)
        rcs = {}
        deadline = time.monotonic() + timeout
        for nd in self.nodes.values():
            if nd.proc is None:
                continue
            try:
                rcs[nd.i] = nd.proc.wait(max(0.1, deadline -
                                             time.monotonic()))
            except subprocess.TimeoutExpired:
                nd.signal(signal.SIGKILL)
                nd.proc.wait()
                rcs[nd.i] = "hung (killed after %d s)" % timeout
            nd.down = True
        return rcs

    def kill_all(self):
        for nd in self.nodes.values():
            with nd.lock:
                nd.down = True
                nd.paused = False
                nd.signal(signal.SIGKILL)
        for nd in self.nodes.values():
            if nd.proc is not None:
                try:
                    nd.proc.wait(5)
                except subprocess.TimeoutExpired:
                    pass

    def close(self):
        self.monitor_stop.set()
        if self.monitor is not None:
            self.monitor.join(2)
        for a in self.admin.values():
            a.close()
        self.pool.shutdown(wait=False)


def _rc(rc):
    if isinstance(rc, int) and rc < 0:
        try:
            return "%d (%s)" % (rc, signal.Signals(-rc).name)
        except ValueError:
            return str(rc)
    if isinstance(rc, int) and rc > 128:
        try:
            return "%d (%s)" % (rc, signal.Signals(rc - 128).name)
        except ValueError:
            return str(rc)
    return str(rc)


# -- the nemesis --------------------------------------------------------------

KINDS = ("partition-halves", "partition-leader", "partition-follower",
         "partition-ring", "partition-bridge", "kill-leader", "kill-random",
         "kill-all", "pause-leader", "pause-random", "member-readd",
         "wipe-all")


def cut_between(groups):
    """The node pairs that cannot talk when the nodes are in groups."""
    blocked = set()
    for a in range(len(groups)):
        for b in range(a + 1, len(groups)):
            for i in groups[a]:
                for j in groups[b]:
                    blocked.add(frozenset((i, j)))
    return blocked


class Nemesis:
    def __init__(self, cluster, rng, log_path, fixed_node=None):
        self.c = cluster
        self.rng = rng
        self.log = open(log_path, "w")
        self.events = []
        self.fixed = fixed_node
        self.active = None
        self.debug_ss = False
        self.failures = []

    def _ss(self, k):
        """The nodes' TCP connections 0.2 s after heal k (netns only)."""
        time.sleep(0.2)
        out = []
        for i in sorted(self.c.nodes):
            r = subprocess.run(["ip", "netns", "exec", self.c.net.ns(i), "ss",
                                "-tnoi"], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
            out.append("== node %d (%s)\n%s" % (i, self.c.net.ip(i),
                                                r.stdout))
        with open(os.path.join(self.c.dir, "ss-heal%d.txt" % (k + 1)),
                  "w") as f:
            f.write("\n".join(out))

    def _leader_or_random(self, ev):
        ld = self.c.leader(wait=2.0)
        if ld is None:
            ld = self.rng.choice(sorted(self.c.nodes))
            ev["note"] = "no leader found: a random node instead"
        return ld

    def start(self, kind):
        ids = sorted(self.c.nodes)
        ev = {"kind": kind, "start": now(), "nodes": []}
        n = len(ids)
        if kind.startswith("partition-"):
            if kind == "partition-halves":
                s = ids[:]
                self.rng.shuffle(s)
                groups = [s[:n // 2], s[n // 2:]]
            elif kind == "partition-leader":
                ld = self._leader_or_random(ev)
                groups = [[ld], [i for i in ids if i != ld]]
            elif kind == "partition-follower":
                f = self.fixed
                if f is None:
                    ld = self._leader_or_random(ev)
                    f = self.rng.choice([i for i in ids if i != ld])
                groups = [[f], [i for i in ids if i != f]]
            elif kind == "partition-bridge":
                s = ids[:]
                self.rng.shuffle(s)
                h = (n - 1) // 2
                groups = None
                blocked = cut_between([s[:h], s[h + 1:]])
                ev["bridge"] = s[h]
            elif kind == "partition-ring":
                # Each node sees itself and its ring neighbours: a majority
                # for 5 nodes, a different one for each.  (With 3 nodes no
                # symmetric ring exists; it is the bridge.)
                s = ids[:]
                self.rng.shuffle(s)
                k = max(1, (n // 2) // 2)
                blocked = set()
                for a in range(n):
                    for b in range(a + 1, n):
                        d = min(b - a, n - (b - a))
                        if d > k:
                            blocked.add(frozenset((s[a], s[b])))
                groups = None
                ev["ring"] = s
            if groups is not None:
                blocked = cut_between(groups)
                ev["groups"] = groups
            ev["blocked"] = sorted(sorted(p) for p in blocked)
            self.c.net.partition(blocked)
            ev["nodes"] = sorted({i for p in blocked for i in p})
        elif kind in ("kill-leader", "pause-leader"):
            ld = self._leader_or_random(ev)
            ev["nodes"] = [ld]
            if kind == "kill-leader":
                self.c.nodes[ld].kill()
            else:
                self.c.nodes[ld].pause()
        elif kind in ("kill-random", "pause-random"):
            k = self.rng.randint(1, max(1, (n - 1) // 2))
            ev["nodes"] = sorted(self.rng.sample(ids, k))
            for i in ev["nodes"]:
                if kind == "kill-random":
                    self.c.nodes[i].kill()
                else:
                    self.c.nodes[i].pause()
        elif kind == "member-readd":
            # Remove a follower from the cluster, stop it, empty its data
            # directory and start it waiting to be added (--join); the
            # heal adds it back: it catches up from nothing.
            ld = self._leader_or_random(ev)
            f = self.rng.choice([i for i in ids if i != ld])
            ev["nodes"] = [f]
            ok, note = self.c.member_change(
                "MemberRemove", f, labclient.f_int(1, f), False)
            ev["removed"] = ok
            if note:
                ev["note"] = note
            nd = self.c.nodes[f]
            nd.kill()
            if ok:
                shutil.rmtree(nd.datadir, ignore_errors=True)
                nd.join = True
            nd.start()
        elif kind in ("kill-all", "wipe-all"):
            ev["nodes"] = ids
            self.c.kill_all()
            if kind == "wipe-all":
                for i in ids:
                    shutil.rmtree(self.c.nodes[i].datadir, ignore_errors=True)
        else:
            raise ValueError("unknown nemesis " + kind)
        ev["started"] = now()
        self.active = ev
        self.c.mark("nemesis: %s %s in force" % (
            kind, ev.get("groups") or ev.get("nodes")))
        return ev

    def heal(self):
        ev = self.active
        if ev is None:
            return None
        kind = ev["kind"]
        if kind.startswith("partition-"):
            self.c.net.heal()
        elif kind.startswith("pause-"):
            for i in ev["nodes"]:
                self.c.nodes[i].resume()
        elif kind == "member-readd":
            f = ev["nodes"][0]
            if ev["removed"]:
                ok, note = self.c.member_change(
                    "MemberAdd", f, labclient.f_int(1, f) +
                    labclient.f_bytes(2, self.c.net.raft_addr(f).encode()) +
                    labclient.f_bytes(3, self.c.net.client_addr(f).encode()),
                    True, timeout=60)
                ev["added"] = ok
                if not ok:
                    self.failures.append("member-readd: node %d was not "
                                         "added back: %s" % (f, note))
            else:
                self.failures.append("member-readd: node %d could not be "
                                     "removed: %s" % (f, ev.get("note")))
        else:
            for i in ev["nodes"]:
                if not self.c.nodes[i].alive():
                    self.c.nodes[i].start()
        ev["end"] = now()
        self.c.mark("nemesis: %s healed" % kind)
        if self.debug_ss and hasattr(self.c.net, "ns"):
            threading.Thread(target=self._ss, args=(len(self.events),),
                             daemon=True).start()
        self.active = None
        self.events.append(ev)
        self.log.write(json.dumps(ev) + "\n")
        self.log.flush()
        return ev

    def run(self, kinds, heal_s, fault_s, until_ns, stop):
        """Alternate calm and faults until until_ns (a fault is started
        only if it can end by then)."""
        i = 0
        try:
            while not stop.is_set():
                if stop.wait(heal_s):
                    break
                if now() + fault_s * 1e9 > until_ns:
                    break
                kind = kinds[i % len(kinds)]
                i += 1
                ev = self.start(kind)
                say("  nemesis: %s %s%s" % (kind, ev.get("groups") or
                                           ev.get("nodes"),
                                           " (%s)" % ev["note"]
                                           if "note" in ev else ""))
                stop.wait(fault_s)
                self.heal()
        finally:
            self.heal()

    def close(self):
        self.log.close()


# -- the clients --------------------------------------------------------------

FS = (("get", 25), ("set", 20), ("del", 10), ("delversion", 15),
      ("testandset", 30))


class Workload:
    def __init__(self, cluster, hist, keys, opts, rng_seed):
        self.c = cluster
        self.hist = hist
        self.keys = keys
        self.o = opts
        self.seed = rng_seed
        self.stop = threading.Event()
        self.stop_probes = threading.Event()
        self.threads = []
        self.write_no = 0
        self.wlock = threading.Lock()
        self.probes = []            # (node, invoke ns, complete ns, ok)
        self.probe_keys = {}        # key -> (outcome, arg) of its Set
        self.plock = threading.Lock()
        self.next_probe = 0
        self.retried_ok = 0
        self.anomalies = []

    def _next_write(self):
        with self.wlock:
            self.write_no += 1
            return self.write_no

    def gen(self, rng, process, reads_only):
        key = self.keys.pick(rng)
        if reads_only:
            return "get", key, None
        r = rng.randrange(100)
        for f, w in FS:
            if r < w:
                break
            r -= w
        if f in ("get", "del"):
            return f, key, None
        if f == "delversion":
            return f, key, {"version": self.keys.guess_version(key, rng)}
        w = self._next_write()
        arg = {"timestamp": w, "data": "p%d-w%d" % (process, w)}
        if f == "testandset":
            arg["version"] = self.keys.guess_version(key, rng)
        return f, key, arg

    def worker(self, wid, choices, reads_only, exactly_once):
        """One client thread: one operation in flight at a time.  With
        exactly_once, its writes carry dsd-client-id and dsd-seq, and a
        write whose outcome is unknown is tried again with the same
        numbers (through another node) up to --retries times: the history
        then holds one operation from the first invocation to the answer
        of the try that settled it, which is what the client saw."""
        rng = random.Random(self.seed * 1000 + wid)
        proc = self.hist.new_process()
        node = rng.choice(choices)
        ch = labclient.Node(self.c.net.test_addr(node))
        cid = rng.randrange(1, 1 << 63)
        seq = 0
        while not self.stop.is_set():
            f, key, arg = self.gen(rng, proc, reads_only)
            md = None
            if exactly_once and f != "get":
                seq += 1
                md = (("dsd-client-id", str(cid)), ("dsd-seq", str(seq)))
            ev = self.hist.invoke(proc, f, key, arg)
            typ, res, code = self.hist.attempt(ch, f, key, arg,
                                               self.o.timeout, md)
            tries = 1
            while md is not None and typ == "info" and \
                    tries <= self.o.retries:
                # Unknown: ask again with the same dsd-seq.  A refusal
                # (UNAVAILABLE) of a later try says nothing of the first.
                if len(choices) > 1:
                    ch.close()
                    node = rng.choice(choices)
                    ch = labclient.Node(self.c.net.test_addr(node))
                time.sleep(0.05)
                t2, r2, c2 = self.hist.attempt(ch, f, key, arg,
                                               self.o.timeout, md)
                tries += 1
                if t2 == "ok":
                    typ, res = t2, r2
                    self.retried_ok += 1
                elif c2 == "FAILED_PRECONDITION":
                    self.anomalies.append("client %d seq %d: a retry got "
                                          "FAILED_PRECONDITION: %s" % (
                                              cid, seq, r2.get("message")))
                    break
                else:
                    res = r2
            self.hist.complete(ev, typ, res)
            if typ == "ok":
                self.keys.saw(key, res["value"])
            if typ == "info":
                proc = self.hist.new_process()
            if typ != "ok" and len(choices) > 1:
                ch.close()
                node = rng.choice(choices)
                ch = labclient.Node(self.c.net.test_addr(node))
            if self.o.think:
                time.sleep(rng.uniform(0, self.o.think))
        ch.close()

    def prober(self, node):
        proc = self.hist.new_process()
        ch = labclient.Node(self.c.net.test_addr(node))
        while not self.stop_probes.is_set():
            with self.plock:
                key = PROBE_KEY_BASE + self.next_probe
                self.next_probe += 1
            w = self._next_write()
            arg = {"timestamp": w, "data": "probe-n%d-w%d" % (node, w)}
            typ, res, t0, t1 = self.hist.call(ch, proc, "set", key, arg,
                                              self.o.probe_timeout)
            ok = typ == "ok" and res["status"] == "SUCCESS"
            with self.plock:
                self.probes.append((node, t0, t1, ok))
                self.probe_keys[key] = (typ, arg, res)
            if typ == "info":
                proc = self.hist.new_process()
            self.stop_probes.wait(self.o.probe_interval)
        ch.close()

    def start(self, readers_on=None, avoid=()):
        ids = sorted(self.c.nodes)
        choices = [i for i in ids if i not in avoid] or ids
        neo = int(round(self.o.exactly_once * self.o.clients))
        for w in range(self.o.clients):
            eo = w >= self.o.clients - neo
            if readers_on is not None and w < self.o.readers:
                t = threading.Thread(target=self.worker,
                                     args=(w, [readers_on], True, False),
                                     daemon=True, name="reader%d" % w)
            else:
                t = threading.Thread(target=self.worker,
                                     args=(w, choices, False, eo),
                                     daemon=True, name="client%d" % w)
            t.start()
            self.threads.append(t)
        if self.o.probe_interval > 0:
            for i in ids:
                t = threading.Thread(target=self.prober, args=(i,),
                                     daemon=True, name="probe%d" % i)
                t.start()
                self.threads.append(t)

    def finish(self):
        self.stop.set()
        self.stop_probes.set()
        for t in self.threads:
            t.join(self.o.timeout + 5)

    def final_reads(self, timeout=30):
        """Get every key once more through the leader, recorded; returns
        (reads ok, keys not read, {probe key: result})."""
        keys = list(self.keys.used)
        probe = sorted(k for k, (typ, _, _) in self.probe_keys.items()
                       if typ != "fail")
        todo = collections.deque(keys + probe)
        got = {}
        lock = threading.Lock()
        deadline = time.monotonic() + timeout

        def reader():
            proc = self.hist.new_process()
            ch, at = None, None
            while time.monotonic() < deadline:
                if at is None:
                    ld = self.c.leader(wait=1.0)
                    if ld is None:
                        continue
                    if ch is not None:
                        ch.close()
                    ch, at = labclient.Node(self.c.net.test_addr(ld)), ld
                with lock:
                    if not todo:
                        break
                    k = todo.popleft()
                typ, res, _, _ = self.hist.call(ch, proc, "get", k, None,
                                                self.o.timeout)
                if typ == "ok":
                    with lock:
                        got[k] = res
                    continue
                with lock:
                    todo.append(k)
                if typ == "info":
                    proc = self.hist.new_process()
                at = None
            if ch is not None:
                ch.close()

        ts = [threading.Thread(target=reader, daemon=True) for _ in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(timeout + self.o.timeout + 5)
        missing = [k for k in keys + probe if k not in got]
        return len(got), missing, got


# -- one run ------------------------------------------------------------------

class Result:
    def __init__(self, name):
        self.name = name
        self.checks = []        # (ok, text, detail)
        self.figures = {}
        self.dir = None

    def check(self, ok, text, detail=""):
        self.checks.append((bool(ok), text, detail))
        say(("ok - " if ok else "not ok - ") + self.name + ": " + text)
        if detail and not ok:
            for line in detail.rstrip("\n").split("\n"):
                say("    " + line)

    @property
    def passed(self):
        return all(ok for ok, _, _ in self.checks)


def make_net(kind, n, drop):
    if kind == "netns":
        return labnet.NetnsNet(n, drop)
    return labnet.LoopbackNet(n)


def run_checker(history, timeout):
    """(exit status or None on timeout, output, seconds)."""
    if not os.path.exists(CHECKER):
        return 2, "the checker %s is missing" % CHECKER, 0.0
    t0 = time.monotonic()
    try:
        r = subprocess.run([sys.executable, CHECKER, history],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=timeout)
        return r.returncode, r.stdout, time.monotonic() - t0
    except subprocess.TimeoutExpired as e:
        out = e.stdout or ""
        if isinstance(out, bytes):
            out = out.decode(errors="replace")
        return None, out, time.monotonic() - t0


def recovery_figures(nem_events, probes, nodes):
    """For each fault: how long after it ended the first write succeeded
    through any node (invoked at or after the end, completed ok), through
    every node; and how long writes were unavailable after it began."""
    out = []
    events = sorted(nem_events, key=lambda e: e["start"])
    for k, ev in enumerate(events):
        end = ev["end"]
        horizon = events[k + 1]["start"] if k + 1 < len(events) else None
        ok_after = [p for p in probes if p[3] and p[1] >= end and
                    (horizon is None or p[2] <= horizon)]
        first_any = min((p[2] for p in ok_after), default=None)
        per_node = {}
        for i in nodes:
            t = min((p[2] for p in ok_after if p[0] == i), default=None)
            per_node[i] = None if t is None else secs(t - end)
        # From when the fault was in force (rules in place, kill done).
        ok_during = [p for p in probes if p[3] and p[1] >= ev["started"]]
        first_during = min((p[2] for p in ok_during), default=None)
        out.append({
            "kind": ev["kind"], "nodes": ev.get("groups") or ev["nodes"],
            "fault_s": secs(end - ev["start"]),
            "recovery_any_s": None if first_any is None else
            secs(first_any - end),
            "recovery_all_s": None if None in per_node.values() else
            max(per_node.values()),
            "recovery_node_s": per_node,
            "first_write_after_start_s": None if first_during is None else
            secs(first_during - ev["started"]),
        })
    return out


def fmt_s(x):
    return "-" if x is None else "%.2f" % x


def run_one(o, name, base_dir):
    """One run; returns a Result with its checks."""
    res = Result(name)
    rundir = os.path.join(base_dir, name)
    os.makedirs(rundir)
    res.dir = rundir
    seed = o.seed if o.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    say("# %s: %d nodes, %s network, nemesis %s, %s reads, %ds (faults %ss "
        "after %ss calm), %d clients, seed %d, dir %s" % (
            name, o.nodes, o.net, ",".join(o.nemesis) or "none", o.read,
            o.time, o.fault, o.heal, o.clients, seed, rundir))
    t_run = time.monotonic()
    net = make_net(o.net, o.nodes, o.drop)
    cluster = None
    nemesis = None
    workload = None
    hist = None
    phases = []
    mark = [time.monotonic()]

    def phase(name):
        t = time.monotonic()
        phases.append((name, t - mark[0]))
        mark[0] = t

    try:
        net.setup()
        phase("network")
        extra = ["--read=" + o.read] + list(o.dsd_args)
        cluster = Cluster(o.nodes, net, o.dsd, rundir, extra)
        cluster.start()
        ok, took, why = cluster.wait_serving(60)
        phase("start")
        if not ok:
            res.check(False, "cluster starts and elects a leader",
                      "after %.1f s: %s\n%s" % (took, why,
                                               tail_logs(cluster)))
            return res
        res.figures["startup_s"] = took
        hist = History(os.path.join(rundir, "history.jsonl"))
        keys = Keys(o.keys, o.ops_per_key)
        workload = Workload(cluster, hist, keys, o, seed)
        fixed = None
        readers_on, avoid = None, ()
        if o.stale_reads:
            ld = cluster.leader(wait=3.0)
            fixed = rng.choice([i for i in cluster.nodes if i != ld])
            readers_on, avoid = fixed, (fixed,)
            say("  clients: %d readers on node %d (isolated by the "
                "nemesis), writers through the others" % (o.readers, fixed))
        nemesis = Nemesis(cluster, rng, os.path.join(rundir, "nemesis.jsonl"),
                          fixed_node=fixed)
        nemesis.debug_ss = o.debug_ss
        cluster.mark("workload starts")
        t_start = now()
        workload.start(readers_on=readers_on, avoid=avoid)
        stop = threading.Event()
        until = t_start + int((o.time - o.tail) * 1e9)
        if o.nemesis:
            nemesis.run(o.nemesis, o.heal, o.fault, until, stop)
        rest = t_start + int(o.time * 1e9) - now()
        if rest > 0:
            time.sleep(rest / 1e9)
        t_work = secs(now() - t_start)
        phase("workload")
        workload.stop.set()
        for t in workload.threads:
            if not t.name.startswith("probe"):
                t.join(o.timeout + 5)
        # The last probes measure the last recovery; then they stop too.
        workload.finish()
        phase("clients stop")

        # Whatever died on its own is started again for the final checks.
        for nd in cluster.nodes.values():
            if nd.paused:
                nd.resume()
            if not nd.alive():
                nd.start()
        # Generous limits: the checks are that the cluster comes back and
        # converges, not how fast (a TCP connection in retransmission
        # backoff can hold a node off for up to 2 minutes, TCP_RTO_MAX).
        serving = cluster.wait_serving(150)
        res.figures["serving_s"] = serving[1]
        phase("serving")
        nreads, missing, got = workload.final_reads()
        hist.close()
        phase("final reads")

        conv = converge(cluster, 150)
        res.figures["converge_s"] = conv[3]
        phase("converge")
        rcs = cluster.stop_all()
        crashes = list(cluster.crash_log)
        cluster.close()
        nemesis.close()
        phase("stop")

        # -- the checks --
        if hasattr(net, "stats"):
            say("  " + net.stats())
        c = hist.counts
        nops = sum(c.values())
        okc = sum(v for (f, t), v in c.items() if t == "ok")
        failc = sum(v for (f, t), v in c.items() if t == "fail")
        infoc = sum(v for (f, t), v in c.items() if t == "info")
        res.figures.update({"ops": nops, "ok": okc, "fail": failc,
                            "info": infoc, "workload_s": t_work,
                            "ops_per_s": nops / t_work if t_work else 0})
        say("  history: %d operations in %.1f s (%.0f/s): %d ok, %d fail, "
            "%d info; %d keys, %d probes" % (
                nops, t_work, res.figures["ops_per_s"], okc, failc, infoc,
                len(keys.used), len(workload.probes)))
        by_f = collections.defaultdict(collections.Counter)
        for (f, t), v in c.items():
            by_f[f][t] += v
        say("  by operation: " + "; ".join(
            "%s %s" % (f, " ".join("%s %d" % (t, by_f[f][t])
                                   for t in ("ok", "fail", "info")))
            for f in ("get", "set", "del", "delversion", "testandset")))
        statuses = collections.Counter()
        for line in open(os.path.join(rundir, "history.jsonl")):
            ev = json.loads(line)
            if ev["type"] == "ok":
                statuses[(ev["f"], ev["result"]["status"])] += 1
        say("  ok results: " + ", ".join(
            "%s %s %d" % (f, s, v) for (f, s), v in sorted(statuses.items())))
        if hist.errors:
            say("  errors: " + "; ".join(
                "%s %s %s %r x%d" % (f, t, code, msg, v)
                for (f, t, code, msg), v in hist.errors.most_common(8)))

        neo = int(round(o.exactly_once * o.clients))
        if neo:
            res.check(not workload.anomalies, "exactly-once clients (%d of "
                      "%d): %d writes of unknown outcome settled by a retry "
                      "with the same dsd-seq; no retry refused as stale" % (
                          neo, o.clients, workload.retried_ok),
                      "\n".join(workload.anomalies[:20]))
        # (a)
        code, out, took = run_checker(os.path.join(rundir, "history.jsonl"),
                                      o.checker_timeout)
        res.figures["checker_s"] = took
        phase("checker")
        first = out.strip().split("\n")[0] if out.strip() else ""
        if o.expect_nonlinearizable:
            res.check(code == 1, "the checker finds the history NOT "
                      "linearizable, as it must (%.1f s): %s" % (took, first),
                      out if code != 1 else "")
            if code == 1:
                say("  the checker's report (expected):")
                for line in out.rstrip("\n").split("\n")[:40]:
                    say("    " + line)
        elif code is None:
            res.check(False, "history is linearizable: the checker did not "
                      "finish in %d s" % o.checker_timeout, out[-2000:])
        else:
            res.check(code == 0, "history is linearizable (%.1f s): %s" %
                      (took, first), out if code != 0 else "")
        # (b)
        res.check(serving[0], "after the last fault every node is SERVING "
                  "again and a leader is known (%.1f s after the clients "
                  "stopped)" % serving[1], serving[2] + "\n" +
                  tail_logs(cluster) if not serving[0] else "")
        res.check(conv[0], "replicas converge: " + conv[1], conv[2])
        # (c)
        bad = []
        for k, (typ, arg, pres) in sorted(workload.probe_keys.items()):
            if typ != "ok" or pres["status"] != "SUCCESS" or k not in got:
                continue
            v = got[k]["value"]
            if got[k]["status"] != "SUCCESS" or v is None or \
                    v["data"] != arg["data"] or \
                    v["timestamp"] != arg["timestamp"] or v["version"] != 1:
                bad.append("probe key %d: acknowledged Set of %r, final "
                           "read %r" % (k, arg, got[k]))
        acked = sum(1 for typ, _, pres in workload.probe_keys.values()
                    if typ == "ok" and pres["status"] == "SUCCESS")
        if o.expect_lost_writes:
            res.check(not missing and bad, "final reads through the leader:"
                      " %d of %d keys read; %d of %d acknowledged probe "
                      "writes lost, as they must be" % (
                          nreads, nreads + len(missing), len(bad), acked),
                      "not read: %s" % missing[:20] if missing else "")
            for line in bad[:3]:
                say("    " + line)
        else:
            res.check(not missing and not bad,
                      "final reads through the leader: %d of %d keys read "
                      "(in the history); %s" % (
                          nreads, nreads + len(missing),
                          "%d of %d acknowledged probe writes lost" % (
                              len(bad), acked) if bad else
                          "all %d acknowledged probe writes are there" %
                          acked),
                      "\n".join((["not read: %s" % missing[:20]] if missing
                                 else []) + bad[:20]))
        # (d)
        rec = recovery_figures(nemesis.events, workload.probes,
                               sorted(cluster.nodes))
        res.figures["recovery"] = rec
        if rec:
            say("  recovery after each fault (s): kind [nodes] fault-length "
                "-> first write through any node / through every node; "
                "first write after the fault began")
            for r in rec:
                say("    %-18s %-16s %5.2f -> %s / %s; %s  (by node: %s)" % (
                    r["kind"], r["nodes"], r["fault_s"],
                    fmt_s(r["recovery_any_s"]), fmt_s(r["recovery_all_s"]),
                    fmt_s(r["first_write_after_start_s"]),
                    " ".join("n%d %s" % (i, "none" if v is None else
                                         "%.2f" % v)
                             for i, v in sorted(
                                 r["recovery_node_s"].items()))))
            late = [r for r in rec if r["recovery_any_s"] is None or
                    r["recovery_any_s"] > RECOVERY_BOUND_S]
            worst = max((r["recovery_any_s"] for r in rec
                         if r["recovery_any_s"] is not None), default=None)
            if o.probe_interval > 0:
                res.check(not late, "writes succeed within %.0f s of each "
                          "fault's end (%d faults, worst %s s)" % (
                              RECOVERY_BOUND_S, len(rec), fmt_s(worst)),
                          "\n".join("%s %s: %s" % (
                              r["kind"], r["nodes"],
                              "no write succeeded before the next fault"
                              if r["recovery_any_s"] is None else
                              "%.2f s, %.2f s over the bound" % (
                                  r["recovery_any_s"],
                                  r["recovery_any_s"] - RECOVERY_BOUND_S))
                              for r in late))
        if any(e["kind"] == "member-readd" for e in nemesis.events):
            res.check(not nemesis.failures, "membership changes: every "
                      "removed node was added back (%d)" % sum(
                          e["kind"] == "member-readd"
                          for e in nemesis.events),
                      "\n".join(nemesis.failures))
        # (e)
        logs_bad = scan_logs(cluster)
        bad_exit = {i: rc for i, rc in rcs.items() if rc != 0}
        res.check(not crashes, "no node died on its own during the run",
                  "\n".join(crashes) + "\n" + "\n".join(logs_bad[:10]))
        res.check(not bad_exit and not logs_bad,
                  "every node exits 0 on SIGTERM, no sanitizer or abort in "
                  "the logs" + ("" if not bad_exit else " (exit: %s)" % (
                      ", ".join("node %d %s" % (i, _rc(rc))
                                for i, rc in sorted(bad_exit.items())))),
                  "\n".join(logs_bad[:20]))
        return res
    except KeyboardInterrupt:
        raise
    except Exception:
        import traceback
        res.check(False, "the run went through", traceback.format_exc()
                  + ("\n" + tail_logs(cluster) if cluster else ""))
        return res
    finally:
        if workload is not None:
            workload.stop.set()
            workload.stop_probes.set()
        if nemesis is not None:
            try:
                nemesis.heal()
            except Exception:
                pass
        if cluster is not None:
            cluster.kill_all()
            cluster.close()
        try:
            net.teardown()
        except Exception as e:
            say("lab: teardown: %s" % e)
        res.figures["run_s"] = time.monotonic() - t_run
        phase("teardown")
        res.figures["phases"] = phases
        say("  run took %.1f s (%s)" % (res.figures["run_s"], ", ".join(
            "%s %.1f" % p for p in phases)))


def _fmt_status(st):
    return "\n".join("node %d: %s" % (i, "no answer" if s is None else
                                      "%s term %d commit %d applied %d last "
                                      "%d keys %d digest %016x" % (
                                          s["state"], s["term"],
                                          s["commit_index"],
                                          s["applied_index"], s["last_index"],
                                          s["keys"], s["digest"]))
                      for i, s in sorted(st.items()))


def converge(cluster, timeout):
    """Wait for every node to reach the same applied and last index and
    digest.  Returns (ok, summary, detail); when it took more than 2 s, the
    summary says so and the detail has the statuses at the start."""
    t0 = time.monotonic()
    first = last = None
    while time.monotonic() - t0 < timeout:
        st = cluster.statuses(digest=True, timeout=2.0)
        if first is None:
            first = st
        last = st
        if all(s is not None for s in st.values()):
            applied = {s["applied_index"] for s in st.values()}
            lasts = {s["last_index"] for s in st.values()}
            digests = {s["digest"] for s in st.values()}
            if len(applied) == 1 and len(lasts) == 1 and len(digests) == 1:
                s = next(iter(st.values()))
                took = time.monotonic() - t0
                if took > 2:
                    say("  slow convergence (%.1f s); the statuses at its "
                        "start:" % took)
                    for line in _fmt_status(first).split("\n"):
                        say("    " + line)
                return True, ("%d nodes at applied index %d, %d keys, digest "
                              "%016x (%.1f s)" % (len(st), s["applied_index"],
                                                  s["keys"], s["digest"],
                                                  took)), "", took
        time.sleep(0.2)
    return False, "not within %d s" % timeout, (
        "at the start:\n" + _fmt_status(first or {}) + "\nat the end:\n" +
        _fmt_status(last or {})), None


def scan_logs(cluster):
    bad = []
    for nd in cluster.nodes.values():
        try:
            with open(nd.logpath, errors="replace") as f:
                for n, line in enumerate(f, 1):
                    if BAD_LOG.search(line):
                        bad.append("n%d.log:%d: %s" % (nd.i, n,
                                                       line.rstrip()[:200]))
        except OSError:
            pass
    return bad


def tail_logs(cluster, n=15):
    if cluster is None:
        return ""
    out = []
    for nd in cluster.nodes.values():
        try:
            with open(nd.logpath, errors="replace") as f:
                lines = f.readlines()[-n:]
            out.append("--- n%d.log (last %d lines)" % (nd.i, len(lines)))
            out.extend(x.rstrip() for x in lines)
        except OSError:
            pass
    return "\n".join(out)


# -- set-up, clean-up, entry points -------------------------------------------

BASE_PREFIX = "dsdlab."


def clean_dirs():
    """Remove the directories (and kill the nodes) of runs whose process
    is gone without finishing; kept results of failed runs stay."""
    tmp = tempfile.gettempdir()
    for d in glob.glob(os.path.join(tmp, BASE_PREFIX + "*")):
        m = re.match(re.escape(BASE_PREFIX) + r"(\d+)\.", os.path.basename(d))
        if not m or labnet.pid_alive(int(m.group(1))):
            continue
        if os.path.exists(os.path.join(d, "KEPT")):
            continue
        for pf in glob.glob(os.path.join(d, "*", "pids")):
            for p in open(pf).read().split():
                try:
                    with open("/proc/%s/cmdline" % p, "rb") as f:
                        cmd = f.read()
                    if d.encode() in cmd:
                        os.kill(int(p), signal.SIGKILL)
                        say("lab: killed leftover node %s" % p)
                except (OSError, ValueError):
                    pass
        shutil.rmtree(d, ignore_errors=True)
        say("lab: removed leftover directory " + d)


def _term(signum, frame):
    raise KeyboardInterrupt


def add_run_options(ap):
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--net", choices=("auto", "netns", "loopback"),
                    default="auto")
    ap.add_argument("--drop", choices=("both", "input"), default="both",
                    help="a partition's rules (netns): INPUT -s PEER and "
                    "OUTPUT -d PEER drops, or INPUT only (as Jepsen; the "
                    "sender's kernel then never sees its own drop)")
    ap.add_argument("--nemesis", default="partition-halves",
                    help="comma-separated kinds, in turn: " + ", ".join(KINDS)
                    + "; or none")
    ap.add_argument("--time", type=float, default=20,
                    help="seconds of workload")
    ap.add_argument("--fault", type=float, default=3,
                    help="seconds each fault lasts")
    ap.add_argument("--heal", type=float, default=3,
                    help="seconds of calm before each fault")
    ap.add_argument("--tail", type=float, default=3,
                    help="seconds of calm at the end, before the final reads")
    ap.add_argument("--clients", type=int, default=6)
    ap.add_argument("--keys", type=int, default=8)
    ap.add_argument("--ops-per-key", type=int, default=250,
                    help="operations before a key is replaced by a fresh one"
                    " (0: never)")
    ap.add_argument("--think", type=float, default=0.002,
                    help="a client's pause between operations, at most (s)")
    ap.add_argument("--timeout", type=float, default=3.0,
                    help="each client call's deadline (s)")
    ap.add_argument("--exactly-once", type=float, default=0.5,
                    help="the share of clients whose writes carry "
                    "dsd-client-id and dsd-seq and are retried when unknown")
    ap.add_argument("--retries", type=int, default=3,
                    help="tries after the first of an exactly-once write "
                    "whose outcome is unknown")
    ap.add_argument("--probe-interval", type=float, default=0.1)
    ap.add_argument("--probe-timeout", type=float, default=1.0)
    ap.add_argument("--read", choices=("linearizable", "serializable"),
                    default="linearizable")
    ap.add_argument("--stale-reads", action="store_true",
                    help="pin --readers clients (reads only) to one "
                    "follower, the others avoid it; partition-follower "
                    "isolates that one")
    ap.add_argument("--readers", type=int, default=2)
    ap.add_argument("--expect-nonlinearizable", action="store_true",
                    help="the run passes only if the checker rejects it")
    ap.add_argument("--expect-lost-writes", action="store_true",
                    help="the run passes only if acknowledged probe writes "
                    "are missing at the end (after wipe-all)")
    ap.add_argument("--checker-timeout", type=int, default=600)
    ap.add_argument("--seed", type=int)
    ap.add_argument("--dsd", default=os.environ.get("DSD", os.path.join(
        TOP, "src", "dsd")), help="the binary (default $DSD or src/dsd)")
    ap.add_argument("--dsd-arg", dest="dsd_args", action="append",
                    default=[], help="one more flag for every node")
    ap.add_argument("--keep", action="store_true",
                    help="keep the run's directory even if it passed")
    ap.add_argument("--name", default=None)
    ap.add_argument("--debug-ss", action="store_true",
                    help="save every node's TCP connections (ss -tnoi) "
                    "0.2 s after each heal, as ss-healK.txt (netns)")


def finish_opts(o):
    o.nemesis = [k for k in o.nemesis.split(",") if k and k != "none"]
    for k in o.nemesis:
        if k not in KINDS:
            raise SystemExit("lab: unknown nemesis %s" % k)
    o.dsd = os.path.abspath(o.dsd)
    return o


# The suite: (name, argv).  CI: about 4-5 minutes on two cores.
SUITE_CI = [
    ("3n-partition-halves", "--nemesis partition-halves"),
    ("3n-partition-leader", "--nemesis partition-leader"),
    ("3n-partition-bridge-follower", "--nemesis "
     "partition-bridge,partition-follower"),
    ("3n-kill-leader", "--nemesis kill-leader"),
    # Snapshots every 64 entries: a node back from the dead is sent one.
    ("3n-kill-random-all", "--nemesis kill-random,kill-all "
     "--dsd-arg=--snapshot-threshold=64 --dsd-arg=--snapshot-trailing=16"),
    ("3n-pause-leader", "--nemesis pause-leader"),
    # A follower removed, emptied, started with --join and added back.
    ("3n-member-readd", "--nemesis member-readd,partition-leader"),
    # The server gives up before the client does: its own UNAVAILABLE
    # (no leader in time) and UNKNOWN (a forward timed out) reach the
    # history, and must be honest.
    ("3n-server-timeouts", "--nemesis partition-halves,partition-leader,"
     "pause-random --fault 4 --time 24 --timeout 6 "
     "--dsd-arg=--leader-wait=1500 --dsd-arg=--forward-timeout=1500"),
    ("5n-partitions-kills-pause", "--nodes 5 --nemesis partition-ring,"
     "kill-leader,partition-bridge,kill-random,partition-halves,pause-leader "
     "--time 38"),
    ("3n-serializable-stale-reads-must-fail", "--read serializable "
     "--stale-reads --nemesis partition-follower --time 14 --heal 2 "
     "--fault 5 --expect-nonlinearizable"),
    ("3n-amnesia-must-fail", "--nemesis wipe-all --time 10 --heal 5 "
     "--fault 1 --expect-nonlinearizable --expect-lost-writes"),
    ("3n-loopback-partition-kill", "--net loopback --nemesis "
     "partition-leader,kill-leader"),
    ("1n-no-faults", "--nodes 1 --nemesis none --time 4"),
]
# Each CI run: the defaults below unless it says otherwise.
SUITE_CI_DEFAULTS = "--nodes 3 --time 14 --heal 3 --fault 2.5 --tail 2"
# For a slower binary (ASan+UBSan): one run of every fault kind, short.
SUITE_QUICK = [
    ("3n-mixed", "--nemesis partition-leader,kill-leader,pause-leader,"
     "partition-halves --time 25"),
    ("1n-no-faults", "--nodes 1 --nemesis none --time 4"),
]
SUITE_SOAK = [
    ("soak-3n-partition-halves", "--nodes 3 --nemesis partition-halves "
     "--time 180 --fault 5 --heal 5"),
    ("soak-3n-partition-leader", "--nodes 3 --nemesis partition-leader "
     "--time 180 --fault 5 --heal 5"),
    ("soak-5n-partition-ring-bridge", "--nodes 5 --nemesis partition-ring,"
     "partition-bridge --time 180 --fault 5 --heal 5"),
    ("soak-3n-kill", "--nodes 3 --nemesis kill-leader,kill-random,kill-all "
     "--time 180 --fault 4 --heal 5"),
    ("soak-5n-kill", "--nodes 5 --nemesis kill-leader,kill-random "
     "--time 180 --fault 4 --heal 5"),
    ("soak-3n-pause-leader", "--nodes 3 --nemesis pause-leader --time 180 "
     "--fault 4 --heal 5"),
    ("soak-3n-member-readd", "--nodes 3 --nemesis member-readd,pause-random,"
     "kill-random --time 180 --fault 4 --heal 5"),
]


def summary(results):
    """One line of figures per run."""
    say("# figures: ops (ok/fail/info), ops/s; faults; write recovery after "
        "each fault's end, through any node and through every node "
        "(median / max, s); seconds to converge after the final reads; "
        "checker and run seconds")
    for r in results:
        f = r.figures
        if "ops" not in f:
            say("#   %-40s (no figures: %s)" % (r.name, "failed early"))
            continue
        rec = f.get("recovery", [])
        anyv = sorted(x["recovery_any_s"] for x in rec
                      if x["recovery_any_s"] is not None)
        allv = sorted(x["recovery_all_s"] for x in rec
                      if x["recovery_all_s"] is not None)
        miss_any = sum(x["recovery_any_s"] is None for x in rec)
        miss_all = sum(x["recovery_all_s"] is None for x in rec)

        def mm(v, miss):
            if not v:
                return "-" if not miss else "none"
            return "%.2f/%.2f%s" % (v[len(v) // 2], v[-1],
                                    " +%d none" % miss if miss else "")
        say("#   %-40s %6d (%d/%d/%d) %4.0f/s; %2d faults; any %s, every "
            "%s; converged %s; checker %.1f, run %.0f" % (
                r.name, f["ops"], f["ok"], f["fail"], f["info"],
                f["ops_per_s"], len(rec), mm(anyv, miss_any),
                mm(allv, miss_all), fmt_s(f.get("converge_s")),
                f.get("checker_s", 0), f.get("run_s", 0)))


def main(argv=None):
    ap = argparse.ArgumentParser(prog="lab.py", description=__doc__.split(
        "\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    rp = sub.add_parser("run", help="one run")
    add_run_options(rp)
    sp = sub.add_parser("suite", help="the CI runs (or --soak)")
    sp.add_argument("--soak", action="store_true",
                    help="the long runs (bench/lab-soak.sh)")
    sp.add_argument("--quick", action="store_true",
                    help="two short runs (for the ASan+UBSan binary)")
    sp.add_argument("--net", choices=("auto", "netns", "loopback"),
                    default="auto")
    sp.add_argument("--only", default=None, help="runs whose name has this")
    sp.add_argument("--time-scale", type=float, default=1.0,
                    help="multiply every run's --time")
    sp.add_argument("--keep", action="store_true")
    sp.add_argument("--dsd", default=None)
    sub.add_parser("clean", help="remove leftovers of crashed runs")
    a = ap.parse_args(argv)

    # SIGINT too: a shell without job control starts a background job
    # with it ignored.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _term)
    labnet.clean_leftovers(log=say)
    clean_dirs()
    if a.cmd == "clean":
        return 0

    if a.cmd == "run":
        runs = [(a.name or "run", None, a)]
    else:
        runs = []
        for name, args in (SUITE_SOAK if a.soak else SUITE_QUICK
                           if a.quick else SUITE_CI):
            if a.only and a.only not in name:
                continue
            rp2 = argparse.ArgumentParser()
            add_run_options(rp2)
            extra = [] if "--net" in args else ["--net", a.net]
            if a.dsd:
                extra += ["--dsd", a.dsd]
            if a.keep:
                extra += ["--keep"]
            base_args = [] if a.soak else SUITE_CI_DEFAULTS.split()
            o = rp2.parse_args(base_args + args.split() + extra)
            o.time *= a.time_scale
            runs.append((name, args, o))

    if not runs:
        say("lab: no run matches")
        return 2
    netns_ok, why = True, ""
    if any(o.net != "loopback" for _, _, o in runs):
        netns_ok, why = labnet.netns_usable()
    if not netns_ok:
        if any(o.net == "netns" for _, _, o in runs):
            say("SKIP: ip netns refused (%s) and --net=netns asked for" % why)
            return 77
        say("lab: ip netns refused (%s): every run on loopback" % why)
    for _, _, o in runs:
        if o.net == "auto":
            o.net = "netns" if netns_ok else "loopback"
        finish_opts(o)
    if any(o.net == "loopback" for _, _, o in runs):
        ok, why2 = labnet.loopback_usable()
        if not ok:
            say("SKIP: ip netns refused (%s) and loopback mode cannot run "
                "(%s)" % (why or "not tried", why2))
            return 77
    if not os.access(runs[0][2].dsd, os.X_OK):
        say("lab: %s is not built" % runs[0][2].dsd)
        say("0 passed, 1 failed")
        return 1
    if any(o.net == "loopback" and any(k.startswith("partition-")
                                       for k in o.nemesis)
           for _, _, o in runs):
        say("lab: loopback mode: partitions by user-space proxies between "
            "the nodes (Raft and forwarded client calls)")

    base = tempfile.mkdtemp(prefix=BASE_PREFIX + "%d." % os.getpid())
    results = []
    interrupted = False
    t0 = time.monotonic()
    try:
        for name, _, o in runs:
            results.append(run_one(o, name, base))
    except KeyboardInterrupt:
        say("lab: interrupted")
        interrupted = True
        return 130
    finally:
        keep = interrupted or any(not r.passed for r in results) or any(
            o.keep for _, _, o in runs)
        if keep:
            open(os.path.join(base, "KEPT"), "w").close()
            say("lab: histories and logs kept in " + base)
        else:
            shutil.rmtree(base, ignore_errors=True)
    summary(results)
    passed = sum(ok for r in results for ok, _, _ in r.checks)
    failed = sum(not ok for r in results for ok, _, _ in r.checks)
    say("lab: %d runs in %.0f s" % (len(results), time.monotonic() - t0))
    say("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
