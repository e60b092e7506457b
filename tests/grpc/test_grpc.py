#!/usr/bin/python3
"""Interop and abuse tests of the gRPC transport (src/net/h2.c, src/net/grpc.c).

usage: test_grpc.py SERVER   (tests/grpc/grpc-test-server or its -san twin)

Starts the test server on a free loopback port and checks it with Debian's
python3-grpcio (generic stubs on raw bytes, no generated code) and with a
raw HTTP/2 client on a plain socket for what grpcio cannot send: a broken
preface, malformed frames, huge header blocks, a lying message prefix,
server-side grpc-timeout in every unit, a client that never reads, one
that never opens its flow-control window.  Raw responses are HPACK-decoded
with the system's libnghttp2 through ctypes, so the test needs no HTTP/2
package of its own.

Prints "ok - name" / "not ok - name" per check and "N passed, M failed";
exits non-zero on a failure.  Run it with /usr/bin/python3: a pyenv or
virtualenv python3 has no grpcio.
"""
import ctypes
import ctypes.util
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

import grpc

MAX_MESSAGE = 2 << 20           # the server's -m: above 1 MiB, below 4 MiB
TEST = "/dsd.test.v1.Test/"
HEALTH = "/grpc.health.v1.Health/Check"

PASSED = 0
FAILED = 0


def check(name, fn):
    """Run one check: it passes unless it raises."""
    global PASSED, FAILED
    try:
        fn()
    except Exception as e:          # noqa: BLE001 - any failure is a failure
        FAILED += 1
        print("not ok - %s: %s: %s" % (name, type(e).__name__, e), flush=True)
    else:
        PASSED += 1
        print("ok - %s" % name, flush=True)


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Server:
    """The test server as a child process; its stderr is kept for review."""

    def __init__(self, binary, *args):
        self.port = free_port()
        self.log = []
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "abort_on_error=1:detect_leaks=1")
        self.proc = subprocess.Popen(
            [binary] + list(args) + [str(self.port)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, env=env)
        ready = threading.Event()

        def drain():
            for line in self.proc.stderr:
                line = line.decode("utf-8", "replace").rstrip("\n")
                self.log.append(line)
                if line.startswith("listening on "):
                    ready.set()
            ready.set()
        threading.Thread(target=drain, daemon=True).start()
        if not ready.wait(20) or self.proc.poll() is not None:
            raise RuntimeError("server did not start: %s" % self.log)
        self.addr = "127.0.0.1:%d" % self.port

    def alive(self):
        return self.proc.poll() is None

    def rss_kib(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stop(self, timeout=20):
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None

    def sanitizer_report(self):
        bad = ("AddressSanitizer", "LeakSanitizer", "runtime error:",
               "UndefinedBehaviorSanitizer")
        return [line for line in self.log if any(b in line for b in bad)]


# A raw HTTP/2 client: enough framing and HPACK to say anything, right or
# wrong, and to read what comes back.

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, \
    CONTINUATION = 0, 1, 3, 4, 6, 7, 8, 9
END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY = 0x1, 0x1, 0x4, 0x8, 0x20


def frame(ftype, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + \
        struct.pack(">BBI", ftype, flags, sid) + payload


def hpack_int(value, bits, first=0):
    limit = (1 << bits) - 1
    if value < limit:
        return bytes([first | value])
    out = [first | limit]
    value -= limit
    while value >= 128:
        out.append(value % 128 + 128)
        value //= 128
    out.append(value)
    return bytes(out)


def hpack(headers):
    """Literal fields without indexing, no Huffman: always valid HPACK."""
    out = b""
    for name, value in headers:
        name = name.encode() if isinstance(name, str) else name
        value = value.encode() if isinstance(value, str) else value
        out += b"\x00" + hpack_int(len(name), 7) + name + \
            hpack_int(len(value), 7) + value
    return out


class NV(ctypes.Structure):
    _fields_ = [("name", ctypes.POINTER(ctypes.c_uint8)),
                ("value", ctypes.POINTER(ctypes.c_uint8)),
                ("namelen", ctypes.c_size_t),
                ("valuelen", ctypes.c_size_t),
                ("flags", ctypes.c_uint8)]


NGHTTP2 = ctypes.CDLL(ctypes.util.find_library("nghttp2") or
                      "libnghttp2.so.14")
NGHTTP2.nghttp2_hd_inflate_new.argtypes = [ctypes.POINTER(ctypes.c_void_p)]
NGHTTP2.nghttp2_hd_inflate_del.argtypes = [ctypes.c_void_p]
NGHTTP2.nghttp2_hd_inflate_hd2.restype = ctypes.c_ssize_t
NGHTTP2.nghttp2_hd_inflate_hd2.argtypes = [
    ctypes.c_void_p, ctypes.POINTER(NV), ctypes.POINTER(ctypes.c_int),
    ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
NGHTTP2.nghttp2_hd_inflate_end_headers.argtypes = [ctypes.c_void_p]


class Inflater:
    """HPACK decoding by libnghttp2 (one per connection: it has state)."""

    def __init__(self):
        self.p = ctypes.c_void_p()
        if NGHTTP2.nghttp2_hd_inflate_new(ctypes.byref(self.p)) != 0:
            raise RuntimeError("nghttp2_hd_inflate_new")

    def __del__(self):
        if self.p:
            NGHTTP2.nghttp2_hd_inflate_del(self.p)

    def decode(self, block):
        buf = ctypes.create_string_buffer(block, len(block))
        base = ctypes.addressof(buf)
        off, out = 0, []
        while True:
            nv, flags = NV(), ctypes.c_int(0)
            n = NGHTTP2.nghttp2_hd_inflate_hd2(
                self.p, ctypes.byref(nv), ctypes.byref(flags), base + off,
                len(block) - off, 1)
            if n < 0:
                raise RuntimeError("HPACK error %d" % n)
            off += n
            if flags.value & 0x2:
                out.append((ctypes.string_at(nv.name, nv.namelen).decode(),
                            ctypes.string_at(nv.value, nv.valuelen)))
            if flags.value & 0x1:
                NGHTTP2.nghttp2_hd_inflate_end_headers(self.p)
                return out
            if n == 0 and not flags.value & 0x2:
                raise RuntimeError("HPACK block ended early")


class Raw:
    """One HTTP/2 connection on a plain socket."""

    def __init__(self, port, preface=True, host="127.0.0.1"):
        self.s = socket.create_connection((host, port), timeout=5)
        self.port = port
        self.buf = b""
        self.closed = False
        self.send_failed = False
        self.reset = False      # the server's end was RST, not FIN
        self.inflater = Inflater()
        self.pending = None     # a header block waiting for CONTINUATION
        if preface:
            self.send(PREFACE + frame(SETTINGS, 0, 0))

    def send(self, data):
        try:
            self.s.sendall(data)
        except OSError:
            # The server hung up, which is allowed; what it sent before
            # (a GOAWAY saying why) is still to be read, so this does not
            # mark the connection closed: reading finds that out.
            self.send_failed = True

    def close(self):
        self.s.close()

    def _fill(self, deadline):
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.s.settimeout(left)
            try:
                chunk = self.s.recv(65536)
            except socket.timeout:
                return False
            except ConnectionResetError:
                self.reset = True
                chunk = b""
            except OSError:
                chunk = b""
            if not chunk:
                self.closed = True
                return False
            self.buf += chunk
            return True

    def frame(self, deadline):
        """Next frame as (type, flags, sid, payload), header blocks decoded
        into a list of (name, value); None on close or timeout."""
        while True:
            while len(self.buf) < 9 or \
                    len(self.buf) < 9 + int.from_bytes(self.buf[:3], "big"):
                if self.closed or not self._fill(deadline):
                    return None
            n = int.from_bytes(self.buf[:3], "big")
            ftype, flags, sid = struct.unpack(">BBI", self.buf[3:9])
            payload, self.buf = self.buf[9:9 + n], self.buf[9 + n:]
            sid &= 0x7fffffff
            if ftype == SETTINGS and not flags & ACK:
                self.send(frame(SETTINGS, ACK, 0))
            if ftype == HEADERS:
                if flags & PADDED:
                    payload = payload[1:len(payload) - payload[0]]
                if flags & PRIORITY:
                    payload = payload[5:]
                self.pending = (flags, sid, payload)
                if not flags & END_HEADERS:
                    continue
            elif ftype == CONTINUATION and self.pending is not None:
                f0, s0, block = self.pending
                self.pending = (f0 | flags, s0, block + payload)
                if not flags & END_HEADERS:
                    continue
                ftype = HEADERS
            if ftype == HEADERS:
                flags, sid, block = self.pending
                self.pending = None
                return (HEADERS, flags, sid, self.inflater.decode(block))
            return (ftype, flags, sid, payload)

    def request_frames(self, sid, path, body=None, headers=(), end=True):
        """The frames of a gRPC request, to send at once or gathered."""
        hs = [(":method", "POST"), (":scheme", "http"), (":path", path),
              (":authority", "127.0.0.1:%d" % self.port),
              ("content-type", "application/grpc"), ("te", "trailers")]
        names = {n for n, _ in headers}
        hs = [(n, v) for n, v in hs if n not in names] + list(headers)
        if body is None:
            return frame(HEADERS, END_HEADERS | (END_STREAM if end else 0),
                         sid, hpack(hs))
        return frame(HEADERS, END_HEADERS, sid, hpack(hs)) + \
            frame(DATA, END_STREAM if end else 0, sid, body)

    def request(self, sid, path, body=None, headers=(), end=True):
        self.send(self.request_frames(sid, path, body, headers, end))

    def response(self, sid, timeout=5):
        """Collect what comes for stream sid until it ends: a dict with
        headers (list of lists), data, rst (code), goaway, closed."""
        r = {"headers": [], "data": b"", "rst": None, "goaway": None,
             "closed": False, "ended": False}
        deadline = time.monotonic() + timeout
        while True:
            f = self.frame(deadline)
            if f is None:
                r["closed"] = self.closed
                return r
            ftype, flags, fsid, payload = f
            if ftype == GOAWAY:
                r["goaway"] = struct.unpack(">II", payload[:8])
            if fsid != sid:
                continue
            if ftype == HEADERS:
                r["headers"].append(payload)
            elif ftype == DATA:
                r["data"] += payload
            elif ftype == RST_STREAM:
                r["rst"] = struct.unpack(">I", payload)[0]
                return r
            if ftype in (HEADERS, DATA) and flags & END_STREAM:
                r["ended"] = True
                # A RST_STREAM(NO_ERROR) may follow an early answer; take
                # it if it is already here.
                more = self.frame(time.monotonic() + 0.05)
                if more is not None and more[0] == RST_STREAM and \
                        more[2] == sid:
                    r["rst"] = struct.unpack(">I", more[3])[0]
                return r

    def wait_closed(self, timeout=5):
        """Read until the server closes; return the frames seen."""
        seen = []
        deadline = time.monotonic() + timeout
        while True:
            f = self.frame(deadline)
            if f is None:
                return seen, self.closed
            seen.append(f)


def grpc_msg(body, flag=0):
    return struct.pack(">BI", flag, len(body)) + body


def field(block, name):
    for n, v in block:
        if n == name:
            return v
    return None


def status_of(r):
    """grpc-status of a raw response (trailers, or trailers-only)."""
    for block in reversed(r["headers"]):
        v = field(block, "grpc-status")
        if v is not None:
            return int(v)
    return None


# The checks.

def stub(ch, method):
    return ch.unary_unary(method, request_serializer=None,
                          response_deserializer=None)


def channel(addr):
    ch = grpc.insecure_channel(addr)
    # Debian's grpcio sometimes fails a good connect when many channels
    # start at once (grpc-notes.md): wait for ready before blaming us.
    grpc.channel_ready_future(ch).result(timeout=10)
    return ch


def expect_code(fn, code, details=None):
    try:
        fn()
    except grpc.RpcError as e:
        expect(e.code() == code, "got %s (%s), wanted %s" %
               (e.code(), e.details(), code))
        if details is not None:
            expect(e.details() == details,
                   "details %r, wanted %r" % (e.details(), details))
        return e
    raise AssertionError("call succeeded, wanted %s" % code)


class GoodClient:
    """A client that keeps calling Echo on its own channel while an abuse
    check runs: the server must go on serving it."""

    def __init__(self, addr):
        self.ch = channel(addr)
        self.echo = stub(self.ch, TEST + "Echo")
        self.ok = 0
        self.errors = []
        self.stopping = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        i = 0
        while not self.stopping.is_set():
            body = b"good %d" % i
            try:
                got = self.echo(body, timeout=5)
                if got != body:
                    self.errors.append("wrong echo %r" % got)
                self.ok += 1
            except grpc.RpcError as e:
                self.errors.append("%s %s" % (e.code(), e.details()))
            i += 1
            time.sleep(0.005)

    def finish(self, since):
        time.sleep(0.2)
        self.stopping.set()
        self.t.join(10)
        self.ch.close()
        expect(not self.errors, "the good client failed: %s" %
               self.errors[:3])
        expect(self.ok > since, "the good client got no answers")


def abuse(srv, fn):
    """Run fn while a good client calls; both the good client and the
    server must be fine after it."""
    def run():
        g = GoodClient(srv.addr)
        time.sleep(0.05)
        before = g.ok
        try:
            fn()
        finally:
            g.finish(before)
        expect(srv.alive(), "the server died")
    return run


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: test_grpc.py SERVER")
    binary = sys.argv[1]
    srv = Server(binary, "-m", str(MAX_MESSAGE))
    ch = channel(srv.addr)
    echo = stub(ch, TEST + "Echo")
    slow = stub(ch, TEST + "Slow")
    fail = stub(ch, TEST + "Fail")
    health = stub(ch, HEALTH)

    def echo_sizes():
        for n in (0, 1, 1 << 20):
            body = os.urandom(n)
            got = echo(body, timeout=10)
            expect(got == body, "echo of %d bytes came back as %d bytes" %
                   (n, len(got)))
    check("echo of 0 bytes, 1 byte and 1 MiB", echo_sizes)

    def echo_max():
        body = os.urandom(MAX_MESSAGE)
        expect(echo(body, timeout=10) == body, "wrong echo")
    check("echo of exactly the maximum message size", echo_max)

    check("a message over the maximum gets RESOURCE_EXHAUSTED",
          lambda: expect_code(lambda: echo(b"x" * (MAX_MESSAGE + 1),
                                           timeout=10),
                              grpc.StatusCode.RESOURCE_EXHAUSTED))

    check("an unknown method gets UNIMPLEMENTED",
          lambda: expect_code(lambda: stub(ch, "/no.Such/Method")(
              b"", timeout=5), grpc.StatusCode.UNIMPLEMENTED))
    check("an unknown method of a known service gets UNIMPLEMENTED",
          lambda: expect_code(lambda: stub(ch, TEST + "Nope")(
              b"", timeout=5), grpc.StatusCode.UNIMPLEMENTED))

    def fail_roundtrip():
        msg = "héllo 100% ✓ naïve\tdone %41 end"
        for code in (grpc.StatusCode.NOT_FOUND,
                     grpc.StatusCode.INVALID_ARGUMENT,
                     grpc.StatusCode.FAILED_PRECONDITION,
                     grpc.StatusCode.UNAUTHENTICATED):
            expect_code(lambda: fail(("%d %s" % (code.value[0], msg))
                                     .encode(), timeout=5), code, msg)
    check("Fail: exact status and a non-ASCII message with % round-trip",
          fail_roundtrip)

    def deadline():
        t0 = time.monotonic()
        expect_code(lambda: slow(b"3000", timeout=0.3),
                    grpc.StatusCode.DEADLINE_EXCEEDED)
        expect(time.monotonic() - t0 < 2, "the deadline came late")
        expect(echo(b"after", timeout=5) == b"after", "no echo after")
        time.sleep(3)       # let the abandoned Slow reply, into nothing
        expect(echo(b"later", timeout=5) == b"later", "no echo later")
        expect(srv.alive(), "the server died")
    check("a deadline shorter than Slow gets DEADLINE_EXCEEDED and the "
          "server keeps serving", deadline)

    def slow_ok():
        expect(slow(b"100", timeout=5) == b"slept 100", "wrong reply")
    check("Slow answers asynchronously", slow_ok)

    count = ch.unary_stream(TEST + "Count", request_serializer=None,
                            response_deserializer=None)

    def counted(msgs, size):
        expect(len(msgs) == len(set(msgs)) and all(
            len(m) == size and m.startswith((b"%d." % i)[:size])
            for i, m in enumerate(msgs)), "messages out of order or wrong")

    def stream_ok():
        for n, size in ((0, 1), (1, 1), (2000, 1000), (3, 1 << 20)):
            call = count(b"%d %d" % (n, size), timeout=30)
            msgs = list(call)
            expect(len(msgs) == n, "%d messages of %d" % (len(msgs), n))
            counted(msgs, size)
            expect(call.code() == grpc.StatusCode.OK, "status %s" %
                   call.code())
    check("server streaming: 0, 1, 2000 and 3 large messages in order, "
          "then OK", stream_ok)

    def stream_error():
        call = count(b"3 10 5", timeout=10)
        msgs = []
        try:
            for m in call:
                msgs.append(m)
            raise AssertionError("the stream ended OK")
        except grpc.RpcError as e:
            expect(e.code() == grpc.StatusCode.NOT_FOUND and
                   e.details() == "count ended", "got %s %s" %
                   (e.code(), e.details()))
        expect(len(msgs) == 3, "%d messages before the error" % len(msgs))
        counted(msgs, 10)
    check("server streaming: an error status in the trailers after the "
          "messages", stream_error)

    def stream_paced():
        # 256 MiB to a client that reads one message and then sleeps:
        # flow control must hold the server back, its memory must not
        # grow by the stream's size, and nothing may be lost after.
        before = srv.rss_kib()
        call = count(b"%d %d" % (16384, 16384), timeout=60)
        it = iter(call)
        first = next(it)
        time.sleep(1)
        grew = srv.rss_kib() - before
        expect(grew < 32 * 1024, "the server grew by %d KiB while the "
               "client did not read" % grew)
        n, total = 1, len(first)
        for m in it:
            expect(m.startswith(b"%d." % n), "message %d out of order" % n)
            n += 1
            total += len(m)
        expect(n == 16384 and total == 16384 * 16384 and
               call.code() == grpc.StatusCode.OK, "%d messages" % n)
    check("server streaming: 256 MiB to a slow reader, paced by flow "
          "control (the server's memory stays flat)", stream_paced)

    def stream_cancel():
        call = count(b"100000 1000", timeout=30)
        it = iter(call)
        for _ in range(5):
            next(it)
        call.cancel()
        deadline = time.monotonic() + 5
        while not any("count: cancelled after" in line for line in
                      srv.log) and time.monotonic() < deadline:
            time.sleep(0.05)
        expect(any("count: cancelled after" in line for line in srv.log),
               "the handler was not told of the cancel")
        expect(echo(b"after", timeout=5) == b"after", "no echo after")
    check("server streaming: a client that cancels mid-stream: the "
          "handler is told, the server goes on", stream_cancel)

    def stream_deadline():
        call = count(b"100000 1000", timeout=0.5)
        it = iter(call)
        next(it)
        time.sleep(1)
        expect_code(lambda: [m for m in it],
                    grpc.StatusCode.DEADLINE_EXCEEDED)
        expect(echo(b"after", timeout=5) == b"after", "no echo after")
    check("server streaming: a deadline mid-stream ends it "
          "DEADLINE_EXCEEDED", stream_deadline)

    def concurrent_one_channel():
        futs = [echo.future(b"c%d" % i, timeout=20) for i in range(200)]
        for i, f in enumerate(futs):
            expect(f.result() == b"c%d" % i, "wrong reply %d" % i)
        # Slow calls overlap on the server: 200 of 200 ms take far less
        # than 200 x 200 ms.
        t0 = time.monotonic()
        futs = [slow.future(b"200", timeout=20) for _ in range(200)]
        for f in futs:
            expect(f.result() == b"slept 200", "wrong Slow reply")
        expect(time.monotonic() - t0 < 10, "Slow calls were serialised")
    check("200 concurrent calls on one channel", concurrent_one_channel)

    def twenty_channels():
        chans = [channel(srv.addr) for _ in range(20)]
        errors = []

        def work(k, c):
            e = stub(c, TEST + "Echo")
            futs = [e.future(b"%d-%d" % (k, i), timeout=20)
                    for i in range(50)]
            for i, f in enumerate(futs):
                try:
                    if f.result() != b"%d-%d" % (k, i):
                        errors.append("wrong reply")
                except grpc.RpcError as ex:
                    errors.append(str(ex.code()))
        ts = [threading.Thread(target=work, args=(k, c))
              for k, c in enumerate(chans)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
        for c in chans:
            c.close()
        expect(not errors, "errors: %s" % errors[:5])
    check("20 channels at once, 50 calls each", twenty_channels)

    def disconnect_grpcio():
        c = channel(srv.addr)
        futs = [stub(c, TEST + "Slow").future(b"300", timeout=20)
                for _ in range(10)]
        time.sleep(0.1)
        c.close()                   # cancels the calls, drops the channel
        for f in futs:
            try:
                f.result()
            except grpc.RpcError:
                pass
        time.sleep(0.6)             # the late replies happen now
        expect(srv.alive(), "the server died")
        expect(echo(b"x", timeout=5) == b"x", "no echo after")
    check("a client that disconnects while Slow is pending (grpcio): no "
          "crash", disconnect_grpcio)

    def disconnect_raw():
        for _ in range(5):
            r = Raw(srv.port)
            for sid in (1, 3, 5):
                r.request(sid, TEST + "Slow", grpc_msg(b"200"))
            time.sleep(0.05)
            r.close()
        r = Raw(srv.port)
        r.request(1, TEST + "Slow", grpc_msg(b"300"))
        time.sleep(0.05)
        r.send(frame(RST_STREAM, 0, 1, struct.pack(">I", 8)))   # CANCEL
        time.sleep(0.5)
        r.request(3, TEST + "Echo", grpc_msg(b"still here"))
        resp = r.response(3)
        expect(status_of(resp) == 0 and resp["data"] ==
               grpc_msg(b"still here"), "no echo after a reset: %s" % resp)
        r.close()
        time.sleep(0.3)
        expect(srv.alive(), "the server died")
    check("a raw client that resets or drops pending Slow calls: no crash",
          disconnect_raw)

    def compressed():
        e = expect_code(lambda: echo(b"abc" * 100, timeout=5,
                                     compression=grpc.Compression.Gzip),
                        grpc.StatusCode.UNIMPLEMENTED)
        expect("compress" in (e.details() or ""), "details: %s" %
               e.details())
        # grpcio hides grpc-* headers, so see the advertisement raw.
        r = Raw(srv.port)
        r.request(1, TEST + "Echo", grpc_msg(b"abc"),
                  [("grpc-encoding", "gzip")])
        resp = r.response(1)
        expect(status_of(resp) == 12, "status %s" % status_of(resp))
        expect(field(resp["headers"][0], "grpc-accept-encoding") ==
               b"identity", "no grpc-accept-encoding: %s" % resp)
        # The compressed flag without grpc-encoding is refused alike.
        r.request(3, TEST + "Echo", grpc_msg(b"abc", flag=1))
        resp = r.response(3)
        expect(status_of(resp) == 12 and field(
            resp["headers"][0], "grpc-accept-encoding") == b"identity",
            "compressed flag: %s" % resp)
        r.close()
    check("a compressed request gets UNIMPLEMENTED with "
          "grpc-accept-encoding: identity", compressed)

    def health_check():
        expect(health(b"", timeout=5) == b"\x08\x01", "not SERVING")
        svc = b"dsd.test.v1.Test"
        expect(health(b"\x0a" + bytes([len(svc)]) + svc, timeout=5) ==
               b"\x08\x01", "test service not SERVING")
        expect_code(lambda: health(b"\x0a\x03abc", timeout=5),
                    grpc.StatusCode.NOT_FOUND)
        expect_code(lambda: health(b"\x0a\x09abc", timeout=5),
                    grpc.StatusCode.INVALID_ARGUMENT)
    check("health Check: SERVING, NOT_FOUND for an unknown service",
          health_check)

    def server_deadline():
        # No client-side deadline here: only the server can time out.
        r = Raw(srv.port)
        cases = [("1H", b"50", 0), ("1M", b"50", 0), ("10S", b"50", 0),
                 ("5000m", b"50", 0), ("5000000u", b"50", 0),
                 ("99999999n", b"0", 0), ("200m", b"3000", 4),
                 ("100000u", b"3000", 4), ("99999999n", b"3000", 4),
                 ("0m", b"3000", 4), ("abc", b"50", 13),
                 ("123456789S", b"50", 13), ("10", b"50", 13),
                 ("100000000n", b"50", 13)]
        sid = 1
        for timeout, ms, want in cases:
            t0 = time.monotonic()
            r.request(sid, TEST + "Slow", grpc_msg(ms),
                      [("grpc-timeout", timeout)])
            resp = r.response(sid)
            took = time.monotonic() - t0
            expect(status_of(resp) == want, "grpc-timeout %s: status %s, "
                   "wanted %d" % (timeout, status_of(resp), want))
            expect(want != 4 or took < 1.5, "grpc-timeout %s took %.2fs" %
                   (timeout, took))
            sid += 2
        r.close()
    check("grpc-timeout in every unit, enforced by the server",
          server_deadline)

    def not_grpc():
        r = Raw(srv.port)
        r.request(1, TEST + "Echo", grpc_msg(b"x"),
                  [("content-type", "application/json")])
        resp = r.response(1)
        expect(field(resp["headers"][0], ":status") == b"415",
               "content-type: %s" % resp)
        r.send(frame(HEADERS, END_HEADERS | END_STREAM, 3, hpack(
            [(":method", "GET"), (":scheme", "http"),
             (":path", TEST + "Echo"), (":authority", "x"),
             ("content-type", "application/grpc")])))
        resp = r.response(3)
        expect(field(resp["headers"][0], ":status") == b"405",
               "GET: %s" % resp)
        r.request(5, TEST + "Echo", None)       # no message at all
        expect(status_of(r.response(5)) == 13, "empty body")
        r.request(7, TEST + "Echo", grpc_msg(b"a") + grpc_msg(b"b"))
        expect(status_of(r.response(7)) == 13, "two messages")
        r.request(9, TEST + "Echo", grpc_msg(b"abcdef")[:-2])
        expect(status_of(r.response(9)) == 13, "truncated")
        r.request(11, TEST + "Echo", grpc_msg(b"ok"))
        resp = r.response(11)
        expect(status_of(resp) == 0 and resp["data"] == grpc_msg(b"ok"),
               "the connection broke: %s" % resp)
        r.close()
    check("non-gRPC requests, no message, two messages, a truncated one: "
          "the right errors on a connection that goes on", not_grpc)

    def garbage_preface():
        r = Raw(srv.port, preface=False)
        r.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + os.urandom(64))
        frames, closed = r.wait_closed()
        expect(closed, "connection not closed")
        r.close()
        r = Raw(srv.port, preface=False)
        r.send(os.urandom(200))
        frames, closed = r.wait_closed()
        expect(closed, "connection not closed (random bytes)")
        r.close()
    check("garbage instead of the preface closes only that connection",
          abuse(srv, garbage_preface))

    def malformed_frame():
        for bad in (frame(SETTINGS, 0, 0, b"\x00" * 5),   # not 6n bytes
                    frame(DATA, 0, 0, b"x"),             # DATA on stream 0
                    frame(WINDOW_UPDATE, 0, 0, b"\x00")):   # short
            r = Raw(srv.port)
            r.send(bad)
            frames, closed = r.wait_closed()
            expect(closed, "connection not closed after %r" % bad[:9])
            expect(any(f[0] == GOAWAY for f in frames),
                   "no GOAWAY after %r" % bad[:9])
            r.close()
    check("a valid preface then a malformed frame: GOAWAY, that "
          "connection only", abuse(srv, malformed_frame))

    def huge_headers():
        # A header block far over SETTINGS_MAX_HEADER_LIST_SIZE, split
        # over CONTINUATION frames of legal size.
        r = Raw(srv.port)
        field4k = hpack([("x-pad-%d" % i, "v" * 4000) for i in range(256)])
        chunks = [field4k[i:i + 16000]
                  for i in range(0, len(field4k), 16000)]
        hs = hpack([(":method", "POST"), (":scheme", "http"),
                    (":path", TEST + "Echo"), (":authority", "x"),
                    ("content-type", "application/grpc")])
        r.send(frame(HEADERS, 0, 1, hs + chunks[0]))
        for i, c in enumerate(chunks[1:]):
            last = i == len(chunks) - 2
            r.send(frame(CONTINUATION, END_HEADERS if last else 0, 1, c))
        resp = r.response(1)
        expect(resp["rst"] is not None or resp["goaway"] is not None or
               resp["closed"], "the huge header block was accepted: %s" %
               {k: v for k, v in resp.items() if k != "headers"})
        r.close()
        # One HEADERS frame larger than SETTINGS_MAX_FRAME_SIZE, and more
        # after it that the server will not read: it still ends with FIN
        # after its GOAWAY, not with the RST that closing a socket with
        # unread input sends (which may destroy the GOAWAY unread).
        r = Raw(srv.port)
        r.send(frame(HEADERS, END_HEADERS, 1, hs + field4k[:100000]) +
               frame(DATA, 0, 1, b"z" * 16384) * 64)
        frames, closed = r.wait_closed()
        expect(closed and any(f[0] == GOAWAY for f in frames),
               "an oversized frame did not end the connection")
        expect(not r.reset and not r.send_failed,
               "the connection ended with RST, not FIN")
        r.close()
        # Many small fields over the limit in one legal frame: the stream
        # is reset, the connection lives on.
        r = Raw(srv.port)
        many = hpack([("x-%d" % i, "y" * 100) for i in range(120)])
        r.send(frame(HEADERS, END_HEADERS | END_STREAM, 1, hs + many))
        resp = r.response(1)
        expect(resp["rst"] is not None, "not reset: %s" % resp)
        r.request(3, TEST + "Echo", grpc_msg(b"after"))
        resp = r.response(3)
        expect(status_of(resp) == 0, "the connection did not go on")
        r.close()
    check("enormous header blocks: reset or GOAWAY, that connection only",
          abuse(srv, huge_headers))

    def four_gb():
        r = Raw(srv.port)
        r.request(1, TEST + "Echo", b"\x00\xff\xff\xff\xff" + b"x" * 1000,
                  end=False)
        resp = r.response(1)
        expect(status_of(resp) == 8, "status %s, wanted RESOURCE_EXHAUSTED" %
               status_of(resp))
        expect(resp["rst"] in (None, 0), "reset with %s" % resp["rst"])
        # The client may go on sending the body; the stream is over.
        r.send(frame(DATA, 0, 1, b"y" * 10000))
        r.request(3, TEST + "Echo", grpc_msg(b"next"))
        resp = r.response(3)
        expect(status_of(resp) == 0 and resp["data"] == grpc_msg(b"next"),
               "the connection did not go on: %s" % resp)
        r.close()
    check("a message prefix announcing 4 GB gets RESOURCE_EXHAUSTED at "
          "once", abuse(srv, four_gb))

    def no_reader():
        # A client that floods PINGs and never reads: the server must stop
        # reading it once its output is full, rather than queue answers
        # without bound, and go on once the client reads again.
        rss0 = srv.rss_kib()
        r = Raw(srv.port)
        r.frame(time.monotonic() + 5)           # our SETTINGS are in
        ping = frame(PING, 0, 0, b"12345678")
        r.s.settimeout(3)
        sent, total = 0, 4000 * 1000            # 68 MB of PINGs
        try:
            while sent < total:
                r.s.sendall(ping * 1000)
                sent += 1000
        except socket.timeout:
            pass
        expect(sent < total, "the server read 68 MB it could not answer")
        # ASan keeps freed memory in quarantine: RSS says nothing there.
        if not binary.endswith("-san"):
            grew = srv.rss_kib() - rss0
            expect(grew < 32 * 1024, "server grew by %d KiB" % grew)
        acks = 0
        deadline = time.monotonic() + 20
        while acks < sent:
            f = r.frame(deadline)
            if f is None:
                break
            if f[0] == PING and f[1] & ACK:
                acks += 1
        expect(acks == sent, "%d PINGs sent, %d acknowledged" % (sent, acks))
        r.close()
    check("a client that floods and never reads is bounded",
          abuse(srv, no_reader))

    def held_budget():
        # A client that announces SETTINGS_INITIAL_WINDOW_SIZE=0 and never
        # opens a window: every reply stays with the server.  Past the
        # per-connection budget (-b) its further requests must wait,
        # neither answered into memory nor refused, while the connection
        # is still read, so that WINDOW_UPDATEs and resets drain what is
        # held and the waiting requests are then answered.
        held, big, nstreams = 8 << 20, 1 << 20, 100
        s2 = Server(binary, "-b", str(held), "-m", str(big + 1024),
                    "-s", "256")
        want = -(-held // (big + 5))

        def open_many(r, first, n):
            """Open n streams asking Big for 1 MiB; return their ids, the
            ids that got response headers, and any RST_STREAM codes."""
            sids = list(range(first, first + 2 * n, 2))
            r.send(b"".join(r.request_frames(sid, TEST + "Big",
                                             grpc_msg(b"%d" % big))
                            for sid in sids))
            answered, reset = [], {}
            # Wait for the budget's worth of answers, then a little more
            # to see that nothing else comes.
            deadline = time.monotonic() + 10
            while True:
                if len(answered) >= want:
                    deadline = min(deadline, time.monotonic() + 0.5)
                f = r.frame(deadline)
                if f is None:
                    break
                if f[2] not in sids:
                    continue
                if f[0] == HEADERS and f[2] not in answered:
                    answered.append(f[2])
                elif f[0] == RST_STREAM:
                    reset[f[2]] = struct.unpack(">I", f[3])[0]
                elif f[0] == DATA:
                    raise AssertionError("DATA through a zero window")
            expect(len(answered) == want and not reset, "%d streams "
                   "answered into a zero window (wanted %d: budget %d, "
                   "reply %d), resets %s" % (len(answered), want, held,
                                            big, reset))
            return sids, answered

        def read_all(r, sids, timeout):
            got = {sid: {"headers": [], "data": b""} for sid in sids}
            done = set()
            deadline = time.monotonic() + timeout
            while len(done) < len(sids):
                f = r.frame(deadline)
                expect(f is not None, "%d of %d replies completed" %
                       (len(done), len(sids)))
                if f[2] not in got:
                    continue
                if f[0] == HEADERS:
                    got[f[2]]["headers"].append(f[3])
                elif f[0] == DATA:
                    got[f[2]]["data"] += f[3]
                elif f[0] == RST_STREAM:
                    raise AssertionError("stream %d reset" % f[2])
                if f[0] in (HEADERS, DATA) and f[1] & END_STREAM:
                    done.add(f[2])
            for sid, resp in got.items():
                expect(status_of(resp) == 0 and len(resp["data"]) ==
                       big + 5, "stream %d: status %s, %d bytes" %
                       (sid, status_of(resp), len(resp["data"])))

        def zero_window(r):
            r.send(frame(SETTINGS, 0, 0, struct.pack(">HI", 4, 0)))

        def run():
            rss0 = s2.rss_kib()
            r = Raw(s2.port, preface=False)
            r.send(PREFACE)
            zero_window(r)
            sids, answered = open_many(r, 1, nstreams)
            if not binary.endswith("-san"):
                grew = s2.rss_kib() - rss0
                expect(grew < 4 * held // 1024, "server grew by %d KiB for "
                       "%d streams of %d bytes" % (grew, nstreams, big))
            # Another connection is served in full meanwhile.
            c = channel(s2.addr)
            expect(len(stub(c, TEST + "Big")(b"%d" % big, timeout=10)) ==
                   big, "a good client's large reply")
            # Opening the windows (a larger initial window applies to the
            # open streams too) drains what is held; every waiting
            # request is then answered, all 100 in full.
            r.send(frame(SETTINGS, 0, 0, struct.pack(">HI", 4, big + 5)) +
                   frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 1 << 30)))
            read_all(r, sids, 30)
            # Over budget again; resetting every stream of the round
            # releases the held bytes as surely as sending them, and a
            # new call is answered.
            zero_window(r)
            sids, answered = open_many(r, 2 * nstreams + 1, nstreams)
            rst = b""
            for sid in sids:
                rst += frame(RST_STREAM, 0, sid, struct.pack(">I", 8))
            r.send(rst)
            sid = 4 * nstreams + 1
            r.request(sid, TEST + "Big", grpc_msg(b"%d" % big))
            r.send(frame(WINDOW_UPDATE, 0, sid, struct.pack(">I", big + 5)))
            resp = r.response(sid, timeout=10)
            expect(status_of(resp) == 0, "no answer after the held "
                   "streams were reset: %s" % {k: v for k, v in resp.items()
                                               if k != "data"})
            r.close()
            # Closing lets the rest go: more rounds on fresh connections
            # cost no more than the first did.
            time.sleep(0.2)
            rss1 = s2.rss_kib()
            for _ in range(3):
                r = Raw(s2.port, preface=False)
                r.send(PREFACE)
                zero_window(r)
                open_many(r, 1, nstreams)
                r.close()
            time.sleep(0.2)
            if not binary.endswith("-san"):
                grew = s2.rss_kib() - rss1
                expect(grew < 2 * held // 1024, "three more rounds grew the "
                       "server by %d KiB" % grew)
            c.close()
        try:
            abuse(s2, run)()
        finally:
            expect(s2.stop() == 0, "the server did not stop cleanly")
            bad = s2.sanitizer_report()
            expect(not bad, "\n".join(bad[:20]))
    check("a client that never opens its window: past the held-bytes "
          "budget its requests wait, memory bounded; WINDOW_UPDATE or "
          "reset lets them go", held_budget)

    def held_budget_small():
        # A budget smaller than one reply still serves one call at a time:
        # a request waits only if bytes are held already.
        s2 = Server(binary, "-b", "65536", "-m", str(2 << 20))
        try:
            c = channel(s2.addr)
            big = stub(c, TEST + "Big")
            for n in (1 << 20, 2 << 20, 1 << 20):
                expect(len(big(b"%d" % n, timeout=10)) == n, "wrong reply")
            c.close()
        finally:
            expect(s2.stop() == 0, "the server did not stop cleanly")
            bad = s2.sanitizer_report()
            expect(not bad, "\n".join(bad[:20]))
    check("a held-bytes budget below one reply serves calls one at a time",
          held_budget_small)

    def held_total():
        # The server-wide budget on held reply bytes (-B): past it, a
        # request waits if its connection holds any reply bytes, and goes
        # on if it holds none, so that clients that read are served
        # however many never do; when held bytes drain anywhere, requests
        # waiting on other connections go on by themselves.
        big, per_conn, total = 1 << 20, 2 << 20, 4 << 20
        s2 = Server(binary, "-b", str(per_conn), "-B", str(total),
                    "-m", str(big + 1024))

        def connect():
            r = Raw(s2.port, preface=False)
            r.send(PREFACE + frame(SETTINGS, 0, 0, struct.pack(">HI", 4, 0)))
            return r

        def ask(r, n):
            sids = list(range(1, 2 * n, 2))
            r.send(b"".join(r.request_frames(sid, TEST + "Big",
                                             grpc_msg(b"%d" % big))
                            for sid in sids))
            return sids

        def answered(r, sids, settle=0.5, timeout=5):
            """The streams that got response headers until nothing came
            for settle seconds; DATA through a zero window is an error."""
            got = []
            end = time.monotonic() + timeout
            while True:
                f = r.frame(min(end, time.monotonic() + settle))
                if f is None:
                    return got
                if f[2] in sids and f[0] == HEADERS and f[2] not in got:
                    got.append(f[2])
                elif f[2] in sids and f[0] == DATA:
                    raise AssertionError("DATA through a zero window")
                elif f[2] in sids and f[0] == RST_STREAM:
                    raise AssertionError("stream %d reset" % f[2])

        def drain(r, sids):
            r.send(frame(SETTINGS, 0, 0, struct.pack(">HI", 4, big + 5)) +
                   frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 1 << 30)))
            done = set()
            end = time.monotonic() + 15
            while len(done) < len(sids):
                f = r.frame(end)
                expect(f is not None, "%d of %d streams completed after "
                       "opening the windows" % (len(done), len(sids)))
                if f[2] in sids and f[0] in (HEADERS, DATA) and \
                        f[1] & END_STREAM:
                    done.add(f[2])

        def run():
            conns = [connect() for _ in range(4)]
            sids = []
            got = []
            for r in conns:
                sids.append(ask(r, 6))
                got.append(len(answered(r, sids[-1])))
            # Two replies fill a connection's budget; two connections
            # fill the server's; then each further connection gets one.
            expect(got == [2, 2, 1, 1], "replies held per connection %s, "
                   "wanted [2, 2, 1, 1]" % got)
            c = channel(s2.addr)
            expect(len(stub(c, TEST + "Big")(b"%d" % big, timeout=10)) ==
                   big, "a client that reads was not served")
            # The first two read everything: the server's held bytes
            # fall under its budget, and the last two get one more reply
            # each without sending anything.
            drain(conns[0], sids[0])
            drain(conns[1], sids[1])
            more = [len(answered(conns[i], sids[i])) for i in (2, 3)]
            expect(more == [1, 1], "after the others drained, %s more "
                   "replies, wanted [1, 1]" % more)
            c.close()
            for r in conns:
                r.close()
            expect(s2.alive(), "the server died")
        try:
            run()
        finally:
            expect(s2.stop() == 0, "the server did not stop cleanly")
            bad = s2.sanitizer_report()
            expect(not bad, "\n".join(bad[:20]))
    check("a server-wide budget on held reply bytes: connections holding "
          "some wait, one holding none is served; draining one wakes the "
          "others", held_total)

    def request_budget():
        # Request messages that never finish: flow control gives the window
        # back as bytes arrive, so only the budgets on bytes being received
        # (-p per connection, -P for the server) stop a client from
        # parking max-streams x max-message on each connection.  The
        # stream whose bytes would pass a budget gets RESOURCE_EXHAUSTED;
        # the ones already counted go on, and closing releases them.
        piece = 512 << 10
        per_conn, total = 16 * piece, 24 * piece
        s2 = Server(binary, "-m", str(4 << 20), "-p", str(per_conn),
                    "-P", str(total))

        def start(r, sids):
            """Each stream: headers, a prefix announcing 4 MiB, and piece
            bytes in all (prefix included), in 16 KiB frames."""
            out = b""
            for sid in sids:
                out += r.request_frames(sid, TEST + "Echo", end=False)
                body = struct.pack(">BI", 0, 4 << 20) + \
                    b"x" * (piece - 5)
                for off in range(0, len(body), 16384):
                    out += frame(DATA, 0, sid, body[off:off + 16384])
            r.send(out)

        def refused(r, sids, timeout=1.0):
            """The streams of sids answered within timeout, each with its
            grpc-status; every answer must be RESOURCE_EXHAUSTED."""
            got = {}
            deadline = time.monotonic() + timeout
            while True:
                f = r.frame(deadline)
                if f is None:
                    break
                if f[0] == HEADERS and f[2] in sids:
                    got[f[2]] = status_of({"headers": [f[3]]})
                if f[0] == GOAWAY:
                    raise AssertionError("GOAWAY %r" % (f[3][:8],))
            bad = {k: v for k, v in got.items() if v != 8}
            expect(not bad, "answers other than RESOURCE_EXHAUSTED: %s" %
                   bad)
            return sorted(got)

        def run():
            rss0 = s2.rss_kib()
            a = Raw(s2.port)
            sids_a = list(range(1, 41, 2))              # 20 streams
            start(a, sids_a)
            got = refused(a, sids_a)
            expect(got == sids_a[16:], "connection budget: refused %s, "
                   "wanted the last four %s" % (got, sids_a[16:]))
            # Other connections are served meanwhile.
            ch2 = channel(s2.addr)
            echo = stub(ch2, TEST + "Echo")
            expect(echo(b"good", timeout=5) == b"good", "no echo")
            # Another connection: the server's budget leaves it 8 pieces.
            b = Raw(s2.port)
            sids_b = list(range(1, 21, 2))              # 10 streams
            start(b, sids_b)
            got = refused(b, sids_b)
            expect(got == sids_b[8:], "server budget: refused %s, wanted "
                   "%s" % (got, sids_b[8:]))
            # The server's budget is spent: any request body is refused
            # now, at once and with a clear status, rather than memory
            # growing without bound.
            expect_code(lambda: echo(b"late", timeout=5),
                        grpc.StatusCode.RESOURCE_EXHAUSTED)
            if not binary.endswith("-san"):
                grew = s2.rss_kib() - rss0
                expect(grew < 3 * total // 1024, "the server grew by %d "
                       "KiB holding %d KiB of requests" %
                       (grew, total // 1024))
            # Closing both gives everything back: a fresh connection has
            # its whole budget again, and a whole message goes through.
            a.close()
            b.close()
            time.sleep(0.3)
            c = Raw(s2.port)
            sids_c = list(range(1, 35, 2))              # 17 streams
            start(c, sids_c)
            got = refused(c, sids_c)
            expect(got == sids_c[16:], "after closing: refused %s, wanted "
                   "%s" % (got, sids_c[16:]))
            c.close()
            time.sleep(0.3)
            msg = b"y" * (3 << 20)
            expect(echo(msg, timeout=10) == msg,
                   "a 3 MiB echo after the abusers left")
            ch2.close()
            expect(s2.alive(), "the server died")
        try:
            run()
        finally:
            expect(s2.stop() == 0, "the server did not stop cleanly")
            bad = s2.sanitizer_report()
            expect(not bad, "\n".join(bad[:20]))
    check("requests that never finish: past the budgets on bytes being "
          "received, RESOURCE_EXHAUSTED; the others go on", request_budget)

    def max_streams():
        # SETTINGS_MAX_CONCURRENT_STREAMS is announced and enforced.
        s2 = Server(binary, "-s", "4")
        try:
            r = Raw(s2.port)
            deadline = time.monotonic() + 5
            settings = None
            while settings is None:
                f = r.frame(deadline)
                expect(f is not None, "no SETTINGS")
                if f[0] == SETTINGS and not f[1] & ACK:
                    settings = f[3]
            ids = {struct.unpack(">HI", settings[i:i + 6])
                   for i in range(0, len(settings), 6)}
            expect((3, 4) in ids, "MAX_CONCURRENT_STREAMS: %s" % ids)
            for sid in range(1, 13, 2):     # 6 streams, 4 allowed
                r.request(sid, TEST + "Slow", grpc_msg(b"300"))
            # nghttp2 refuses a stream over the limit (REFUSED_STREAM)
            # before our SETTINGS are acknowledged, and treats it as a
            # connection error (GOAWAY PROTOCOL_ERROR) after: RFC 9113
            # 5.1.2 allows either.
            resp = r.response(9)
            expect(resp["rst"] in (1, 7) or resp["goaway"] is not None,
                   "a stream over the limit was served: %s" % resp)
            r.close()
        finally:
            s2.stop()
    check("max concurrent streams is announced and enforced", max_streams)

    def idle():
        s2 = Server(binary, "-i", "300")
        try:
            r = Raw(s2.port)
            frames, closed = r.wait_closed(timeout=5)
            expect(closed and any(f[0] == GOAWAY for f in frames),
                   "an idle connection was not closed with GOAWAY")
            r.close()
        finally:
            s2.stop()
    check("an idle connection gets GOAWAY and is closed", idle)

    def stalled():
        # A peer that goes quiet in the middle of a request (dead, or
        # hostile) is closed after the idle time; one whose requests are
        # complete is not, however long our answers take.
        s2 = Server(binary, "-i", "300")
        try:
            quiet = Raw(s2.port)
            quiet.request(1, TEST + "Echo", grpc_msg(b"x" * 100)[:50],
                          end=False)
            waiting = Raw(s2.port)
            waiting.request(1, TEST + "Slow", grpc_msg(b"900"))
            t0 = time.monotonic()
            frames, closed = quiet.wait_closed(timeout=5)
            took = time.monotonic() - t0
            expect(closed and any(f[0] == GOAWAY for f in frames),
                   "a peer quiet mid-request was not closed with GOAWAY")
            expect(0.25 < took < 2, "closed after %.2f s, idle time 0.3 s"
                   % took)
            resp = waiting.response(1, timeout=5)
            expect(status_of(resp) == 0 and resp["goaway"] is None,
                   "a complete request waiting 0.9 s for its answer: %s" %
                   resp)
            quiet.close()
            waiting.close()
            expect(s2.alive(), "the server died")
        finally:
            s2.stop()
    check("a peer quiet in the middle of a request is closed after the "
          "idle time; one waiting for an answer is not", stalled)

    def ipv6():
        try:
            s2 = Server(binary, "-a", "::1")
        except RuntimeError as e:
            if "Cannot assign" in str(e) or "not available" in str(e):
                return      # no IPv6 loopback on this machine
            raise
        try:
            c = grpc.insecure_channel("[::1]:%d" % s2.port)
            grpc.channel_ready_future(c).result(timeout=10)
            expect(stub(c, TEST + "Echo")(b"v6", timeout=5) == b"v6",
                   "no echo over IPv6")
            c.close()
        finally:
            s2.stop()
    check("an IPv6 literal listen address", ipv6)

    def graceful_shutdown():
        r = Raw(srv.port)
        r.request(1, TEST + "Echo", grpc_msg(b"warm"))
        expect(status_of(r.response(1)) == 0, "no warm-up echo")
        pending = slow.future(b"700", timeout=10)
        r.request(3, TEST + "Slow", grpc_msg(b"700"))
        time.sleep(0.2)
        srv.proc.send_signal(signal.SIGTERM)
        resp = r.response(3, timeout=5)
        expect(resp["goaway"] is not None and resp["goaway"][1] == 0,
               "no GOAWAY(NO_ERROR): %s" % resp)
        expect(status_of(resp) == 0 and resp["data"] ==
               grpc_msg(b"slept 700"), "the in-flight call did not finish: "
               "%s" % resp)
        expect(pending.result() == b"slept 700", "grpcio's in-flight call")
        frames, closed = r.wait_closed()
        expect(closed, "the connection was not closed after the drain")
        r.close()
        rc = srv.proc.wait(10)
        expect(rc == 0, "exit status %s" % rc)
    check("SIGTERM: GOAWAY, in-flight calls finish, exit 0",
          graceful_shutdown)

    ch.close()
    srv.stop()

    def sanitizers():
        bad = srv.sanitizer_report()
        expect(not bad, "\n".join(bad[:20]))
    check("no sanitizer report in the server's log", sanitizers)

    print("%d passed, %d failed" % (PASSED, FAILED))
    sys.exit(1 if FAILED else 0)


if __name__ == "__main__":
    main()
