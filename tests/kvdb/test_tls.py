#!/usr/bin/python3
"""TLS, mutual TLS and connection admission on kvdb's gRPC port.

Certificates are made here with openssl(1) in a temporary directory (a CA,
a server certificate for 127.0.0.1 and localhost, a client certificate, an
untrusted CA with its own client certificate); no key is ever committed.
Each server runs on a free loopback port and is stopped at the end.

Covered: server-only TLS and mutual TLS with stock grpcio; with
--tls-client-ca a client with no certificate, an untrusted one, and a
plaintext client refused, each with its log line, while a good client on
another connection goes on being served; TLS 1.2 with ALPN h2 through
openssl s_client, TLS 1.1 refused; SIGHUP swaps in a new certificate for
new connections while an open one keeps working, and a broken file keeps
the old one; dsd-cli over mTLS; a 3-node kvdb-replicated cluster with TLS
client ports taking a write through a follower (forwarded over TLS); and
slowloris: more idle sockets than --max-connections, then a real client
is answered quickly and the log tells of the evictions.
Prints "ok - ..." lines and "N passed, M failed".

usage: test_tls.py [path/to/dsd]
"""
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import grpc

from kvclient import Server, Client, check, finish, free_port, SUCCESS

DSD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "src", "dsd"))
TOP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
CLI = os.path.join(TOP, "tools", "dsd-cli")


# -- certificates ---------------------------------------------------------------

def openssl(*args):
    subprocess.run(["openssl"] + list(args), check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class Certs:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="dsd-tls-test.")
        ext = self.p("ext.cnf")
        with open(ext, "w") as f:
            f.write("[srv]\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n"
                    "extendedKeyUsage=serverAuth,clientAuth\n"
                    "[cli]\nextendedKeyUsage=clientAuth\n")
        self.ca("ca")
        self.ca("evilca")
        self.leaf("srv", "ca", "server-one", 4097, "srv")
        self.leaf("srv2", "ca", "server-two", 8194, "srv")
        self.leaf("cli", "ca", "client-one", 5, "cli")
        self.leaf("evil", "evilca", "client-evil", 6, "cli")

    def p(self, name):
        return os.path.join(self.dir, name)

    def ca(self, name):
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt",
                "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                self.p(name + ".key"), "-out", self.p(name + ".pem"),
                "-days", "2", "-subj", "/CN=" + name)

    def leaf(self, name, ca, cn, serial, ext):
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-keyout", self.p(name + ".key"), "-out",
                self.p(name + ".csr"), "-subj", "/CN=" + cn)
        openssl("x509", "-req", "-in", self.p(name + ".csr"), "-CA",
                self.p(ca + ".pem"), "-CAkey", self.p(ca + ".key"),
                "-set_serial", str(serial), "-days", "2", "-extfile",
                self.p("ext.cnf"), "-extensions", ext, "-out",
                self.p(name + ".pem"))

    def read(self, name):
        with open(self.p(name), "rb") as f:
            return f.read()

    def creds(self, client=None, ca="ca"):
        if client is None:
            return grpc.ssl_channel_credentials(self.read(ca + ".pem"))
        return grpc.ssl_channel_credentials(
            self.read(ca + ".pem"), self.read(client + ".key"),
            self.read(client + ".pem"))


def s_client(port, *args, stdin=b""):
    """openssl s_client's output (stdout + stderr) and exit status."""
    p = subprocess.run(["openssl", "s_client", "-connect",
                        "127.0.0.1:%d" % port] + list(args), input=stdin,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=10)
    return p.stdout.decode(errors="replace"), p.returncode


def serial_seen(port, certs):
    out, _ = s_client(port, "-alpn", "h2", "-CAfile", certs.p("ca.pem"),
                      "-cert", certs.p("cli.pem"), "-key",
                      certs.p("cli.key"), "-showcerts")
    pem = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----",
                    out, re.S)
    if pem is None:
        return None
    p = subprocess.run(["openssl", "x509", "-noout", "-serial"],
                       input=pem.group(0).encode(), stdout=subprocess.PIPE)
    return p.stdout.decode().strip()


def fails(fn):
    """The exception fn raised, or None if it did not."""
    try:
        fn()
    except Exception as e:         # grpc.RpcError, FutureTimeoutError...
        return e
    return None


# -- the checks -----------------------------------------------------------------

def test_server_only(certs):
    srv = Server(DSD, ["--tls-cert", certs.p("srv.pem"), "--tls-key",
                       certs.p("srv.key")])
    check("kvdb starts with --tls-cert/--tls-key", srv.wait_port(),
          srv.logtext())
    try:
        c = Client(srv.addr, creds=certs.creds(), timeout=5)
        r1 = c.set(1, 10, b"over tls")
        r2 = c.get(1)
        check("server-only TLS: set/get round trip",
              r1.status == SUCCESS and r2.value is not None and
              r2.value[2] == b"over tls", (r1, r2))
        c.close()
    except Exception as e:
        check("server-only TLS: set/get round trip", False, repr(e))
    e = fails(lambda: Client(srv.addr, creds=certs.creds(ca="evilca"),
                             timeout=2).get(1))
    check("a client that does not trust the server's CA cannot connect",
          e is not None, e)
    srv.stop()
    srv.cleanup()


def test_mutual(certs):
    srv = Server(DSD, ["--tls-cert", certs.p("srv.pem"), "--tls-key",
                       certs.p("srv.key"), "--tls-client-ca",
                       certs.p("ca.pem")])
    check("kvdb starts with --tls-client-ca", srv.wait_port(), srv.logtext())
    good = Client(srv.addr, creds=certs.creds("cli"), timeout=5)
    r = good.set(2, 10, b"mtls")
    check("mTLS: a client with a certificate from the CA is served",
          r.status == SUCCESS, r)

    # A good client keeps calling on its own connection while the bad
    # ones come and go.
    stop = threading.Event()
    good_errors, good_calls = [], [0]

    def hammer():
        while not stop.is_set():
            try:
                good.get(2)
                good_calls[0] += 1
            except Exception as e:
                good_errors.append(e)
            time.sleep(0.005)
    t = threading.Thread(target=hammer)
    t.start()

    e = fails(lambda: Client(srv.addr, creds=certs.creds(), timeout=2)
              .get(2))
    check("mTLS: a client without a certificate is refused", e is not None, e)
    check("  ... and the log says why",
          srv.wait_log(r"tls 127\.0\.0\.1:\d+: handshake failed: .*"
                       r"no client certificate"), srv.logtext()[-2000:])
    e = fails(lambda: Client(srv.addr, creds=certs.creds("evil"),
                             timeout=2).get(2))
    check("mTLS: a client certificate from another CA is refused",
          e is not None, e)
    check("  ... and the log says certificate verify failed",
          srv.wait_log(r"tls 127\.0\.0\.1:\d+: handshake failed: "
                       r"certificate verify failed"), srv.logtext()[-2000:])
    e = fails(lambda: Client(srv.addr, timeout=2).get(2))
    check("mTLS: a plaintext client is refused", e is not None, e)
    check("  ... and the log says plain text on a TLS port",
          srv.wait_log(r"tls 127\.0\.0\.1:\d+: handshake failed: .*"
                       r"plain text on a TLS port"), srv.logtext()[-2000:])
    time.sleep(0.2)
    stop.set()
    t.join()
    check("mTLS: the good client was served all along (%d calls)" %
          good_calls[0], not good_errors and good_calls[0] > 10,
          good_errors[:3])

    # TLS 1.2 with ALPN h2, and nothing older.
    out, _ = s_client(srv.port, "-tls1_2", "-alpn", "h2", "-CAfile",
                      certs.p("ca.pem"), "-cert", certs.p("cli.pem"),
                      "-key", certs.p("cli.key"))
    check("TLS 1.2 handshake with ALPN h2",
          "Protocol  : TLSv1.2" in out and "ALPN protocol: h2" in out and
          "Verify return code: 0" in out, out[-1500:])
    out, _ = s_client(srv.port, "-tls1_1", "-alpn", "h2", "-cipher",
                      "DEFAULT@SECLEVEL=0", "-cert", certs.p("cli.pem"),
                      "-key", certs.p("cli.key"))
    check("TLS 1.1 is refused", "ALPN protocol: h2" not in out and
          ("alert protocol version" in out or "no protocols available" in out
           or "unsupported protocol" in out), out[-800:])
    out, _ = s_client(srv.port, "-alpn", "http/1.1", "-CAfile",
                      certs.p("ca.pem"), "-cert", certs.p("cli.pem"),
                      "-key", certs.p("cli.key"))
    check("a client offering ALPN without h2 is refused",
          "no application protocol" in out, out[-800:])
    check("  ... and the log says ALPN h2",
          srv.wait_log(r"handshake failed: .*ALPN h2"), srv.logtext()[-2000:])

    # dsd-cli over mTLS.
    tls = ["--tls-ca=" + certs.p("ca.pem"), "--tls-cert=" + certs.p("cli.pem"),
           "--tls-key=" + certs.p("cli.key")]
    p = subprocess.run([CLI, "-a", srv.addr] + tls + ["set", "3", "cli"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=20)
    q = subprocess.run([CLI, "-a", srv.addr] + tls + ["get", "3"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=20)
    check("dsd-cli --tls-ca/--tls-cert/--tls-key: set and get",
          p.returncode == 0 and q.returncode == 0 and
          b"data: cli" in q.stdout, p.stdout + q.stdout)
    p = subprocess.run([CLI, "-a", srv.addr, "--retry-time=0",
                        "--tls-ca=" + certs.p("ca.pem"), "get", "3"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=20)
    check("dsd-cli without a client certificate fails, saying so",
          p.returncode != 0 and b"TLS" in p.stdout, p.stdout)
    p = subprocess.run([CLI, "-a", "localhost:%d" % srv.port,
                        "--retry-time=0", "--tls-server-name=wrong.example"]
                       + tls + ["get", "3"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=20)
    check("dsd-cli checks the server's name", p.returncode != 0 and
          b"hostname mismatch" in p.stdout, p.stdout)

    good.close()
    srv.stop()
    srv.cleanup()


def test_reload(certs):
    """An open connection stays, new ones see the new certificate, and a
    broken file keeps the old one."""
    shutil.copy(certs.p("srv.pem"), certs.p("live.pem"))
    shutil.copy(certs.p("srv.key"), certs.p("live.key"))
    srv = Server(DSD, ["--tls-cert", certs.p("live.pem"), "--tls-key",
                       certs.p("live.key"), "--tls-client-ca",
                       certs.p("ca.pem")])
    check("kvdb starts (reload test)", srv.wait_port(), srv.logtext())
    c = Client(srv.addr, creds=certs.creds("cli"), timeout=5)
    c.set(4, 1, b"before")
    check("serial 1001 before SIGHUP",
          serial_seen(srv.port, certs) == "serial=1001")
    shutil.copy(certs.p("srv2.pem"), certs.p("live.pem"))
    shutil.copy(certs.p("srv2.key"), certs.p("live.key"))
    srv.proc.send_signal(signal.SIGHUP)
    check("SIGHUP: the log names the new certificate",
          srv.wait_log(r"certificate .*server-two, serial 2002"),
          srv.logtext()[-1500:])
    r = fails(lambda: c.get(4))
    check("SIGHUP: the connection opened before goes on", r is None, r)
    check("SIGHUP: a new connection sees the new certificate (serial 2002)",
          serial_seen(srv.port, certs) == "serial=2002")
    c2 = Client(srv.addr, creds=certs.creds("cli"), timeout=5)
    check("SIGHUP: a new gRPC client is served",
          c2.get(4).value[2] == b"before")
    with open(certs.p("live.pem"), "w") as f:
        f.write("-----BEGIN CERTIFICATE-----\nbroken\n")
    srv.proc.send_signal(signal.SIGHUP)
    check("SIGHUP with a broken certificate: an error is logged",
          srv.wait_log(r"reload failed; still serving with the certificate "
                       r"loaded before"), srv.logtext()[-1500:])
    check("  ... the server is still up and serves the old certificate",
          srv.proc.poll() is None and
          serial_seen(srv.port, certs) == "serial=2002")
    c3 = Client(srv.addr, creds=certs.creds("cli"), timeout=5)
    check("  ... and new gRPC clients", c3.get(4).status == SUCCESS)
    for x in (c, c2, c3):
        x.close()
    check("kvdb stops cleanly on SIGTERM", srv.stop() == 0,
          srv.logtext()[-1500:])
    srv.cleanup()


def test_replicated(certs):
    ports = [(free_port(), free_port()) for _ in range(3)]
    spec = ",".join("%d=127.0.0.1:%d/127.0.0.1:%d" % (i + 1, r, c)
                    for i, (r, c) in enumerate(ports))
    tls = ["--tls-cert", certs.p("srv.pem"), "--tls-key", certs.p("srv.key"),
           "--tls-client-ca", certs.p("ca.pem")]
    nodes = [Server(DSD, ["--node-id=%d" % (i + 1), "--cluster=" + spec,
                          "--election-timeout=300"] + tls,
                    mode="kvdb-replicated", port=c)
             for i, (r, c) in enumerate(ports)]
    for n in nodes:
        n.wait_port()
    leader = None
    deadline = time.time() + 20
    while leader is None and time.time() < deadline:
        for i, n in enumerate(nodes):
            try:
                st = Client(n.addr, creds=certs.creds("cli"),
                            timeout=2).status(timeout=2)
                if st["state"] == "leader":
                    leader = i
            except Exception:
                pass
        time.sleep(0.2)
    check("kvdb-replicated with TLS client ports elects a leader",
          leader is not None, [n.logtext()[-800:] for n in nodes])
    if leader is not None:
        f = (leader + 1) % 3
        r = None
        deadline = time.time() + 15
        while time.time() < deadline:
            try:
                r = Client(nodes[f].addr, creds=certs.creds("cli"),
                           timeout=3).set(9, 1, b"via follower")
                break
            except Exception as e:
                r = e
                time.sleep(0.3)
        check("a write through a follower is forwarded over TLS",
              getattr(r, "status", None) == SUCCESS, r)
        g = Client(nodes[leader].addr, creds=certs.creds("cli"), timeout=3)
        v = g.get(9).value
        check("  ... and the leader has it", v is not None and
              v[2] == b"via follower", v)
        check("  ... no TLS failure logged on the leader",
              "handshake failed" not in nodes[leader].logtext(),
              [l[-200:] for l in nodes[leader].logtext().splitlines()
               if "tls" in l])
    for n in nodes:
        n.stop()
        n.cleanup()


def test_slowloris(certs, use_tls):
    limit = 64
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4 * limit + 64:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    args = ["--max-connections=%d" % limit, "--handshake-timeout=3000"]
    if use_tls:
        args += ["--tls-cert", certs.p("srv.pem"), "--tls-key",
                 certs.p("srv.key")]
    what = "TLS" if use_tls else "clear text"
    srv = Server(DSD, args)
    check("kvdb starts with --max-connections=%d (%s)" % (limit, what),
          srv.wait_port(), srv.logtext())
    idle = []
    for _ in range(limit + 40):
        try:
            idle.append(socket.create_connection(("127.0.0.1", srv.port), 2))
        except OSError:
            break
    time.sleep(0.3)
    t0 = time.time()
    try:
        c = Client(srv.addr, creds=certs.creds() if use_tls else None,
                   timeout=3)
        r = c.set(5, 1, b"admitted")
        ok = r.status == SUCCESS
        c.close()
    except Exception as e:
        ok, r = False, e
    took = time.time() - t0
    check("%s: with %d idle sockets past the limit a real client is "
          "answered in %.3f s" % (what, len(idle), took),
          ok and took < 1.0, r)
    check("%s: the log tells of handshakes closed to admit others" % what,
          srv.wait_log(r"at the limit of %d connections .*closing "
                       r"127\.0\.0\.1:\d+, connected \d+ ms ago and still "
                       r"in its handshake" % limit), srv.logtext()[-1500:])
    check("%s: idle sockets are closed after --handshake-timeout" % what,
          srv.wait_log(r"not complete after 3000 ms", timeout=6),
          srv.logtext()[-1500:])
    for s in idle:
        s.close()
    srv.stop()
    srv.cleanup()


def main():
    certs = Certs()
    try:
        test_server_only(certs)
        test_mutual(certs)
        test_reload(certs)
        test_replicated(certs)
        test_slowloris(certs, False)
        test_slowloris(certs, True)
    finally:
        shutil.rmtree(certs.dir, ignore_errors=True)
    finish()


main()
