#!/usr/bin/python3
"""kvdb-replicated on loopback, from a stock gRPC client (Debian's
python3-grpcio): every node answers with kvdb's semantics, reads see every
write acknowledged before them whichever node took it, retries with a
session are exactly-once, a cluster survives a killed and a paused leader
and a minority lost, refuses (UNAVAILABLE, not a hang) with a majority
lost, recovers from its files, catches a lagging node up by snapshot,
changes membership at run time, and answers bad input with an error while
it goes on serving.  Each check starts its own nodes on free loopback ports
and stops them.  (Real network partitions are the cluster lab's, in
tests/lab/.)  Prints "ok - ..." lines and "N passed, M failed".

usage: test_replicated.py [path/to/dsd]
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import grpc

from kvclient import (Client, check, f_bytes, f_int, finish, free_port,
                      results, test_semantics, SUCCESS, ERROR)

DSD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "src", "dsd"))


class Node:
    joined = False

    def __init__(self, cluster, node_id, extra=()):
        self.c = cluster
        self.id = node_id
        self.raft = "127.0.0.1:%d" % free_port()
        self.client = "127.0.0.1:%d" % free_port()
        self.dir = os.path.join(cluster.top, "n%d" % node_id)
        self.logpath = os.path.join(cluster.top, "n%d.log" % node_id)
        self.extra = list(extra)
        self.proc = None

    def entry(self):
        return "%d=%s/%s" % (self.id, self.raft, self.client)

    def start(self, join=False):
        args = [DSD, "--mode=kvdb-replicated", "--node-id=%d" % self.id,
                "--data-dir=" + self.dir, "-v"] + self.c.args + self.extra
        if join:
            args.append("--join=%s/%s" % (self.raft, self.client))
        else:
            args.append("--cluster=" + self.c.spec())
        log = open(self.logpath, "ab")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                     stdout=log, stderr=log)
        log.close()

    def kill(self, sig):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM):
        if self.proc is None:
            return None
        self.kill(signal.SIGCONT)
        self.kill(sig)
        try:
            rc = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.proc = None
        return rc

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def logtext(self):
        try:
            with open(self.logpath, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def cl(self, **kw):
        return Client(self.client, **kw)


class Cluster:
    def __init__(self, n=3, args=()):
        self.top = tempfile.mkdtemp(prefix="dsd-repl-test.")
        self.args = ["--election-timeout=300", "--heartbeat-timeout=50"] + \
            list(args)
        self.nodes = [Node(self, i + 1) for i in range(n)]

    def spec(self):
        return ",".join(n.entry() for n in self.nodes if not n.joined)

    def start(self):
        for n in self.nodes:
            n.start()
        return self.wait_leader()

    def statuses(self, digest=False, nodes=None):
        out = {}
        for n in nodes or self.nodes:
            if not n.running():
                continue
            try:
                c = n.cl(timeout=2)
                out[n.id] = c.status(digest=digest, timeout=2)
                c.close()
            except (grpc.RpcError, grpc.FutureTimeoutError):
                pass
        return out

    def wait_leader(self, timeout=15, exclude=()):
        """The node all running nodes but those excluded agree leads (not
        an excluded one), or None."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            st = self.statuses(nodes=[n for n in self.nodes
                                      if n.id not in exclude])
            leaders = {s["leader_id"] for s in st.values()}
            if len(st) > 0 and len(leaders) == 1 and 0 not in leaders and \
                    not leaders & set(exclude):
                lid = leaders.pop()
                for n in self.nodes:
                    if n.id == lid and n.running():
                        return n
            time.sleep(0.1)
        return None

    def follower(self, leader):
        return next(n for n in self.nodes if n is not leader and n.running())

    def converged(self, timeout=20, nodes=None):
        """Wait until the running nodes have applied the same index;
        return their digests {id: digest} (empty if they did not)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            st = self.statuses(digest=True, nodes=nodes)
            applied = {s["applied_index"] for s in st.values()}
            want = len([n for n in (nodes or self.nodes) if n.running()])
            if len(st) == want and len(applied) == 1:
                return {i: s["digest"] for i, s in st.items()}
            time.sleep(0.2)
        return {}

    def stop(self):
        rcs = {}
        for n in self.nodes:
            rcs[n.id] = n.stop()
        return rcs

    def logs(self):
        return "\n".join("--- node %d\n%s" % (n.id, n.logtext()[-1500:])
                         for n in self.nodes)

    def cleanup(self):
        self.stop()
        bad = [n.id for n in self.nodes if any(
            m in n.logtext() for m in ("AddressSanitizer", "LeakSanitizer",
                                       "runtime error:", "fatal:"))]
        check("no node of this cluster logged a sanitizer report or a "
              "fatal error", not bad, self.logs())
        shutil.rmtree(self.top, ignore_errors=True)


# -- the checks ---------------------------------------------------------------

def test_basics():
    c = Cluster(3)
    leader = c.start()
    check("three nodes elect a leader that all of them name", leader, c.logs())
    if not leader:
        c.cleanup()
        return
    f = c.follower(leader)
    check("health: SERVING on every node once the leader is known",
          all(health(n.client) == 1 for n in c.nodes))
    # The battery of every key-value mode, once through a follower (every
    # request passed on to the leader) and once through the leader.
    before = len(results)
    cf = f.cl()
    test_semantics(cf)
    cf.close()
    cl = leader.cl()
    test_semantics(cl, 2000)
    check("the semantics battery passes through a follower and the leader",
          all(results[before:]))
    # Reads see writes acknowledged before them, whichever node took the
    # write and whichever answers the read.
    clients = [n.cl() for n in c.nodes]
    stale = 0
    for i in range(300):
        w = clients[i % 3]
        r = clients[(i + 1) % 3]
        k = 50000 + i % 7
        got = r.get(k)
        if got.status == SUCCESS:
            w.tas(k, i, b"v%d" % i, got.value[0])
        else:
            w.set(k, i, b"v%d" % i)
        back = clients[(i + 2) % 3].get(k)
        if back.value is None or back.value[2] != b"v%d" % i:
            stale += 1
    check("300 writes through one node, each read at once through another, "
          "never stale (%d stale)" % stale, stale == 0)
    for x in clients:
        x.close()

    # Exactly-once through a follower: the retry of a sequence number gets
    # the first answer, not a second application.
    s = f.cl(session=True)
    r1 = s.set(70000, 1, b"once")
    s.next_seq = s.seq
    r2 = s.set(70000, 1, b"once")
    check("a retried Set (same dsd-seq) gets the first SUCCESS, not ERROR",
          r1.status == SUCCESS and r2.status == SUCCESS and r2.value is None,
          (r1, r2))
    r1 = s.tas(70000, 2, b"twice?", 1)
    s.next_seq = s.seq
    r2 = s.tas(70000, 2, b"twice?", 1)
    got = cl.get(70000)
    check("a retried TestAndSet applies once: version 2, first answer twice",
          r1.status == SUCCESS and r2.status == SUCCESS and
          got.value[0] == 2, (r1, r2, got))
    s.next_seq = 1
    try:
        s.delete(70000)
        check("an older dsd-seq is refused FAILED_PRECONDITION", False)
    except grpc.RpcError as e:
        check("an older dsd-seq is refused FAILED_PRECONDITION",
              e.code() == grpc.StatusCode.FAILED_PRECONDITION, e)
    check("... and did nothing", cl.get(70000).status == SUCCESS)
    try:
        s.m["Get"](f_bytes(1, b"\x01"), timeout=5,
                   metadata=(("dsd-client-id", "5"),))
        check("a client id without dsd-seq is INVALID_ARGUMENT", False)
    except grpc.RpcError as e:
        check("a client id without dsd-seq is INVALID_ARGUMENT",
              e.code() == grpc.StatusCode.INVALID_ARGUMENT, e)
    s.close()

    # Status and membership as any node sees them.
    st = c.statuses()
    check("Status: one leader, the others followers, the same term",
          sorted(x["state"] for x in st.values()) ==
          ["follower", "follower", "leader"] and
          len({x["term"] for x in st.values()}) == 1, st)
    ms, lid = f.cl().members()
    check("MemberList from a follower: three voters with both addresses, "
          "and the leader", ms == sorted((n.id, n.raft, n.client, 0)
                                         for n in c.nodes) and
          lid == leader.id, (ms, lid))

    # Bad input: the node answers an error and goes on.
    ch = grpc.insecure_channel(f.client)
    fwd = ch.unary_unary("/dsd.kvdb.v1.Replica/Forward",
                         request_serializer=None, response_deserializer=None)
    for name, body in (("a malformed ForwardRequest", b"\xff\xff\xff"),
                       ("a malformed StatusRequest", None)):
        try:
            if body is None:
                ch.unary_unary("/dsd.kvdb.v1.Admin/Status",
                               request_serializer=None,
                               response_deserializer=None)(b"\x0a\xff",
                                                           timeout=5)
            else:
                fwd(body, timeout=5)
            check(name + " is INVALID_ARGUMENT", False)
        except grpc.RpcError as e:
            check(name + " is INVALID_ARGUMENT",
                  e.code() == grpc.StatusCode.INVALID_ARGUMENT, e)
    # A Forward call with an unknown operation and a malformed request in
    # it: an error for each, a result for the good one.
    call = lambda op, req: f_bytes(1, f_int(1, op) + f_bytes(2, req))
    raw = fwd(call(9, b"") + call(2, b"\x0a\xff") +
              call(2, f_bytes(1, b"\x01")), timeout=5)
    check("a Forward with an unknown op and a malformed request answers "
          "each (INVALID_ARGUMENT twice, then a reply)",
          raw.count(b"\x08\x03") == 2 and len(raw) > 10, raw)
    ch.close()
    check("... and the node still serves", f.cl().get(1).status in
          (SUCCESS, ERROR))
    digests = c.converged()
    check("every replica applied the same entries to the same state "
          "(digests %s)" % sorted(set(digests.values())),
          len(digests) == 3 and len(set(digests.values())) == 1)
    rcs = c.stop()
    check("every node stops with status 0 on SIGTERM", all(
        rc == 0 for rc in rcs.values()), rcs)
    c.cleanup()


def health(addr):
    ch = grpc.insecure_channel(addr)
    try:
        raw = ch.unary_unary("/grpc.health.v1.Health/Check",
                             request_serializer=None,
                             response_deserializer=None)(b"", timeout=5)
        return raw[1] if len(raw) == 2 else -1
    except grpc.RpcError:
        return -1
    finally:
        ch.close()


class Writer(threading.Thread):
    """Writes keys through the given nodes, round robin, and records the
    acknowledged ones (with sessions, retrying UNKNOWN and UNAVAILABLE)."""

    def __init__(self, nodes, base, stop):
        super().__init__(daemon=True)
        self.nodes = nodes
        self.base = base
        self.stop = stop
        self.acked = []
        self.unknown = 0
        self.retries = 0

    def run(self):
        i = 0
        seq = 0
        clients = {}
        while not self.stop.is_set():
            k = self.base + i
            seq += 1
            done = False
            for attempt in range(60):
                n = self.nodes[(i + attempt) % len(self.nodes)]
                try:
                    if n.client not in clients:
                        clients[n.client] = n.cl(session=True, timeout=2,
                                                 client_id=self.base)
                    c = clients[n.client]
                    c.next_seq = seq    # a retry keeps its number
                    r = c.set(k, i, b"w%d" % k)
                    if r.status == SUCCESS:
                        self.acked.append(k)
                    done = True
                    break
                except grpc.RpcError as e:
                    self.retries += 1
                    if e.code() == grpc.StatusCode.UNKNOWN:
                        self.unknown += 1
                    time.sleep(0.05)
                except grpc.FutureTimeoutError:
                    clients.pop(n.client, None)
                    time.sleep(0.05)
            if not done:
                break
            i += 1
        for c in clients.values():
            c.close()


def test_kill_leader():
    c = Cluster(3)
    leader = c.start()
    if not leader:
        check("kill -9 of the leader: a cluster to start with", False,
              c.logs())
        c.cleanup()
        return
    stop = threading.Event()
    w = Writer(c.nodes, 100000, stop)
    w.start()
    time.sleep(1.5)
    before = len(w.acked)
    leader.stop(signal.SIGKILL)
    t0 = time.time()
    new = c.wait_leader(exclude=(leader.id,))
    took = time.time() - t0
    time.sleep(1.5)
    stop.set()
    w.join(30)
    check("kill -9 of the leader under load: a new leader in %.2f s" % took,
          new is not None and new is not leader, c.logs())
    check("writes went on through the survivors (%d before, %d after; "
          "%d retried, %d UNKNOWN)" % (before, len(w.acked) - before,
                                       w.retries, w.unknown),
          len(w.acked) > before + 10)
    leader.start()
    digests = c.converged(timeout=30)
    check("the killed node restarts and catches up: equal digests",
          len(digests) == 3 and len(set(digests.values())) == 1,
          (digests, c.logs()))
    missing = []
    for n in c.nodes:
        cl = n.cl()
        missing += [k for k in w.acked if cl.get(k).status != SUCCESS]
        cl.close()
    check("every acknowledged write is on every node (%d writes, %d "
          "missing)" % (len(w.acked), len(missing)), not missing,
          missing[:10])
    dup = [k for k in set(w.acked) if w.acked.count(k) > 1]
    check("no write was acknowledged twice", not dup, dup[:10])
    c.cleanup()


def test_pause_and_minority():
    c = Cluster(3, ["--leader-wait=1500"])
    leader = c.start()
    if not leader:
        check("SIGSTOP of the leader: a cluster to start with", False,
              c.logs())
        c.cleanup()
        return
    leader.kill(signal.SIGSTOP)
    new = c.wait_leader(exclude=(leader.id,))
    check("a leader paused past the election timeout is replaced",
          new is not None and new is not leader, c.logs())
    if new:
        r = new.cl().set(200, 1, b"while paused")
        check("writes go on while the old leader is paused",
              r.status == SUCCESS, r)
    leader.kill(signal.SIGCONT)
    digests = c.converged()
    check("the old leader comes back as a follower with the same state",
          len(digests) == 3 and len(set(digests.values())) == 1 and
          c.statuses()[leader.id]["state"] == "follower", c.logs())
    r = leader.cl().get(200)
    check("... and answers reads with what was written meanwhile",
          r.status == SUCCESS and r.value[2] == b"while paused", r)

    # A minority down: the others go on.
    victim = c.follower(c.wait_leader())
    victim.stop(signal.SIGKILL)
    live = [n for n in c.nodes if n.running()]
    r = live[0].cl().set(201, 1, b"minority down")
    check("with one node of three down, writes succeed",
          r.status == SUCCESS, r)
    # A majority down: the lone node refuses within --leader-wait.
    live[1].stop(signal.SIGKILL)
    lone = live[0]
    t0 = time.time()
    try:
        lone.cl().set(202, 1, b"no majority")
        check("with two nodes of three down, a write gets UNAVAILABLE",
              False)
    except grpc.RpcError as e:
        took = time.time() - t0
        check("with two nodes of three down, a write gets UNAVAILABLE or "
              "UNKNOWN, within --leader-wait and the timeouts (%s after "
              "%.1f s)" % (e.code(), took),
              e.code() in (grpc.StatusCode.UNAVAILABLE,
                           grpc.StatusCode.UNKNOWN) and took < 9, e)
    time.sleep(1)
    check("... and its health says NOT_SERVING", health(lone.client) == 2)
    # No leader now: a write waits --leader-wait (1.5 s) for one, then
    # is refused as certainly not applied.
    t0 = time.time()
    try:
        lone.cl().set(203, 1, b"no leader")
        check("with no leader, a write gets UNAVAILABLE", False)
    except grpc.RpcError as e:
        took = time.time() - t0
        check("with no leader, a write gets UNAVAILABLE after "
              "--leader-wait (%.1f s, %s)" % (took, e.details()),
              e.code() == grpc.StatusCode.UNAVAILABLE and 1.4 < took < 5, e)
    # Bring them back: the cluster heals.
    victim.start()
    live[1].start()
    leader = c.wait_leader()
    r = lone.cl().get(202)
    check("once a majority is back it serves again; the refused write is "
          "absent or present, never half", leader is not None and
          r.status in (SUCCESS, ERROR), r)
    c.cleanup()


def test_stop_while_truncating():
    """libraft 0.15 frees a log truncation's request when it is closed
    while the truncation is running on a worker, and the worker's
    completion then uses it (the glue holds libraft's frees while it
    closes).  Make an old leader truncate entries it could not commit and
    stop it the moment the truncation starts."""
    os.environ["LIBRAFT_TRACE"] = "1"   # its trace says when
    try:
        stop_while_truncating()
    finally:
        del os.environ["LIBRAFT_TRACE"]


def stop_while_truncating():
    c = Cluster(3)
    old = c.start()
    rcs = []
    tries = 4
    hits = 0
    for _ in range(tries):
        if old is None:
            break
        others = [n for n in c.nodes if n is not old]
        for n in others:
            n.stop(signal.SIGKILL)
        try:    # appended by the leader alone, never committed
            old.cl(timeout=0.3).set(300, 1, b"overwritten")
        except grpc.RpcError:
            pass
        old.kill(signal.SIGSTOP)
        for n in others:
            n.start()
        new = c.wait_leader(exclude=(old.id,))
        if new is None:
            break
        # The new leader's entry takes the index of the old one's.
        cl = new.cl()
        cl.set(301, 1, b"instead")
        cl.close()
        with open(old.logpath, "rb") as f:
            f.seek(0, os.SEEK_END)
            old.kill(signal.SIGCONT)
            deadline = time.time() + 5
            seen, found = b"", None
            # raft_uv lists its files on a worker as it starts truncating.
            while time.time() < deadline and not found:
                seen += f.read()
                found = re.search(rb"log mismatch.*uv_list\.c", seen, re.S)
                time.sleep(0.0005)
        hits += found is not None
        rcs.append(old.stop())
        old.start()
        old = c.wait_leader()
    check("a node stopped while truncating its log exits cleanly "
          "(%d times, stopped as it truncated %d times)" % (tries, hits),
          rcs == [0] * tries and hits == tries, (rcs, c.logs()))
    c.cleanup()


def test_restart_recovery():
    c = Cluster(3)
    leader = c.start()
    cl = leader.cl()
    for k in range(300):
        cl.set(k, k, b"r%d" % k)
    for k in range(0, 300, 3):
        cl.tas(k, k, b"t%d" % k, 1)
    cl.close()
    before = c.converged()
    rcs = c.stop()
    # A restart with another list: ignored, the directory wins.
    c.args.append("--snapshot-threshold=64")
    for n in c.nodes:
        n.start()
    leader = c.wait_leader()
    after = c.converged()
    check("all nodes stopped (SIGTERM, status 0) and restarted recover the "
          "same state", set(rcs.values()) == {0} and leader is not None and
          len(set(after.values())) == 1 and
          set(after.values()) == set(before.values()),
          (before, after, c.logs()))
    cl = c.nodes[2].cl()
    r = cl.get(3)
    check("... with versions as they were", r.status == SUCCESS and
          r.value[0] == 2 and r.value[2] == b"t3", r)
    cl.close()
    c.cleanup()


def test_snapshot_install():
    c = Cluster(3, ["--snapshot-threshold=32", "--snapshot-trailing=8"])
    leader = c.start()
    lagging = c.follower(leader)
    lagging.stop()
    cl = leader.cl()
    for k in range(2000):
        cl.set(k, k, b"s%d" % k)
    cl.close()
    committed = c.statuses(nodes=[leader])[leader.id]["commit_index"]
    lagging.start()
    # Health says SERVING only once the node has applied what the leader
    # had committed (it learns that by asking the leader).
    seen = None
    deadline = time.time() + 30
    while time.time() < deadline and seen is None:
        if health(lagging.client) == 1:
            st = c.statuses(nodes=[lagging]).get(lagging.id)
            seen = st["applied_index"] if st else None
        time.sleep(0.02)
    check("the lagging follower's health turns SERVING only after it has "
          "applied the %d entries committed before it came back (applied "
          "%s then)" % (committed, seen), seen is not None and
          seen >= committed)
    digests = c.converged(timeout=30)
    check("a follower back after 2000 entries (snapshots every 32) "
          "catches up: equal digests", len(digests) == 3 and
          len(set(digests.values())) == 1, (digests, c.logs()))
    check("... through a snapshot sent by the leader",
          "restored a snapshot" in lagging.logtext(),
          lagging.logtext()[-800:])
    r = lagging.cl().get(1999)
    check("... and serves what was written meanwhile",
          r.status == SUCCESS and r.value[2] == b"s1999", r)
    c.cleanup()


def test_membership():
    c = Cluster(3)
    leader = c.start()
    # A node that never answers: libraft gives up catching it up, and it
    # is taken out again rather than left half added.
    f = c.follower(leader)
    before, _ = f.cl().members()
    t0 = time.time()
    try:
        f.cl().member_add(9, "127.0.0.1:%d" % free_port(),
                          "127.0.0.1:%d" % free_port())
        check("member add of a node that does not run fails", False)
    except grpc.RpcError as e:
        check("member add of a node that does not run fails "
              "FAILED_PRECONDITION in %.1f s, saying it was removed again" %
              (time.time() - t0),
              e.code() == grpc.StatusCode.FAILED_PRECONDITION and
              "removed" in (e.details() or "") and
              f.cl().members()[0] == before, (e, f.cl().members()))
    newcomer = Node(c, 4)
    c.nodes.append(newcomer)
    newcomer.joined = True
    newcomer.start(join=True)
    cl = leader.cl()
    for k in range(100):
        cl.set(k, k, b"m%d" % k)
    f = c.follower(leader)
    try:
        ms, _ = f.cl().member_add(4, newcomer.raft, newcomer.client)
        check("member add through a follower: node 4 becomes a voter",
              (4, newcomer.raft, newcomer.client, 0) in ms, ms)
    except grpc.RpcError as e:
        check("member add through a follower: node 4 becomes a voter",
              False, (e, c.logs()))
    digests = c.converged(timeout=30)
    check("the new node caught up: four equal digests",
          len(digests) == 4 and len(set(digests.values())) == 1, digests)
    r = newcomer.cl().get(99)
    check("... and answers", r.status == SUCCESS and r.value[2] == b"m99", r)
    before, _ = f.cl().members()
    try:
        f.cl().member_add(5, "localhost:7999", "127.0.0.1:7998")
        check("member add with a Raft address that is a name is refused",
              False)
    except grpc.RpcError as e:
        check("member add with a Raft address that is a name is refused "
              "INVALID_ARGUMENT, and nothing changes",
              e.code() == grpc.StatusCode.INVALID_ARGUMENT and
              f.cl().members()[0] == before, e)
    try:
        newcomer.cl().member_add(4, newcomer.raft, newcomer.client)
        check("adding a member twice is refused", False)
    except grpc.RpcError as e:
        check("adding a member twice is refused FAILED_PRECONDITION",
              e.code() == grpc.StatusCode.FAILED_PRECONDITION, e)
    # Remove the leader itself: the others elect another and go on.
    leader = c.wait_leader()
    ms, _ = c.follower(leader).cl().member_remove(leader.id)
    check("member remove of the leader: gone from the list",
          leader.id not in [m[0] for m in ms], ms)
    leader.stop()
    rest = [n for n in c.nodes if n.running()]
    new = c.wait_leader(exclude=(leader.id,))
    check("the three left elect a leader and write",
          new is not None and new.cl().set(500, 1, b"after").status ==
          SUCCESS, c.logs())
    digests = c.converged(nodes=rest)
    check("... and agree", len(digests) == 3 and
          len(set(digests.values())) == 1, digests)
    c.cleanup()


def test_serializable():
    c = Cluster(3, ["--read=serializable"])
    leader = c.start()
    cl = leader.cl()
    cl.set(1, 1, b"x")
    cl.close()
    c.converged()
    ok = all(n.cl().get(1).status == SUCCESS for n in c.nodes)
    check("--read=serializable: every node answers Get from its own state",
          ok)
    check("... and says at start-up that reads may be stale",
          "may be stale" in c.nodes[0].logtext())
    c.cleanup()


def test_single_node():
    """A cluster of one: it leads alone, and stops cleanly after writes
    (libraft 0.15 reports its I/O closed twice, which freed its memory
    twice before the glue let only the first report through)."""
    bad = []
    for i in range(6):
        c = Cluster(1)
        leader = c.start()
        if leader is None:
            bad.append("no leader")
            c.cleanup()
            continue
        cl = leader.cl()
        for k in range(20):
            cl.set(k, k, b"one")
        cl.close()
        rc = leader.stop()
        if rc != 0:
            bad.append("exit %s: %s" % (rc, leader.logtext()[-300:]))
        c.cleanup()
    check("a one-node cluster leads, takes writes and stops with status 0, "
          "six times out of six", not bad, bad)


def test_startup_refusals():
    top = tempfile.mkdtemp(prefix="dsd-repl-test.")
    d = os.path.join(top, "d")
    cases = (
        ("no --node-id", ["--cluster=1=127.0.0.1:1/127.0.0.1:2"],
         "--node-id is required"),
        ("a node not in --cluster", ["--node-id=4",
                                     "--cluster=1=127.0.0.1:1/127.0.0.1:2"],
         "does not list this node"),
        ("an id listed twice", ["--node-id=1",
                                "--cluster=1=127.0.0.1:1/127.0.0.1:2,"
                                "1=127.0.0.1:3/127.0.0.1:4"], "twice"),
        ("a shared address", ["--node-id=1",
                              "--cluster=1=127.0.0.1:1/127.0.0.1:2,"
                              "2=127.0.0.1:1/127.0.0.1:4"], "share"),
        ("an entry without a client address", ["--node-id=1",
                                               "--cluster=1=127.0.0.1:1"],
         "RAFTADDR/CLIENTADDR"),
        ("both --cluster and --join", ["--node-id=1",
                                       "--cluster=1=127.0.0.1:1/127.0.0.1:2",
                                       "--join=127.0.0.1:1/127.0.0.1:2"],
         "one of them"),
        ("a Raft address that is a name", ["--node-id=1",
                                           "--cluster=1=localhost:1/x:2"],
         "IPv4"),
        ("--read=sometimes", ["--node-id=1", "--read=sometimes",
                              "--cluster=1=127.0.0.1:1/127.0.0.1:2"],
         "--read must be"),
    )
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    cases += (("a Raft port in use", ["--node-id=1",
                                     "--cluster=1=127.0.0.1:%d/127.0.0.1:2" %
                                     busy.getsockname()[1]],
               "Address already in use"),)
    for name, args, why in cases:
        p = subprocess.run([DSD, "--mode=kvdb-replicated",
                            "--data-dir=" + d] + args,
                           stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=10)
        err = p.stderr.decode(errors="replace")
        check("start-up refuses %s, saying why" % name,
              p.returncode != 0 and why in err, err[-300:])
    busy.close()
    check("... and leaves no Raft state behind", not os.path.exists(
        os.path.join(d, "raft", "metadata1")))
    shutil.rmtree(top, ignore_errors=True)


def main():
    for t in (test_startup_refusals, test_single_node, test_basics, test_kill_leader,
              test_pause_and_minority, test_stop_while_truncating,
              test_restart_recovery,
              test_snapshot_install, test_membership, test_serializable):
        try:
            t()
        except Exception as e:  # a crash of the test is a failure, named
            check("%s ran to the end" % t.__name__, False, repr(e))
    finish()


if __name__ == "__main__":
    main()
