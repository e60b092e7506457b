#!/usr/bin/python3
"""Online backup and offline restore: dsd-cli snapshot save, verify and
restore against real servers (dsd.kvdb.v1.Maintenance/Snapshot).

kvdb: keys written and their acknowledged values recorded; a write load
(sets, testAndSets and deletes of other keys and of some of the same) runs
while dsd-cli saves, and no call of it fails (the worst latency of a call
during the save is printed); the file verifies; a copy with a byte flipped
and a truncated one fail verify and restore; the restored directory serves
every key acknowledged before the save began, as it was, and of the keys
the load wrote only values that were acknowledged; restore into a
non-empty directory is refused.  A stream held open by a client that does
not read (a raw HTTP/2 connection whose window stays shut): a second save
meanwhile is refused RESOURCE_EXHAUSTED and leaves no file; the client
gone, the server has no child left and nothing new in its data directory,
and saves work again; a snapshot child killed mid-stream ends the stream
with INTERNAL, never OK.  kvdb-replicated: saved from a follower,
restored, a single kvdb serves the data.  Prints "ok - ..." lines and
"N passed, M failed".

usage: test_backup.py [path/to/dsd [path/to/dsd-cli]]
"""
import glob
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time

import grpc

from kvclient import (Client, KvdbServer, Reply, check, f_bytes, f_int,
                      finish, SUCCESS)

HERE = os.path.dirname(os.path.abspath(__file__))
DSD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                      os.path.join(HERE, "..", "..", "src", "dsd"))
CLI = os.path.abspath(sys.argv[2] if len(sys.argv) > 2 else
                      os.path.join(HERE, "..", "..", "tools", "dsd-cli"))
# The raw HTTP/2 client of the transport's tests, and the cluster of the
# replicated ones (both read their own argv[1], the same dsd).
sys.path.insert(0, os.path.join(HERE, "..", "grpc"))
from test_grpc import (Raw, WINDOW_UPDATE, field, frame,  # noqa: E402
                       grpc_msg)
from test_replicated import Cluster  # noqa: E402

SNAPSHOT = "/dsd.kvdb.v1.Maintenance/Snapshot"
KEYS = 60000            # written before the load, untouched by it
HOT = 2000              # written before the load, then changed by it
NEW = 10 ** 6           # the load's own keys start here
SIZE = 100              # bytes of data per key


def cli(*args, addr=None, timeout=60):
    """Run dsd-cli; (exit status, stdout, stderr)."""
    cmd = [CLI] + (["-a", addr] if addr else []) + list(args)
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=timeout)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def fields(out):
    """dsd-cli's "name: value" lines as a dict."""
    return dict(line.split(": ", 1) for line in out.splitlines()
                if ": " in line)


def value(k, gen=0):
    return (b"%d/%d:" % (k, gen)).ljust(SIZE, b"v")


def many(c, method, bodies):
    """Call method with each (key, body), 500 in flight at a time;
    {key: Reply}."""
    out = {}
    bodies = list(bodies)
    for i in range(0, len(bodies), 500):
        futs = [(k, c.m[method].future(b, timeout=30))
                for k, b in bodies[i:i + 500]]
        for k, f in futs:
            out[k] = Reply(f.result())
    return out


def fill(c, keys):
    """Set the keys (absent); {key: the acknowledged (1, 1, data)}."""
    r = many(c, "Set", ((k, f_bytes(1, k.to_bytes(4, "big")) + f_int(2, 1) +
                         f_bytes(3, value(k))) for k in keys))
    return {k: (1, 1, value(k)) for k, v in r.items()
            if v.status == SUCCESS}


def get_many(c, keys):
    """{key: (version, ts, data) or None}."""
    r = many(c, "Get", ((k, f_bytes(1, k.to_bytes(4, "big")))
                        for k in keys))
    return {k: v.value for k, v in r.items()}


def children(pid):
    """The processes whose parent is pid (zombies too)."""
    out = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat) as f:
                s = f.read()
        except OSError:
            continue
        if int(s[s.rindex(")") + 2:].split()[1]) == pid:
            out.append(int(stat.split("/")[2]))
    return out


def wait_until(cond, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


class Load:
    """A write load on one connection of its own: testAndSets and deletes
    (then sets again) of the HOT keys, sets and deletes of its own keys.
    Every write's send and acknowledgement times and the state it left
    are kept per key, in order, so that what a snapshot holds can be
    judged; a call that fails is counted."""

    def __init__(self, addr, hot):
        self.c = Client(addr)
        self.state = dict(hot)          # key -> (version, ts, data) or None
        # key -> [(sent, acked, state)], the first the state before any.
        self.hist = {k: [(0.0, 0.0, v)] for k, v in hot.items()}
        self.calls = []                 # (sent, acked)
        self.errors = []
        self.stopping = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)

    def write(self, k, op):
        cur = self.state.get(k)
        gen = len(self.hist.setdefault(k, [(0.0, 0.0, None)]))
        data = value(k, gen)
        t0 = time.monotonic()
        try:
            if op == "tas" and cur is not None:
                r = self.c.tas(k, gen, data, cur[0])
                new = (cur[0] + 1, gen, data)
            elif op == "del" and cur is not None:
                r = self.c.delete(k)
                new = None
            elif cur is None:
                r = self.c.set(k, gen, data)
                new = (1, gen, data)
            else:
                return
        except grpc.RpcError as e:
            self.errors.append("%s %s" % (e.code(), e.details()))
            return
        t1 = time.monotonic()
        self.calls.append((t0, t1))
        if r.status != SUCCESS:
            self.errors.append("key %d: status %d" % (k, r.status))
            return
        self.state[k] = new
        self.hist[k].append((t0, t1, new))

    def run(self):
        i = 0
        hot = sorted(self.hist)
        while not self.stopping.is_set():
            self.write(hot[i % len(hot)], "del" if i % 7 == 3 else "tas")
            self.write(NEW + i % 3000, "del" if i % 5 == 4 else "tas")
            i += 1

    def start(self):
        self.t.start()

    def stop(self):
        self.stopping.set()
        self.t.join(30)
        self.c.close()

    def allowed(self, k, start, end):
        """The states key k may have in a snapshot taken between start and
        end: the last acknowledged before start, or any written later and
        sent before end (acknowledged: the load stops after the save)."""
        h = self.hist[k]
        first = max(i for i, (_, acked, _) in enumerate(h) if acked < start)
        return [st for sent, _, st in h[first:] if sent < end]

    def worst_ms(self, start, end):
        during = [t1 - t0 for t0, t1 in self.calls if t1 >= start and
                  t0 <= end]
        return (max(during) * 1000 if during else None), len(during)


def test_save_under_load(srv, top):
    c = Client(srv.addr)
    t0 = time.monotonic()
    base = fill(c, range(KEYS))
    hot = fill(c, range(KEYS, KEYS + HOT))
    print("# filled %d keys of %d bytes in %.1f s" %
          (KEYS + HOT, SIZE, time.monotonic() - t0), flush=True)
    load = Load(srv.addr, hot)
    load.start()
    time.sleep(0.5)
    path = os.path.join(top, "backup.snap")
    start = time.monotonic()
    rc, out, err = cli("snapshot", "save", path, addr=srv.addr)
    end = time.monotonic()
    time.sleep(0.3)
    load.stop()
    info = fields(out)
    check("snapshot save exits 0 and says what it saved", rc == 0 and
          info.get("saved") == path and int(info.get("keys", 0)) >=
          KEYS + HOT and int(info.get("bytes", 0)) ==
          os.path.getsize(path), (rc, out, err))
    worst, n = load.worst_ms(start, end)
    check("the load was served throughout the save, no call failed "
          "(%d calls during the %.0f ms save, the worst %.1f ms)" %
          (n, (end - start) * 1000, worst or 0),
          not load.errors and n > 0, load.errors[:3])
    check("nothing of the save is left beside the file",
          sorted(os.listdir(top)) == ["backup.snap"], os.listdir(top))

    rc, out, err = cli("snapshot", "verify", path)
    v = fields(out)
    check("snapshot verify passes, and agrees with save",
          rc == 0 and v.get("keys") == info.get("keys") and
          v.get("taken") == info.get("taken"), (rc, out, err))

    rc, out, err = cli("-o", "json", "snapshot", "verify", path)
    try:
        j = json.loads(out)
    except ValueError:
        j = {}
    check("-o json: verify is one object that says the same",
          rc == 0 and len(out.splitlines()) == 1 and
          j.get("op") == "snapshot" and j.get("action") == "verify" and
          j.get("status") == "OK" and str(j.get("keys")) == v.get("keys")
          and j.get("taken") == v.get("taken"), (rc, out, err))

    with open(path, "rb") as f:
        good = f.read()
    flipped = os.path.join(top, "flipped.snap")
    with open(flipped, "wb") as f:
        f.write(good[:len(good) // 2] + bytes([good[len(good) // 2] ^ 1]) +
                good[len(good) // 2 + 1:])
    truncated = os.path.join(top, "truncated.snap")
    with open(truncated, "wb") as f:
        f.write(good[:-10])
    for name, bad, why in (("a byte flipped", flipped, "checksum"),
                           ("truncated", truncated, "header says")):
        rc, out, err = cli("snapshot", "verify", bad)
        check("verify of a copy %s fails, saying why" % name,
              rc == 1 and why in err, (rc, out, err))
        rc, out, err = cli("-o", "json", "snapshot", "verify", bad)
        check("... with -o json, status ERROR and the reason",
              rc == 1 and '"status":"ERROR"' in out and why in out,
              (rc, out, err))
        rdir = os.path.join(top, "from-" + os.path.basename(bad))
        rc, out, err = cli("snapshot", "restore", bad, rdir)
        check("restore of a copy %s fails and makes no directory" % name,
              rc == 1 and why in err and not os.path.exists(rdir),
              (rc, out, err))

    rdir = os.path.join(top, "restored")
    rc, out, err = cli("snapshot", "restore", path, rdir)
    check("snapshot restore into a new directory", rc == 0 and
          fields(out).get("keys") == info.get("keys"), (rc, out, err))
    rc, out, err = cli("snapshot", "restore", path, rdir)
    check("restore into a directory that is not empty is refused",
          rc == 1 and "not empty" in err and
          os.listdir(rdir) == ["snapshot"], (rc, out, err))

    srv2 = KvdbServer(DSD, rdir)
    check("a second server starts on the restored directory", srv2.start(),
          srv2.logtext()[-500:])
    c2 = Client(srv2.addr)
    got = get_many(c2, range(KEYS))
    wrong = [k for k in range(KEYS) if got[k] != base[k]]
    check("every key acknowledged before the save began is there, with "
          "its version and data (%d keys)" % KEYS, not wrong,
          [(k, got[k], base[k]) for k in wrong[:3]])
    touched = sorted(load.hist)
    got = get_many(c2, touched)
    bad = [k for k in touched if got[k] not in load.allowed(k, start, end)]
    check("of the %d keys the load wrote, each holds a value that was "
          "acknowledged, none older than the save" % len(touched),
          not bad, [(k, got[k], load.allowed(k, start, end)) for k in
                    bad[:3]])
    c2.close()
    srv2.stop()
    srv2.cleanup()
    c.close()


def open_stream(srv):
    """A Snapshot call from a client that reads nothing: its window
    (64 KiB) shuts after the first bytes, the server queues a little,
    the pipe fills and the child waits."""
    r = Raw(srv.port)
    r.request(1, SNAPSHOT, grpc_msg(b""))
    return r


def drain(r, sid=1, timeout=20):
    """Open the windows (to their largest) and read the response to its
    end."""
    more = struct.pack(">I", (1 << 31) - 1 - 65535)
    r.send(frame(WINDOW_UPDATE, 0, 0, more) +
           frame(WINDOW_UPDATE, 0, sid, more))
    return r.response(sid, timeout=timeout)


def trailer(resp, name):
    for block in reversed(resp["headers"]):
        v = field(block, name)
        if v is not None:
            return v.decode() if isinstance(v, bytes) else v
    return None


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def test_held_stream(srv, top, size):
    pid = srv.proc.pid
    files = set(os.listdir(srv.dir))
    before = rss_kib(pid)
    r = open_stream(srv)
    time.sleep(0.5)
    grew = rss_kib(pid) - before
    check("a save held open by a client that does not read: its child "
          "waits, the server holds little of the %d KiB (%d KiB more)" %
          (size // 1024, grew), len(children(pid)) == 1 and
          grew < size // 1024 // 2, (children(pid), grew))
    other = os.path.join(top, "other")
    os.mkdir(other)
    rc, out, err = cli("snapshot", "save", os.path.join(other, "x.snap"),
                       addr=srv.addr)
    check("a second save meanwhile is refused RESOURCE_EXHAUSTED, leaving "
          "no file", rc == 3 and "RESOURCE_EXHAUSTED" in err and
          os.listdir(other) == [], (rc, err, os.listdir(other)))
    child = children(pid)
    r.close()
    check("the client gone, its child is killed and reaped",
          wait_until(lambda: children(pid) == []), children(pid))
    check("... and nothing is left in the data directory",
          set(os.listdir(srv.dir)) == files and
          not [f for f in os.listdir(srv.dir) if "tmp" in f],
          (files, os.listdir(srv.dir)))
    check("... and the child was the one killed", child and
          not os.path.exists("/proc/%d" % child[0]), child)
    again = os.path.join(other, "again.snap")
    rc, out, err = cli("snapshot", "save", again, addr=srv.addr)
    check("saves work again afterwards", rc == 0 and
          cli("snapshot", "verify", again)[0] == 0, (rc, out, err))

    # A child that dies mid-stream (killed here, as the OOM killer
    # would): the stream must end with an error, not a short OK.
    r = open_stream(srv)
    wait_until(lambda: len(children(pid)) == 1)
    child = children(pid)
    if child:
        os.kill(child[0], signal.SIGKILL)
    resp = drain(r)
    r.close()
    status = trailer(resp, "grpc-status")
    msg = trailer(resp, "grpc-message") or ""
    check("a snapshot child killed mid-stream ends it INTERNAL, never OK "
          "(%d bytes sent)" % len(resp["data"]),
          child and status == "13" and "signal 9" in msg and
          len(resp["data"]) < os.path.getsize(again), (status, msg))
    check("... and it is reaped, and the next save works",
          wait_until(lambda: children(pid) == []) and
          cli("snapshot", "save", again, addr=srv.addr)[0] == 0,
          children(pid))

    # SIGTERM with a save held open: the stream is cut after the grace
    # period, the child goes, the server exits 0.
    r = open_stream(srv)
    wait_until(lambda: len(children(pid)) == 1)
    child = children(pid)
    t0 = time.monotonic()
    rc = srv.stop()
    r.close()
    check("SIGTERM during a save: exit 0 after the grace period, the "
          "child gone", rc == 0 and time.monotonic() - t0 < 10 and child
          and not os.path.exists("/proc/%d" % child[0]), (rc, child))


def test_replicated(top):
    c = Cluster(3)
    leader = c.start()
    check("a three-node cluster elects a leader", leader, c.logs())
    if not leader:
        c.cleanup()
        return
    cl = leader.cl()
    acked = fill(cl, range(3000))
    cl.close()
    c.converged()
    f = c.follower(leader)
    path = os.path.join(top, "replicated.snap")
    rc, out, err = cli("snapshot", "save", path, addr=f.client)
    check("snapshot save from a follower", rc == 0 and
          int(fields(out).get("keys", 0)) == 3000, (rc, out, err))
    rdir = os.path.join(top, "replicated-restored")
    rc, out, err = cli("snapshot", "restore", path, rdir)
    check("... restores", rc == 0, (rc, out, err))
    c.cleanup()
    srv = KvdbServer(DSD, rdir)
    check("a single kvdb starts on it", srv.start(), srv.logtext()[-500:])
    c2 = Client(srv.addr)
    got = get_many(c2, range(3000))
    wrong = [k for k in range(3000) if got[k] != acked[k]]
    check("... and serves every key the cluster acknowledged", not wrong,
          wrong[:3])
    c2.close()
    srv.stop()
    srv.cleanup()


def run(name, fn, *args):
    """One part; a crash of the test is a failure, named."""
    t0 = time.monotonic()
    try:
        fn(*args)
    except Exception as e:
        check("%s ran to the end" % name, False, repr(e))
    print("# %s: %.1f s" % (name, time.monotonic() - t0), flush=True)


def main():
    top = tempfile.mkdtemp(prefix="dsd-backup-test.")
    dirs = [os.path.join(top, d) for d in ("a", "b", "c")]
    for d in dirs:
        os.mkdir(d)
    srv = KvdbServer(DSD, args=["--shutdown-grace=500"])
    check("kvdb starts", srv.start(), srv.logtext()[-500:])
    if srv.proc.poll() is None:
        run("save under load, verify, restore", test_save_under_load, srv,
            dirs[0])
        run("a stream held open", test_held_stream, srv, dirs[1],
            os.path.getsize(os.path.join(dirs[0], "backup.snap")))
    srv.stop()
    srv.cleanup()
    run("kvdb-replicated", test_replicated, dirs[2])
    shutil.rmtree(top, ignore_errors=True)
    finish()


if __name__ == "__main__":
    main()
