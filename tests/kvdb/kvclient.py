"""What the kvdb tests share: a kvdb client over Debian's python3-grpcio
with the messages of src/kv/kvdb.proto and src/kv/admin.proto encoded by
hand (they are a few fields wide), the check() that prints "ok - ..." lines,
a server on a free port, and the semantics battery every key-value mode must
pass.
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import grpc

results = []

SUCCESS, ERROR, ERROR_NE, ERROR_WV = 0, 1, 2, 3


def check(name, cond, detail=""):
    results.append(bool(cond))
    print(("ok - " if cond else "not ok - ") + name +
          ("" if cond or not detail else " (" + str(detail)[:400] + ")"),
          flush=True)


def finish():
    """The end of a test script: whether every Server below exited well
    (if it started any), "N passed, M failed", and the exit status."""
    if Server.started:
        check("every server exited 0 on SIGTERM, no sanitizer report",
              not bad_exits, bad_exits[:1])
    passed = sum(results)
    print("%d passed, %d failed" % (passed, len(results) - passed))
    sys.exit(0 if passed == len(results) else 1)


# -- protobuf by hand: the messages are five fields wide -------------------

def varint(n):
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def f_bytes(field, b):
    return varint(field << 3 | 2) + varint(len(b)) + b


def f_int(field, n):
    return varint(field << 3) + varint(n)


def read_varint(buf, i):
    shift = n = 0
    while True:
        b = buf[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i


def parse(buf):
    """Decode a message into {field: value}; varints as signed 64-bit,
    fixed-width fields as unsigned, length-delimited ones as bytes; a field
    seen more than once (repeated) becomes a list of its values."""
    out, i = {}, 0
    while i < len(buf):
        key, i = read_varint(buf, i)
        field, wt = key >> 3, key & 7
        if wt == 0:
            v, i = read_varint(buf, i)
            if v >= 1 << 63:
                v -= 1 << 64
        elif wt == 2:
            ln, i = read_varint(buf, i)
            v = bytes(buf[i:i + ln])
            i += ln
        elif wt in (1, 5):
            n = 8 if wt == 1 else 4
            v = int.from_bytes(buf[i:i + n], "little")
            i += n
        else:
            raise ValueError("unexpected wire type %d" % wt)
        if field in out:
            if not isinstance(out[field], list):
                out[field] = [out[field]]
            out[field].append(v)
        else:
            out[field] = v
    return out


def key_bytes(n):
    """Java BigInteger.toByteArray(): minimal two's complement."""
    length = 1
    while True:
        try:
            return n.to_bytes(length, "big", signed=True)
        except OverflowError:
            length += 1


class Reply:
    def __init__(self, raw):
        m = parse(raw)
        self.status = m.get(1, 0)
        self.value = None
        if 2 in m:
            v = parse(m[2])
            self.value = (v.get(1, 0), v.get(2, 0), v.get(3, b""))

    def __repr__(self):
        return "Reply(%d, %r)" % (self.status, self.value)


class Client:
    """A kvdb client.  With session=True every call carries dsd-client-id
    and dsd-seq (a new seq per call unless seq= is given)."""

    def __init__(self, addr, session=False, client_id=None, timeout=10,
                 creds=None, options=None):
        self.addr = addr
        if creds is not None:
            self.ch = grpc.secure_channel(addr, creds, options=options)
        else:
            self.ch = grpc.insecure_channel(addr, options=options)
        grpc.channel_ready_future(self.ch).result(timeout=timeout)
        self.m = {n: self.ch.unary_unary("/dsd.kvdb.v1.KV/" + n,
                                         request_serializer=None,
                                         response_deserializer=None)
                  for n in ("Set", "Get", "Del", "DelVersion",
                            "TestAndSet")}
        self.a = {n: self.ch.unary_unary("/dsd.kvdb.v1.Admin/" + n,
                                         request_serializer=None,
                                         response_deserializer=None)
                  for n in ("Status", "MemberList", "MemberAdd",
                            "MemberRemove")}
        self.session = session
        self.client_id = client_id or (int.from_bytes(
            os.urandom(8), "big") >> 1) or 1
        self.seq = 0
        self.next_seq = None

    def raw(self, method, body, timeout=10):
        md = None
        if self.session:
            if self.next_seq is not None:
                seq, self.next_seq = self.next_seq, None
            else:
                self.seq += 1
                seq = self.seq
            md = (("dsd-client-id", str(self.client_id)),
                  ("dsd-seq", str(seq)))
        return self.m[method](body, timeout=timeout, metadata=md)

    # -- the admin service (kvdb-replicated) --------------------------------

    def status(self, digest=False, timeout=10):
        m = parse(self.a["Status"](f_int(1, 1) if digest else b"",
                                   timeout=timeout))
        names = {1: "id", 2: "state", 3: "leader_id", 4: "term",
                 5: "commit_index", 6: "applied_index", 7: "last_index",
                 8: "keys", 9: "sessions", 10: "has_digest", 11: "digest",
                 12: "raft_address", 13: "client_address"}
        out = {n: 0 for n in names.values()}
        for f, v in m.items():
            if f in names:
                out[names[f]] = v.decode() if isinstance(v, bytes) else v
        out["digest"] &= (1 << 64) - 1
        return out

    def members(self, method="MemberList", body=b"", timeout=10):
        """[(id, raft_address, client_address, role)], leader_id"""
        m = parse(self.a[method](body, timeout=timeout))
        ms = m.get(1, [])
        out = []
        for raw in ms if isinstance(ms, list) else [ms]:
            mm = parse(raw)
            out.append((mm.get(1, 0), mm.get(2, b"").decode(),
                        mm.get(3, b"").decode(), mm.get(4, 0)))
        return sorted(out), m.get(2, 0)

    def member_add(self, node_id, raft, client, timeout=30):
        return self.members("MemberAdd", f_int(1, node_id) +
                            f_bytes(2, raft.encode()) +
                            f_bytes(3, client.encode()), timeout)

    def member_remove(self, node_id, timeout=30):
        return self.members("MemberRemove", f_int(1, node_id), timeout=timeout)

    def set(self, k, ts, data):
        kb = k if isinstance(k, bytes) else key_bytes(k)
        return Reply(self.raw("Set", f_bytes(1, kb) + f_int(2, ts) +
                              f_bytes(3, data)))

    def get(self, k):
        kb = k if isinstance(k, bytes) else key_bytes(k)
        return Reply(self.raw("Get", f_bytes(1, kb)))

    def delete(self, k):
        kb = k if isinstance(k, bytes) else key_bytes(k)
        return Reply(self.raw("Del", f_bytes(1, kb)))

    def delv(self, k, ver):
        kb = k if isinstance(k, bytes) else key_bytes(k)
        return Reply(self.raw("DelVersion", f_bytes(1, kb) + f_int(2, ver)))

    def tas(self, k, ts, data, ver):
        kb = k if isinstance(k, bytes) else key_bytes(k)
        return Reply(self.raw("TestAndSet", f_bytes(1, kb) + f_int(2, ts) +
                              f_bytes(3, data) + f_int(4, ver)))

    def close(self):
        self.ch.close()


class ServerFiles:
    """What the test servers share: a data directory (self.dir) and a log
    file (self.logpath) to read and, at the end, remove."""

    def logtext(self):
        with open(self.logpath, "rb") as f:
            return f.read().decode(errors="replace")

    def cleanup(self):
        # The log first: its path may go through the directory
        # (DIR/../DIR.log), which cannot be followed once DIR is gone.
        try:
            os.unlink(self.logpath)
        except OSError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# Servers stopped with SIGTERM that exited other than 0, or whose log has a
# sanitizer report (with src/dsd-san): finish() checks it once at the end.
bad_exits = []


class Server(ServerFiles):
    """dsd in a key-value mode on a free loopback port (or port), with a
    data directory of its own (or datadir) and its log beside it, as
    DIR.log.  It starts at once unless launch is false; start() starts it
    (again) and waits for its port."""
    started = 0

    def __init__(self, dsd, args=(), mode="kvdb", port=None, datadir=None,
                 launch=True):
        self.dsd = dsd
        self.args = list(args)
        self.mode = mode
        self.fixed_port = port
        self.dir = datadir or tempfile.mkdtemp(prefix="dsd-%s-data." % mode)
        self.logpath = os.path.normpath(self.dir) + ".log"
        self.proc = None
        self.log = None
        if launch:
            self.launch()

    def launch(self):
        Server.started += 1
        self.port = self.fixed_port or free_port()
        self.addr = "127.0.0.1:%d" % self.port
        self.log = open(self.logpath, "ab")
        self.proc = subprocess.Popen(
            [self.dsd, "--mode=" + self.mode, "--listen", self.addr,
             "--data-dir", self.dir] + self.args, stdin=subprocess.DEVNULL,
            stdout=self.log, stderr=self.log)

    def start(self):
        self.launch()
        return self.wait_port()

    def wait_port(self):
        deadline = time.time() + 10
        while time.time() < deadline and self.proc.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", self.port),
                                         0.2).close()
                return True
            except OSError:
                time.sleep(0.05)
        return False

    def wait_log(self, pattern, timeout=5):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if re.search(pattern, self.logtext()):
                return True
            time.sleep(0.05)
        return False

    def stop(self, sig=signal.SIGTERM):
        """Stop it with sig; its exit status (None if never started).  A
        server that was running and did not exit 0 on SIGTERM, or that
        logged a sanitizer report, is remembered for finish()."""
        if self.proc is None:
            return None
        running = self.proc.poll() is None
        if running:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        if self.log:
            self.log.close()
            self.log = None
        text = self.logtext()
        if ((running and sig == signal.SIGTERM and rc != 0) or
                "Sanitizer" in text or "runtime error" in text):
            bad_exits.append((rc, text[-1500:]))
        return rc


def KvdbServer(dsd, datadir=None, args=()):
    """kvdb, verbose, started by start() (again after a stop, on the same
    data)."""
    return Server(dsd, ["-v"] + list(args), datadir=datadir, launch=False)


def test_semantics(c, k=1000):
    """Every result code of every method, on key k and k + 1."""
    r = c.set(k, 11, b"a")
    check("set on an absent key: SUCCESS, no value",
          r.status == SUCCESS and r.value is None, r)
    r = c.set(k, 12, b"b")
    check("set on a present key: ERROR with the current value, unchanged",
          r.status == ERROR and r.value == (1, 11, b"a"), r)
    r = c.get(k)
    check("get: SUCCESS with (1, ts, data)",
          r.status == SUCCESS and r.value == (1, 11, b"a"), r)
    r = c.get(k + 1)
    check("get of an absent key: ERROR, no value",
          r.status == ERROR and r.value is None, r)
    r = c.tas(k, 13, b"c", 7)
    check("testAndSet with a wrong version: ERROR_WV with the current value",
          r.status == ERROR_WV and r.value == (1, 11, b"a"), r)
    r = c.tas(k + 1, 13, b"c", 1)
    check("testAndSet of an absent key: ERROR_NE, no value",
          r.status == ERROR_NE and r.value is None, r)
    r = c.tas(k, 14, b"d", 1)
    check("testAndSet with the version: SUCCESS with the previous value",
          r.status == SUCCESS and r.value == (1, 11, b"a"), r)
    r = c.get(k)
    check("testAndSet stored (version+1, ts, data)",
          r.value == (2, 14, b"d"), r)
    r = c.delv(k, 1)
    check("delVersion with a wrong version: ERROR_WV with the current value",
          r.status == ERROR_WV and r.value == (2, 14, b"d"), r)
    r = c.delv(k + 1, 1)
    check("delVersion of an absent key: ERROR_NE, no value",
          r.status == ERROR_NE and r.value is None, r)
    r = c.delv(k, 2)
    check("delVersion with the version: SUCCESS with the removed value",
          r.status == SUCCESS and r.value == (2, 14, b"d"), r)
    check("delVersion removed the key", c.get(k).status == ERROR)
    c.set(k, 15, b"")
    r = c.delete(k)
    check("del: SUCCESS with the removed value (empty data kept as empty)",
          r.status == SUCCESS and r.value == (1, 15, b""), r)
    r = c.delete(k)
    check("del of an absent key: ERROR, no value",
          r.status == ERROR and r.value is None, r)
    r = c.set(k, -5, bytes(range(256)) * 100)
    r2 = c.get(k)
    check("negative timestamps and binary data round-trip",
          r2.value == (1, -5, bytes(range(256)) * 100), r2)


