#!/usr/bin/python3
"""kvdb over gRPC from a stock client (Debian's python3-grpcio).

Each check starts its own server on a free loopback port with its own data
directory and stops it.  Covered: every result code of every method, key
encoding edge cases, atomicity under concurrent clients, restart recovery
from snapshot plus log, kill -9 during a durable write load (no
acknowledged write lost), a torn log tail dropped and reported, other log
damage refused, and bad input answered with the right status while other
clients keep being served.  Prints "ok - ..." lines and "N passed, M failed".

usage: test_kvdb.py [path/to/dsd]
"""
import concurrent.futures
import glob
import os
import re
import shutil
import signal
import socket
import struct
import sys
import tempfile
import threading
import time

import grpc

from kvclient import (Client, KvdbServer, check, f_bytes, finish, parse,
                      test_semantics, SUCCESS)

DSD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "src", "dsd"))


# -- servers ------------------------------------------------------------------

def Server(datadir=None, args=()):
    return KvdbServer(DSD, datadir, args)


# -- the checks ---------------------------------------------------------------

def test_keys(c):
    c.set(b"\x05", 1, b"five")
    check("00-padded key is the same number",
          c.get(b"\x00\x05").value == (1, 1, b"five") and
          c.get(b"\x00\x00\x00\x05").value is not None)
    c.set(b"", 1, b"zero")
    check("empty key is zero, as is 00",
          c.get(b"\x00").value == (1, 1, b"zero") and
          c.get(b"\x00\x00").value == (1, 1, b"zero"))
    c.set(-1, 1, b"minus one")
    check("negative keys: FF, FF FF are -1; 00 FF is 255",
          c.get(b"\xff").value == (1, 1, b"minus one") and
          c.get(b"\xff\xff").value == (1, 1, b"minus one") and
          c.get(b"\x00\xff").value is None)
    c.set(-128, 1, b"-128")
    check("FF FF 80 equals 80 (-128)",
          c.get(b"\xff\xff\x80").value == (1, 1, b"-128"))
    big = 2 ** 4000 + 12345
    c.set(big, 1, b"big")
    c.set(-big, 1, b"-big")
    check("4001-bit keys, positive and negative, are distinct and found",
          c.get(big).value == (1, 1, b"big") and
          c.get(-big).value == (1, 1, b"-big") and
          c.get(big + 1).value is None)
    try:
        c.get(b"\x01" * 5000)
        check("a key over --max-key-bytes is INVALID_ARGUMENT", False)
    except grpc.RpcError as e:
        check("a key over --max-key-bytes is INVALID_ARGUMENT",
              e.code() == grpc.StatusCode.INVALID_ARGUMENT, e.details())
    c.set(b"\x00" * 4500 + b"\x07", 1, b"seven")
    check("redundant sign bytes do not count against the limit",
          c.get(7).value == (1, 1, b"seven"))


def test_bad_input(srv, c):
    def expect(name, fn, code):
        try:
            fn()
            check(name, False, "no error")
        except grpc.RpcError as e:
            check(name, e.code() == code, "%s %s" % (e.code(), e.details()))

    expect("malformed protobuf: INVALID_ARGUMENT",
           lambda: c.raw("Get", b"\xff\xff\xff"),
           grpc.StatusCode.INVALID_ARGUMENT)
    unknown = c.ch.unary_unary("/dsd.kvdb.v1.KV/Frobnicate",
                               request_serializer=None,
                               response_deserializer=None)
    expect("unknown method: UNIMPLEMENTED", lambda: unknown(b"", timeout=5),
           grpc.StatusCode.UNIMPLEMENTED)
    expect("message over --max-message: RESOURCE_EXHAUSTED",
           lambda: c.raw("Set", f_bytes(1, b"\x01") + f_bytes(3, b"x" *
                                                           (5 << 20))),
           grpc.StatusCode.RESOURCE_EXHAUSTED)
    # Raw abuse on separate sockets while a good client keeps working.
    stop = threading.Event()
    errors = []

    def good_client():
        g = Client(srv.addr)
        i = 0
        while not stop.is_set():
            try:
                g.set(10 ** 6 + i, 1, b"g")
                if g.get(10 ** 6 + i).value is None:
                    errors.append("lost %d" % i)
            except grpc.RpcError as e:
                errors.append(str(e.code()))
            i += 1
        g.close()
        errors.append(("count", i))

    t = threading.Thread(target=good_client)
    t.start()
    abuse = [b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",       # not HTTP/2
             os.urandom(4096),                           # garbage
             b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" +        # preface, then
             b"\x00\x00\x04\x99\x00\x00\x00\x00\x00junk"]  # a broken frame
    closed = 0
    for payload in abuse:
        s = socket.create_connection(("127.0.0.1", srv.port), 5)
        try:
            s.sendall(payload)
            s.settimeout(5)
            while s.recv(65536):
                pass
            closed += 1
        except OSError:
            closed += 1
        finally:
            s.close()
    time.sleep(0.3)
    stop.set()
    t.join()
    count = [e for e in errors if isinstance(e, tuple)]
    real = [e for e in errors if not isinstance(e, tuple)]
    check("broken preface, garbage and bad frames close only their own "
          "connection", closed == len(abuse) and srv.proc.poll() is None)
    check("a good client is served throughout (%s calls)" %
          (count[0][1] if count else 0), not real and count and
          count[0][1] > 0, real[:5])


def test_concurrency(srv):
    """Atomicity: 8 clients race testAndSet increments on one key."""
    c = Client(srv.addr)
    c.set(77, 0, b"0")
    c.close()
    wins = [0] * 8

    def worker(i):
        cl = Client(srv.addr)
        for _ in range(150):
            cur = cl.get(77).value
            r = cl.tas(77, 0, b"%d" % (int(cur[2]) + 1), cur[0])
            if r.status == SUCCESS:
                wins[i] += 1
        cl.close()

    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        list(ex.map(worker, range(8)))
    c = Client(srv.addr)
    v = c.get(77).value
    c.close()
    check("concurrent testAndSet: version = 1 + successes, data = successes "
          "(%d)" % sum(wins), v[0] == 1 + sum(wins) and
          int(v[2]) == sum(wins), (v, sum(wins)))


def test_restart_recovery():
    srv = Server(args=["--snapshot-interval=1"])
    srv.start()
    c = Client(srv.addr)
    for i in range(500):
        c.set(i, i, b"v%d" % i)
    time.sleep(2.5)                     # at least one snapshot
    for i in range(250):
        c.tas(i, i + 1, b"w%d" % i, 1)  # these land in the log after it
    for i in range(400, 500):
        c.delete(i)
    c.close()
    snap_before = os.path.exists(os.path.join(srv.dir, "snapshot"))
    rc = srv.stop(signal.SIGKILL)
    ok = srv.start()
    c = Client(srv.addr)
    bad = []
    for i in range(500):
        v = c.get(i).value
        want = (2, i + 1, b"w%d" % i) if i < 250 else \
            (1, i, b"v%d" % i) if i < 400 else None
        if v != want:
            bad.append((i, v, want))
    c.close()
    check("a snapshot was written during the run", snap_before)
    check("after kill -9, restart recovers snapshot + log exactly",
          ok and rc == -signal.SIGKILL and not bad, bad[:3])
    rc = srv.stop()
    check("SIGTERM: exit 0", rc == 0, rc)
    ok = srv.start()
    c = Client(srv.addr)
    v = c.get(249).value
    c.close()
    check("after a clean stop (final snapshot), restart recovers too",
          ok and v == (2, 250, b"w249"), v)
    srv.stop()
    srv.cleanup()


# A record's length without the sync flag, the top bit of the length word
# in a version-2 segment (kv/wal.c), which is all this server writes.
WAL_LENMASK = 0x7FFFFFFF


def wal_records_bytes(path):
    """The bytes of records in a log segment, read header by header; 0
    if the segment was removed meanwhile."""
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return 0
    with f:
        off = 32
        while True:
            f.seek(off)
            h = f.read(8)
            if len(h) < 8:
                break
            n = struct.unpack("<I", h[:4])[0] & WAL_LENMASK
            if n == 0:
                break
            off += 8 + n
    return off - 32


def test_log_size_snapshots():
    # No timed snapshots: the log's size alone must start them, so that
    # what a restart reads stays bounded however long the server ran.
    srv = Server(args=["--snapshot-interval=0", "--snapshot-log-size=1",
                       "--fsync=everysec"])
    srv.start()
    c = Client(srv.addr)
    data = b"x" * 1024
    for i in range(4000):
        c.set(i, i, data)
    c.close()
    # Each snapshot starts at the limit, max(1 MiB, the last one's
    # size), within one record; and once none is running (each start
    # logged has its end logged), the log is under the limit.
    deadline = time.time() + 20
    while time.time() < deadline:
        text = srv.logtext()
        starts = re.findall(r"snapshot: (\d+) bytes of log since the last "
                            r"one, limit (\d+)", text)
        ends = text.count("keys up to record")
        if len(starts) == ends:
            break
        time.sleep(0.1)
    over = [int(n) - int(lim) for n, lim in starts]
    check("--snapshot-log-size=1: %d snapshots for 4 MiB of writes with "
          "no timer, each started within a record of the limit" %
          len(starts), len(starts) >= 2 and ends == len(starts) and
          all(0 <= o < 1200 for o in over), (over, ends))
    logged = sum(wal_records_bytes(p) for p in
                 glob.glob(os.path.join(srv.dir, "wal-*.log")))
    limit = max(1 << 20, os.path.getsize(os.path.join(srv.dir, "snapshot")))
    check("with no snapshot running, the log (%d bytes) is under the limit "
          "(%d)" % (logged, limit), logged < limit, (logged, limit))
    srv.stop(signal.SIGKILL)
    ok = srv.start()
    c = Client(srv.addr)
    bad = [i for i in range(4000) if c.get(i).value != (1, i, data)]
    c.close()
    check("after kill -9, snapshot + bounded log recover every key",
          ok and not bad, bad[:3])
    srv.stop()
    srv.cleanup()


def test_kill9_under_load():
    srv = Server()
    srv.start()
    acked = {}
    lock = threading.Lock()
    stop = threading.Event()

    def writer(w):
        cl = Client(srv.addr)
        i = 0
        while not stop.is_set():
            k = w * 10 ** 7 + i
            try:
                r = cl.set(k, i, b"x%d" % k)
                if r.status == SUCCESS:
                    with lock:
                        acked[k] = i
            except grpc.RpcError:
                break
            i += 1
        cl.close()

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    time.sleep(2)
    srv.proc.send_signal(signal.SIGKILL)
    srv.proc.wait()
    stop.set()
    for t in threads:
        t.join()
    srv.log.close()
    srv.start()
    c = Client(srv.addr)
    lost = [k for k, i in acked.items() if c.get(k).value != (1, i, b"x%d" % k)]
    c.close()
    check("kill -9 during %d acknowledged durable writes: none lost" %
          len(acked), len(acked) > 100 and not lost, lost[:5])
    srv.stop()
    srv.cleanup()


def wal_data_end(path):
    """Where a log segment's records end: its first zero length (the
    space after is reserved, zeros) or the end of the file."""
    data = open(path, "rb").read()
    off = 32
    while off + 8 <= len(data):
        n = struct.unpack_from("<I", data, off)[0] & WAL_LENMASK
        if n == 0:
            break
        off += 8 + n
    return min(off, len(data))


def test_torn_tail_and_corruption():
    srv = Server()
    srv.start()
    c = Client(srv.addr)
    for i in range(100):
        c.set(i, i, b"d%d" % i)
    c.close()
    srv.stop(signal.SIGKILL)
    logs = sorted(glob.glob(os.path.join(srv.dir, "wal-*.log")))
    last = logs[-1]
    # A torn final record: a length promising more than was written,
    # right after the last record, where the reserved zeros begin.
    with open(last, "r+b") as f:
        f.seek(wal_data_end(last))
        f.write(struct.pack("<II", 64, 0) + b"partial")
    ok = srv.start()
    c = Client(srv.addr) if ok else None
    n = sum(c.get(i).value is not None for i in range(100)) if c else 0
    if c:
        c.close()
    srv.stop()
    check("a torn final log record is dropped and every acknowledged write "
          "kept (%d/100)" % n, ok and n == 100)
    check("the dropped record is reported in the log",
          "torn" in srv.logtext().lower() or "drop" in srv.logtext().lower(),
          srv.logtext()[-300:])
    # Damage in the middle of the log (a flipped byte in an early
    # record, with good records after it) must stop start-up.
    srv2 = Server()
    srv2.start()
    c = Client(srv2.addr)
    for i in range(100):
        c.set(i, i, b"d%d" % i)
    c.close()
    srv2.stop(signal.SIGKILL)
    last = sorted(glob.glob(os.path.join(srv2.dir, "wal-*.log")))[-1]
    data = bytearray(open(last, "rb").read())
    data[32 + 8 + 3] ^= 0xFF            # inside the first record's payload
    open(last, "wb").write(bytes(data))
    ok = srv2.start()
    if ok:
        srv2.stop()
    check("corruption before good records refuses to start, naming the file",
          not ok and srv2.proc.returncode != 0 and
          os.path.basename(last) in srv2.logtext(), srv2.logtext()[-300:])
    srv.cleanup()
    srv2.cleanup()


def test_health(srv):
    ch = grpc.insecure_channel(srv.addr)
    check_m = ch.unary_unary("/grpc.health.v1.Health/Check",
                             request_serializer=None,
                             response_deserializer=None)
    r = parse(check_m(b"", timeout=5))
    ch.close()
    check("grpc.health.v1.Health/Check says SERVING", r.get(1) == 1, r)


def test_sd_notify():
    """Type=notify: READY=1 once it serves, STOPPING=1 on SIGTERM."""
    d = tempfile.mkdtemp(prefix="dsd-notify.")
    path = os.path.join(d, "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(10)
    os.environ["NOTIFY_SOCKET"] = path
    srv = Server()
    try:
        started = srv.start()
    finally:
        del os.environ["NOTIFY_SOCKET"]
    got = []
    try:
        got.append(sock.recv(4096))
        srv.stop()
        got.append(sock.recv(4096))
    except socket.timeout:
        srv.stop()
    sock.close()
    shutil.rmtree(d, ignore_errors=True)
    srv.cleanup()
    check("sd_notify: READY=1 when serving, STOPPING=1 on SIGTERM",
          started and got == [b"READY=1", b"STOPPING=1"], got)


def test_journal_priorities():
    """Under systemd (JOURNAL_STREAM naming its stderr) each line starts
    with its syslog priority; with stderr elsewhere, plain lines."""
    for journal in (True, False):
        srv = Server()
        open(srv.logpath, "ab").close()
        st = os.stat(srv.logpath)
        # A stream that is not its stderr must not count.
        ino = st.st_ino if journal else st.st_ino + 1
        os.environ["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, ino)
        try:
            started = srv.start()
        finally:
            del os.environ["JOURNAL_STREAM"]
        if started:
            c = Client(srv.addr)
            c.set(1, 1, b"x")
            c.close()
        srv.stop()
        lines = srv.logtext().splitlines()
        srv.cleanup()
        if journal:
            check("JOURNAL_STREAM: every line has its priority "
                  "(<5> notice, <6> info)",
                  started and lines and
                  all(re.match(r"<[2-7]>dsd: ", l) for l in lines) and
                  any(l.startswith("<5>dsd: notice: kvdb: serving")
                      for l in lines) and
                  any(l.startswith("<6>dsd: info: ") for l in lines) and
                  any(l.startswith("<5>dsd: notice: snapshot: final, 1 keys")
                      for l in lines), lines)
        else:
            check("JOURNAL_STREAM of another file: no priority prefixes",
                  started and lines and
                  all(l.startswith("dsd: ") for l in lines), lines)


def main():
    srv = Server()
    if not srv.start():
        check("kvdb starts", False, srv.logtext())
    else:
        c = Client(srv.addr)
        test_semantics(c)
        test_keys(c)
        test_health(srv)
        test_concurrency(srv)
        test_bad_input(srv, c)
        c.close()
        srv.stop()
        srv.cleanup()
    test_restart_recovery()
    test_log_size_snapshots()
    test_kill9_under_load()
    test_torn_tail_and_corruption()
    test_sd_notify()
    test_journal_priorities()
    finish()


main()
