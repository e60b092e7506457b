#!/usr/bin/python3
"""Crash consistency of kvdb beyond kill -9: record, replay, check.

1. Record.  kvdb runs under the recfs shim (recfs.c) with snapshots every
   second, while a load driver makes sets, testAndSets, dels and
   delVersions over gRPC on keys of its own, each thread on its own keys,
   so that every key's history is a known sequence.  The driver appends
   "SEND" before each call and "ACK" after each reply to the shim's trace,
   so the trace orders acknowledgements against the server's calls.

2. Replay.  The trace is run through a model of what a power cut can leave
   on disk, the pessimistic POSIX one: a file's data and size are durable
   as of its last fsync/fdatasync; a directory's entries as of its last
   directory fsync.  What happened since may or may not be there: each
   write whole, not at all, or some of its 512-byte sectors (the file's
   size grown or not), each ftruncate/fallocate size change or not, each
   create/rename/unlink or not (in any combination, applied in order, an
   operation whose source is gone being skipped).  At every point between
   two calls, a bounded set of such states is built: none of the pending
   changes, all of them, only the directory's, only the data's, all but
   each one (up to eight data and eight directory operations), and N
   random mixes (seeded per point: --seed reproduces them for the same
   trace).  Identical states are started once, and checked against every
   point that can leave them.

3. Check.  On each state, a fresh kvdb starts (a copy of the state, a free
   loopback port).  It must start and hold, for every key, the value
   after the last acknowledged operation on it or after the one in flight
   (sent, not answered), with its version, timestamp and data; a key
   never written must be absent.  It may instead refuse to start with an
   error naming the damage (wal.c's choice for a corrupt record followed
   by a valid one, for example); refusals are counted and their kinds
   printed, and --strict counts them as failures: every state here is one
   a plain power cut can leave, so a refusal makes acknowledged writes
   unavailable, if not lost.  Anything else is a failure: wrong or missing
   data, a version gone back, an exit without a recovery error, a hang.

4. The recovery that follows a recovery.  For a sample of states, kvdb is
   started on the state under the shim again: its recovery (cutting a
   torn tail, removing covered segments, recreating a torn segment) and a
   few more acknowledged writes are recorded, it is killed with SIGKILL,
   and that second trace is replayed from the first state the same way.

Ends with "N passed, M failed" (N states checked, M failures) and exits 1
if anything failed.  With --expect-failures it is a negative check: the
exit status is 0 only if at least one failure was found (for a dsd started
with DSD_TEST_SKIP_FSYNC).

usage: crashcheck.py --dsd src/dsd --shim recfs.so [--ops N] [--variants N]
       [--rerecover N] [--seed S] [--keep DIR] [--jobs N]
       crashcheck.py --dsd src/dsd --shim recfs.so --trace FILE  (a stored
       trace, e.g. a regression in tests/crash/regress/)
"""
import argparse
import concurrent.futures
import hashlib
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "kvdb"))
from kvclient import Client, SUCCESS, ERROR, free_port  # noqa: E402

SECTOR = 512


# -- the load driver ----------------------------------------------------------

class Op:
    """One operation on one key, and the key's state after it."""
    __slots__ = ("id", "n", "thread", "key", "kind", "ts", "data", "ver",
                 "after")

    def __init__(self, oid, thread, key, kind, ts, data, ver, after):
        self.id, self.thread, self.key, self.kind = oid, thread, key, kind
        self.ts, self.data, self.ver, self.after = ts, data, ver, after
        self.n = 0      # the driver's order of calls


class Driver:
    """Threads, each on its own keys, one call in flight each.  state maps
    key -> (version, timestamp, data) or None; ops holds every operation
    in the order each thread made them."""

    def __init__(self, addr, trace, keys_per_thread, threads, state, seed,
                 tag):
        self.addr, self.trace, self.tag = addr, trace, tag
        self.keys = {t: [1000 * (t + 1) + k for k in range(keys_per_thread)]
                     for t in range(threads)}
        self.state = dict(state)
        self.ops = {}
        self.lock = threading.Lock()
        self.seed = seed
        self.errors = []
        self.next_id = 0

    def mark(self, fd, line):
        os.write(fd, (line + "\n").encode())

    def thread(self, t, nops, pace):
        rng = random.Random("%s:%s:%d" % (self.seed, self.tag, t))
        fd = os.open(self.trace, os.O_WRONLY | os.O_APPEND)
        c = Client(self.addr)
        try:
            for n in range(nops):
                k = rng.choice(self.keys[t])
                cur = self.state.get(k)
                with self.lock:
                    oid = "%s%d" % (self.tag, self.next_id)
                    self.next_id += 1
                ts = rng.randrange(1, 1 << 40)
                data = ("%s key %d op %s " % (self.tag, k, oid)).encode()
                data += bytes(rng.randrange(256) for _ in range(
                    rng.choice((0, 10, 100, 400, 700, 1500))))
                if cur is None:
                    op = Op(oid, t, k, "set", ts, data, 0, (1, ts, data))
                else:
                    r = rng.random()
                    if r < 0.15:
                        op = Op(oid, t, k, "del", 0, b"", 0, None)
                    elif r < 0.25:
                        op = Op(oid, t, k, "delv", 0, b"", cur[0], None)
                    else:
                        op = Op(oid, t, k, "tas", ts, data, cur[0],
                                (cur[0] + 1, ts, data))
                with self.lock:
                    op.n = len(self.ops)
                    self.ops[oid] = op
                self.mark(fd, "SEND %s %d %d %s" % (oid, op.n, k,
                                                    enc(op.after)))
                if op.kind == "set":
                    rep = c.set(k, ts, data)
                elif op.kind == "tas":
                    rep = c.tas(k, ts, data, op.ver)
                elif op.kind == "del":
                    rep = c.delete(k)
                else:
                    rep = c.delv(k, op.ver)
                if rep.status != SUCCESS:
                    self.errors.append("%s %s on %d: status %d" % (
                        oid, op.kind, k, rep.status))
                    return
                self.mark(fd, "ACK %s" % oid)
                self.state[k] = op.after
                if pace:
                    time.sleep(rng.uniform(0, 2 * pace))
        except Exception as e:  # a killed server, a lost connection
            self.errors.append("%s: %r" % (t, e))
        finally:
            os.close(fd)
            c.close()

    def run(self, threads, nops, pace):
        ts = [threading.Thread(target=self.thread, args=(t, nops, pace))
              for t in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()

    def allkeys(self):
        return sorted(k for ks in self.keys.values() for k in ks)


def enc(v):
    return "-" if v is None else "%d:%d:%s" % (v[0], v[1], v[2].hex())


def dec(s):
    if s == "-":
        return None
    a, b, c = s.split(":")
    return (int(a), int(b), bytes.fromhex(c))


class StoredDriver:
    """The operations a trace's SEND lines describe, for --trace."""

    def __init__(self, events, keys):
        self.ops = {}
        self.keys = keys
        for ev in events:
            if ev[0] == "SEND":
                oid, n, k, after = ev[1].split(" ")
                op = Op(oid, 0, int(k), "?", 0, b"", 0, dec(after))
                op.n = int(n)
                self.ops[oid] = op

    def allkeys(self):
        return self.keys


# -- dsd --------------------------------------------------------------------

def wait_port(proc, port, secs=15):
    deadline = time.time() + secs
    while time.time() < deadline:
        if proc.poll() is not None:
            return False
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return True
        except OSError:
            time.sleep(0.01)
    return False


def start_dsd(args, datadir, logpath, extra_env=None, interval=0):
    port = free_port()
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    if not extra_env or "DSD_TEST_SKIP_FSYNC" not in extra_env:
        env.pop("DSD_TEST_SKIP_FSYNC", None)
    env.update(extra_env or {})
    log = open(logpath, "ab")
    proc = subprocess.Popen(
        [args.dsd, "--mode=kvdb", "--listen", "127.0.0.1:%d" % port,
         "--data-dir", datadir, "--snapshot-interval", str(interval),
         "--shutdown-grace", "0", "-v"],
        stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env)
    log.close()
    up = wait_port(proc, port)
    return proc, port, up


def read_state(addr, keys):
    c = Client(addr)
    try:
        out = {}
        for k in keys:
            r = c.get(k)
            if r.status == SUCCESS:
                out[k] = r.value
            elif r.status == ERROR and r.value is None:
                out[k] = None
            else:
                raise RuntimeError("get %d: %r" % (k, r))
        return out
    finally:
        c.close()


def record(args, datadir, trace, keys, threads, nops, pace, state, tag,
           interval, extra_env, kill):
    """Run kvdb under the shim on datadir with a load; returns the driver
    and the server's log text."""
    logpath = trace + ".log"
    env = {"LD_PRELOAD": args.shim, "RECFS_DIR": datadir,
           "RECFS_TRACE": trace}
    env.update(extra_env)
    with open(trace, "ab") as f:
        f.write(("KEYS %s\n" % ",".join(
            str(1000 * (t + 1) + k) for t in range(threads)
            for k in range(keys))).encode())
    proc, port, up = start_dsd(args, datadir, logpath, env, interval)
    if not up:
        proc.kill()
        proc.wait()
        return None, open(logpath, errors="replace").read()
    addr = "127.0.0.1:%d" % port
    d = Driver(addr, trace, keys, threads, state, args.seed, tag)
    d.run(threads, nops, pace)
    proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
    proc.wait(timeout=60)
    return d, open(logpath, errors="replace").read()


# -- the trace ----------------------------------------------------------------

FIELD = re.compile(r"(\w+)=(\S*)")


def parse_trace(path):
    """[("F", op, fields, data) | ("SEND", id) | ("ACK", id)]"""
    out = []
    with open(path, "rb") as f:
        buf = f.read()
    i = 0
    while i < len(buf):
        j = buf.index(b"\n", i)
        line = buf[i:j].decode()
        i = j + 1
        if line.split(" ", 1)[0] in ("SEND", "ACK", "KEYS"):
            a, b = line.split(" ", 1)
            out.append((a, b))
            continue
        parts = line.split(" ", 3)
        if parts[0] != "F":
            raise ValueError("trace: bad line %r" % line[:80])
        op = parts[2]
        fields = dict(FIELD.findall(parts[3]))
        dlen = int(fields["dlen"])
        data = buf[i:i + dlen]
        i += dlen + 1
        out.append(("F", op, fields, data))
    return out


# -- the file system model ----------------------------------------------------

class Content:
    """A file's bytes (zeros past len(data) up to size) and size."""
    __slots__ = ("data", "size")

    def __init__(self, data=b"", size=0):
        self.data = bytearray(data)
        self.size = size

    def copy(self):
        return Content(self.data, self.size)

    def write(self, off, b, grow=True):
        end = off + len(b)
        if end > len(self.data):
            self.data.extend(bytes(end - len(self.data)))
        self.data[off:end] = b
        if grow and end > self.size:
            self.size = end

    def truncate(self, n):
        self.size = n
        if len(self.data) > n:
            del self.data[n:]

    def apply(self, op):
        if op[0] == "w":
            self.write(op[1], op[2])
        elif op[0] == "t":
            self.truncate(op[1])
        elif op[0] == "f":
            if op[2] + op[1] > self.size:
                self.size = op[1] + op[2]

    def bytes(self):
        d = bytes(self.data[:self.size])
        return d, self.size


class FS:
    """Volatile and durable state of one directory."""

    def __init__(self, initial):
        self.next_ino = 1
        self.files = {}         # ino -> volatile Content
        self.durable = {}       # ino -> durable Content
        self.pending = {}       # ino -> [ops since the last sync]
        self.names = {}         # volatile: name -> ino
        self.dnames = {}        # durable: name -> ino
        self.dops = []          # directory ops since the last dir fsync
        self.real = {}          # real inode number -> ino
        for name, (data, size) in initial.items():
            ino = self.newino(Content(data, size))
            self.names[name] = self.dnames[name] = ino

    def newino(self, content):
        ino = self.next_ino
        self.next_ino += 1
        self.files[ino] = content
        self.durable[ino] = content.copy()
        self.pending[ino] = []
        return ino

    def dataop(self, ino, op):
        self.files[ino].apply(op)
        self.pending[ino].append(op)

    def event(self, op, f, data):
        if int(f["ret"]) < 0:
            return
        path = f["path"]
        rino = int(f["ino"])
        if op == "open":
            flags = int(f["flags"])
            if path in self.names:
                ino = self.names[path]
            elif flags & os.O_CREAT:
                ino = self.newino(Content())
                self.names[path] = ino
                self.dops.append(("create", path, ino))
            else:
                raise ValueError("open of %s, absent from the model" % path)
            self.real[rino] = ino
            if flags & os.O_TRUNC:
                self.dataop(ino, ("t", 0))
        elif op in ("write", "fallocate", "ftruncate"):
            ino = self.real.get(rino)
            if ino is None:
                raise ValueError("%s on %s: unknown inode" % (op, path))
            if op == "write":
                self.dataop(ino, ("w", int(f["off"]), data))
            elif op == "ftruncate":
                self.dataop(ino, ("t", int(f["len"])))
            else:
                if int(f["mode"]) & 1 == 0:     # FALLOC_FL_KEEP_SIZE
                    self.dataop(ino, ("f", int(f["off"]), int(f["len"])))
        elif op in ("fsync", "fdatasync"):
            ino = self.real.get(rino)
            if ino is not None:
                self.durable[ino] = self.files[ino].copy()
                self.pending[ino] = []
        elif op == "dirsync":
            self.dnames = dict(self.names)
            self.dops = []
        elif op == "rename":
            src, dst = path, f["path2"]
            self.names[dst] = self.names.pop(src)
            self.dops.append(("rename", src, dst))
        elif op == "unlink":
            self.names.pop(path, None)
            self.dops.append(("unlink", path))
        elif op == "mkdir":
            pass    # the data directory itself, made before the run
        else:
            raise ValueError("trace: unknown call %s" % op)

    def pending_data(self, limit):
        """Up to limit pending data operations on files with a name."""
        out = []
        named = set(self.names.values()) | set(self.dnames.values())
        for ino in sorted(named):
            out.extend(self.pending[ino])
        return out[-limit:]

    def npending(self):
        return len(self.dops) + sum(
            len(self.pending[ino]) for ino in set(self.names.values()) |
            set(self.dnames.values()))

    def crash_state(self, rng, how):
        """A directory as a power cut could leave it: {name: (data, size)}.
        how: "none", "all", "dir", "data", "random", ("drop", op):
        every pending change but the data operation op, or ("dropdir",
        d): every pending change but the directory operation d."""
        names = dict(self.dnames)
        dropdir = how[1] if isinstance(how, tuple) and \
            how[0] == "dropdir" else None
        for d in self.dops:
            if how in ("none", "data") or (how == "random" and
                                           rng.random() < 0.5) or \
                    d is dropdir:
                continue
            if d[0] == "create":
                names[d[1]] = d[2]
            elif d[0] == "rename":
                if d[1] in names:
                    names[d[2]] = names.pop(d[1])
            elif d[0] == "unlink":
                names.pop(d[1], None)
        out = {}
        cache = {}
        drop = how[1] if isinstance(how, tuple) and how[0] == "drop" \
            else None
        if dropdir is not None:
            how = "all"
        for name, ino in sorted(names.items()):
            if ino not in cache:
                c = self.durable[ino].copy()
                for op in self.pending[ino]:
                    if how in ("none", "dir"):
                        break
                    if drop is not None:
                        if op is not drop:
                            c.apply(op)
                        continue
                    if how in ("all", "data"):
                        c.apply(op)
                        continue
                    r = rng.random()
                    if r < 0.35:
                        continue                # not there
                    if r < 0.7 or op[0] != "w":
                        c.apply(op)             # whole
                        continue
                    # Some of its sectors, the size grown or not.
                    off, b = op[1], op[2]
                    cuts = sorted(set([off, off + len(b)] + list(range(
                        (off // SECTOR + 1) * SECTOR, off + len(b),
                        SECTOR))))
                    last = None
                    for a, z in zip(cuts, cuts[1:]):
                        if rng.random() < 0.5:
                            c.write(a, b[a - off:z - off], grow=False)
                            last = z
                    if rng.random() < 0.5:
                        last = off + len(b)
                    if last is not None and last > c.size:
                        c.size = last
                        if len(c.data) > last:
                            del c.data[last:]
                cache[ino] = c.bytes()
            out[name] = cache[ino]
        return out


def state_hash(st):
    h = hashlib.sha256()
    for name in sorted(st):
        data, size = st[name]
        h.update(name.encode() + b"\0%d\0" % size)
        h.update(hashlib.sha256(data.rstrip(b"\0")).digest())
    return h.hexdigest()


def materialize(st, d):
    os.makedirs(d, exist_ok=True)
    for name, (data, size) in st.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data.rstrip(b"\0"))
            f.truncate(size)


# -- expectations -------------------------------------------------------------

class Expect:
    """What a state cut at one point must hold: per key, the allowed
    values (the one after the last acknowledged op, and the one after the
    op in flight, if any)."""

    def __init__(self, base, driver, sent, acked):
        self.allowed = {}
        per = {}
        # A key's operations come from one thread, one at a time: in
        # the driver's order, they are the key's history.
        for op in sorted((driver.ops[oid] for oid in sent),
                         key=lambda o: o.n):
            per.setdefault(op.key, []).append(op)
        for k in driver.allkeys():
            hist = per.get(k, [])
            acks = [op for op in hist if op.id in acked]
            cur = acks[-1].after if acks else base.get(k)
            allowed = [cur]
            for op in hist:
                if op.id not in acked:
                    allowed.append(op.after)
            self.allowed[k] = allowed

    def check(self, got):
        bad = []
        for k, allowed in self.allowed.items():
            if got.get(k) not in allowed:
                g = got.get(k)
                bad.append("key %d: %s, expected %s" % (
                    k, short(g), " or ".join(short(a) for a in allowed)))
        return bad


def short(v):
    if v is None:
        return "absent"
    return "(v%d ts %d %r...)" % (v[0], v[1], v[2][:24])


# -- the checker --------------------------------------------------------------

class Checker:
    def __init__(self, args, work):
        self.args, self.work = args, work
        self.lock = threading.Lock()
        self.checked = 0
        self.failed = 0
        self.refused = 0
        self.failures = []
        self.refusals = {}
        self.refusal_example = {}
        self.n = 0

    def run_state(self, st, keys):
        """Start kvdb on a copy of st; ("ok", state) or ("refused", msg)
        or ("error", msg)."""
        with self.lock:
            self.n += 1
            n = self.n
        d = os.path.join(self.work, "s%d" % n)
        materialize(st, d)
        logpath = d + ".log"
        proc, port, up = start_dsd(self.args, d, logpath)
        try:
            if not up:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                    return "error", "did not start within 15 s"
                text = open(logpath, errors="replace").read()
                m = re.search(r"recovering [^:]*: (.*)", text)
                if proc.returncode != 0 and m:
                    return "refused", m.group(1).strip()
                return "error", "exit %d without a recovery error: %s" % (
                    proc.returncode, text.strip()[-300:])
            try:
                got = read_state("127.0.0.1:%d" % port, keys)
            except Exception as e:
                return "error", "reading the state: %r" % e
            return "ok", got
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if not self.args.keep:
                shutil.rmtree(d, ignore_errors=True)
                try:
                    os.unlink(logpath)
                except OSError:
                    pass

    def verdict(self, what, outcome, expects):
        kind, val = outcome
        msgs = []
        if kind == "ok":
            for where, ex in expects:
                bad = ex.check(val)
                if bad:
                    msgs.append("%s: %s" % (where, "; ".join(bad[:3])))
                    break
        elif kind == "refused":
            kinds = re.sub(r"offset \d+|/\S+/|\d+", "#", val)
            with self.lock:
                self.refusals[kinds] = self.refusals.get(kinds, 0) + 1
                if kinds not in self.refusal_example:
                    self.refusal_example[kinds] = "%s: %s: %s" % (
                        what, expects[0][0], val)
            if self.args.strict:
                msgs.append("%s: refused to start: %s" % (expects[0][0],
                                                          val))
        else:
            msgs.append("%s: %s" % (expects[0][0], val))
        with self.lock:
            self.checked += 1
            if kind == "refused":
                self.refused += 1
            if msgs:
                self.failed += 1
                self.failures.append("%s: %s" % (what, msgs[0]))
                print("FAIL %s: %s" % (what, msgs[0]), flush=True)
        return not msgs

    def replay(self, what, fs, events, driver, base, variants, seed,
               on_state=None):
        """Every point of events, variants states each; returns the list
        of unique (state, [(where, Expect)])."""
        states = {}
        order = []
        sent, acked = set(), set()
        npoints = 0

        def point(i, desc):
            nonlocal npoints
            npoints += 1
            rng = random.Random("%s:%s:%d" % (seed, what, i))
            hows = ["none", "all"]
            if fs.npending():
                hows += ["dir", "data"] + [("drop", op) for op in
                                           fs.pending_data(8)]
                hows += [("dropdir", d) for d in fs.dops[-8:]]
                hows += ["random"] * variants
            ex = None
            for how in hows:
                st = fs.crash_state(rng, how)
                h = state_hash(st)
                if ex is None:
                    ex = Expect(base, driver, set(sent), set(acked))
                where = "point %d (after %s), %s" % (
                    i, desc, how if isinstance(how, str) else
                    "all but %s %s" % (how[1][0], how[1][1]))
                if h not in states:
                    states[h] = (st, [])
                    order.append(h)
                states[h][1].append((where, ex))
                if not fs.npending():
                    break

        point(0, "start")
        for i, ev in enumerate(events, 1):
            if ev[0] == "SEND":
                sent.add(ev[1].split(" ", 1)[0])
                continue
            if ev[0] == "KEYS":
                continue
            if ev[0] == "ACK":
                acked.add(ev[1])
                continue
            _, op, f, data = ev
            fs.event(op, f, data)
            point(i, "%s %s%s" % (op, f["path"],
                                  " " + f["path2"] if f.get("path2", "-")
                                  != "-" else ""))
        return npoints, [(h, states[h][0], states[h][1]) for h in order]

    def check_all(self, what, uniq, keys):
        def one(item):
            h, st, expects = item
            out = self.run_state(st, keys)
            ok = self.verdict(what, out, expects)
            return item, out, ok
        with concurrent.futures.ThreadPoolExecutor(self.args.jobs) as ex:
            return list(ex.map(one, uniq))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dsd", required=True)
    ap.add_argument("--shim", required=True)
    ap.add_argument("--ops", type=int, default=40,
                    help="operations per driver thread")
    ap.add_argument("--threads", type=int, default=3)
    ap.add_argument("--keys", type=int, default=4, help="keys per thread")
    ap.add_argument("--pace", type=float, default=0.03,
                    help="mean seconds between a thread's calls")
    ap.add_argument("--variants", type=int, default=2,
                    help="random states per point, beyond the fixed four")
    ap.add_argument("--rerecover", type=int, default=3,
                    help="states whose recovery is itself recorded, "
                    "crashed and replayed")
    ap.add_argument("--seed", default=None)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--keep", default=None,
                    help="keep the work directory here")
    ap.add_argument("--expect-failures", action="store_true")
    ap.add_argument("--expect-refusal", default=None, metavar="REGEX",
                    help="negative check: pass only if some state was "
                    "refused with an error matching REGEX")
    ap.add_argument("--strict", action="store_true",
                    help="count a refusal to start (with a clear error) "
                    "as a failure too")
    ap.add_argument("--trace", default=None,
                    help="check a stored trace (a regression) instead of "
                    "recording one")
    args = ap.parse_args()
    args.dsd = os.path.abspath(args.dsd)
    args.shim = os.path.abspath(args.shim)
    if args.seed is None:
        args.seed = str(random.randrange(1 << 30))
    print("seed %s (rerun with --seed %s)" % (args.seed, args.seed),
          flush=True)
    skip = os.environ.get("DSD_TEST_SKIP_FSYNC")
    extra = {"DSD_TEST_SKIP_FSYNC": skip} if skip else {}
    if skip:
        print("dsd runs with DSD_TEST_SKIP_FSYNC=%s" % skip, flush=True)

    if args.keep:
        work = os.path.abspath(args.keep)
        os.makedirs(work, exist_ok=True)
    else:
        work = tempfile.mkdtemp(prefix="dsd-crash.")
    t0 = time.time()
    ck = Checker(args, work)
    try:
        if args.trace:
            events = parse_trace(args.trace)
            keys = [int(k) for e in events if e[0] == "KEYS"
                    for k in e[1].split(",")]
            drv = StoredDriver(events, keys)
            npoints, uniq = ck.replay(os.path.basename(args.trace), FS({}),
                                      events, drv, {}, args.variants,
                                      args.seed)
            ck.check_all(os.path.basename(args.trace), uniq, keys)
            print("%s: %d points, %d states checked, %d failed, %d refused "
                  "to start" % (args.trace, npoints, ck.checked, ck.failed,
                                ck.refused))
            print("%d passed, %d failed" % (ck.checked - ck.failed,
                                            ck.failed))
            return 1 if ck.failed else 0
        # 1. The recorded run.
        data = os.path.join(work, "rec")
        os.makedirs(data)
        trace = os.path.join(work, "trace1")
        drv, log = record(args, data, trace, args.keys, args.threads,
                          args.ops, args.pace, {}, "a", 1, extra, False)
        if drv is None or drv.errors:
            print("the recorded run failed: %s\n%s" % (
                drv.errors if drv else "", log[-2000:]))
            print("0 passed, 1 failed")
            return 1
        events = parse_trace(trace)
        calls = [e for e in events if e[0] == "F"]
        kinds = {}
        for e in calls:
            kinds[e[1]] = kinds.get(e[1], 0) + 1
        print("recorded: %d operations acknowledged, %d calls on the "
              "directory (%s), %d snapshots" % (
                  sum(1 for e in events if e[0] == "ACK"), len(calls),
                  ", ".join("%s %d" % kv for kv in sorted(kinds.items())),
                  sum(1 for e in calls if e[1] == "rename" and
                      e[2].get("path2") == "snapshot" and
                      int(e[2]["ret"]) == 0)), flush=True)
        fs = FS({})
        npoints, uniq = ck.replay("run 1", fs, events, drv, {},
                                  args.variants, args.seed)
        print("run 1: %d points, %d distinct states" % (npoints, len(uniq)),
              flush=True)
        results = ck.check_all("run 1", uniq, drv.allkeys())
        print("run 1: %d states checked, %d failed, %d refused to start, "
              "%.0f s" % (ck.checked, ck.failed, ck.refused,
                          time.time() - t0), flush=True)

        # 2. Recovery of a recovery: states spread over the run,
        # preferring those with something to repair (pending changes
        # at the cut: torn tails, covered segments, leftover tmp files).
        okstates = [(it, out) for it, out, ok in results
                    if ok and out[0] == "ok"]
        rng = random.Random("%s:rerecover" % args.seed)
        # A state built from some pending changes and not others (a torn
        # write, a rename without its unlink...) gives recovery work:
        # those first, then any (as after kill -9).
        mixed = [x for x in okstates
                 if not any(w.endswith((", none", ", all"))
                            for w, _ in x[0][2])]
        picks = rng.sample(mixed, min(args.rerecover, len(mixed)))
        rest = [x for x in okstates if x not in picks]
        picks += rng.sample(rest, min(args.rerecover - len(picks),
                                      len(rest)))
        before = ck.checked
        for n, ((h, st, expects), out) in enumerate(picks):
            what = "rerecover %d" % n
            d2 = os.path.join(work, "rr%d" % n)
            materialize(st, d2)
            recovered = out[1]
            trace2 = os.path.join(work, "trace-rr%d" % n)
            drv2, log2 = record(args, d2, trace2, args.keys, args.threads,
                                max(3, args.ops // 8), args.pace / 2,
                                recovered, "r%d." % n, 1, extra, True)
            if drv2 is None:
                ck.verdict(what, ("error", "second start failed: " +
                                  log2[-300:]), [("start", None)])
                continue
            # The driver's own errors after the kill are expected; its
            # record of sends and acks is what counts.
            ev2 = parse_trace(trace2)
            fs2 = FS(st)
            np2, uniq2 = ck.replay(what, fs2, ev2, drv2, recovered,
                                   args.variants, args.seed)
            c0 = ck.checked
            ck.check_all(what, uniq2, drv2.allkeys())
            repairs = re.findall(
                r"(dropping a (?:torn record|segment torn)|covered by "
                r"the snapshot|removed an unfinished snapshot)", log2)
            print("%s: from %s: recovery %s; %d calls, %d points, %d states "
                  "checked" % (what, expects[0][0],
                               ", ".join(sorted(set(repairs))) or
                               "repaired nothing",
                               sum(1 for e in ev2 if e[0] == "F"), np2,
                               ck.checked - c0), flush=True)
        print("recovery after recovery: %d states checked" % (
            ck.checked - before), flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    secs = time.time() - t0
    for kinds, n in sorted(ck.refusals.items()):
        print("refused to start, %d states: %s\n  e.g. %s" % (
            n, kinds, ck.refusal_example[kinds]))
    print("%d states checked, %d failed, %d refused to start with an "
          "error naming the damage (%s), %.0f s" % (
              ck.checked, ck.failed, ck.refused,
              "counted as failures" if args.strict else
              "allowed; --strict counts them", secs))
    if args.expect_refusal:
        hits = sum(n for k, n in ck.refusals.items()
                   if re.search(args.expect_refusal, k))
        print("negative check: %s" % (
            "%d states refused with /%s/" % (hits, args.expect_refusal)
            if hits else "no state refused with /%s/" % args.expect_refusal))
        print("%d passed, %d failed" % (1 if hits else 0, 0 if hits else 1))
        return 0 if hits else 1
    if args.expect_failures:
        found = ck.failed > 0
        print("negative check: %s" % (
            "the checker caught the skipped fsync (%d failing states)" %
            ck.failed if found else "NOT caught"))
        print("%d passed, %d failed" % (1 if found else 0, 0 if found else 1))
        return 0 if found else 1
    print("%d passed, %d failed" % (ck.checked - ck.failed, ck.failed))
    return 1 if ck.failed else 0


if __name__ == "__main__":
    sys.exit(main())
