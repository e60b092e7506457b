#!/usr/bin/python3
"""Write the seeds of fuzz_grpc: what a stock grpcio client sends on one
connection (less the HTTP/2 preface, which the target adds), recorded by a
proxy in front of a kvdb.  Run by hand from the top of a built tree:
    /usr/bin/python3 tests/fuzz/capture_grpc.py [NAME ...]
(the seeds named, or all of them).
"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "kvdb"))
from kvclient import Client, free_port  # noqa: E402

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
OUT = os.path.join(os.path.dirname(__file__), "corpus", "grpc")


def pump(src, dst, rec):
    while True:
        try:
            b = src.recv(65536)
        except OSError:
            b = b""
        if not b:
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            return
        if rec is not None:
            rec.append(b)
        dst.sendall(b)


def capture(name, server, calls):
    lsn = socket.socket()
    lsn.bind(("127.0.0.1", 0))
    lsn.listen(1)
    rec = []

    def proxy():
        c, _ = lsn.accept()
        s = socket.create_connection(server)
        t = threading.Thread(target=pump, args=(s, c, None))
        t.start()
        pump(c, s, rec)
        t.join()
        c.close()
        s.close()

    t = threading.Thread(target=proxy)
    t.start()
    cl = Client("127.0.0.1:%d" % lsn.getsockname()[1])
    calls(cl)
    cl.close()
    t.join(10)
    data = b"".join(rec)
    assert data.startswith(PREFACE), data[:30]
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data[len(PREFACE):])
    print(name, len(data) - len(PREFACE), "bytes")


def bad_message(c):
    try:
        c.raw("Set", b"\xff\xff\xff")
    except Exception:  # INVALID_ARGUMENT, as it should
        pass


def snapshot(c):
    """A write, then the online backup: a server-streaming call, so the
    fuzzer starts near the streaming path and its forked child."""
    c.set(7, 1, b"seven")
    call = c.ch.unary_stream("/dsd.kvdb.v1.Maintenance/Snapshot")
    for _ in call(b"", timeout=10):
        pass


SEEDS = {
    "set-get": lambda c: (c.set(5, 1, b"hello"), c.get(5)),
    "all-five": lambda c: (
        c.set(12345678901234567890, 7, b"x" * 100), c.get(-1),
        c.tas(12345678901234567890, 8, b"y", 1), c.delv(5, 1),
        c.delete(12345678901234567890)),
    "bad-message": bad_message,
    "snapshot": snapshot,
}


def main():
    top = tempfile.mkdtemp(prefix="dsd-capture.")
    port = free_port()
    p = subprocess.Popen(["src/dsd", "--mode=kvdb", "--listen=127.0.0.1:%d"
                          % port, "--data-dir=" + top, "--fsync=no"])
    time.sleep(0.5)
    srv = ("127.0.0.1", port)
    os.makedirs(OUT, exist_ok=True)
    for name in sys.argv[1:] or SEEDS:
        capture(name, srv, SEEDS[name])
    p.terminate()
    p.wait()
    shutil.rmtree(top, ignore_errors=True)


if __name__ == "__main__":
    main()
