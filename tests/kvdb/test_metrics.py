#!/usr/bin/python3
"""The Prometheus page of kvdb and kvdb-replicated (--metrics-listen).

A kvdb on free loopback ports is scraped before, during and after a load of
every method with every outcome, from a few clients at once.  Each scrape
must be the text exposition format 0.0.4 as a strict parser here reads it:
a # TYPE for every sample's family and none twice, valid names and labels,
a family's samples together, histogram buckets cumulative up to le="+Inf"
equal to _count; and no counter may go down from one scrape to the next.
The counts by method and status must have moved by exactly what the load
did, the keys and value bytes must be what is stored, the log's bytes and
syncs must have grown, a snapshot (--snapshot-interval=1) must show in the
snapshot metrics, and refusals (a key over --max-key-bytes, a message over
--max-message, a connection past --max-connections, an unknown method) in
theirs.  Another path gets 404, another method 405, and a malformed HTTP
request leaves gRPC and /metrics served.  Then a three-node kvdb-replicated
cluster, started as test_replicated.py starts one: each node serves its
page, a follower counts the calls it passed to the leader (the leader does
not count them again), and the Raft gauges name the leader.
Prints "ok - ..." lines and "N passed, M failed".

usage: test_metrics.py [path/to/dsd]
"""
import concurrent.futures
import http.client
import math
import os
import re
import socket
import sys
import threading
import time

import grpc

from kvclient import (Client, Server, check, finish, free_port, SUCCESS,
                      ERROR, ERROR_NE, ERROR_WV)
from test_replicated import Cluster

DSD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "src", "dsd"))

CTYPE = "text/plain; version=0.0.4; charset=utf-8"
STATUS = {SUCCESS: "SUCCESS", ERROR: "ERROR", ERROR_NE: "ERROR_NE",
          ERROR_WV: "ERROR_WV"}


# -- the exposition format, strictly -------------------------------------------

METRIC = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")


def parse_value(s):
    if s in ("+Inf", "-Inf", "NaN"):
        return float(s.replace("Inf", "inf").replace("NaN", "nan"))
    if not re.fullmatch(r"[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?",
                        s):
        raise ValueError("bad value %r" % s)
    return float(s)


def parse_labels(s, i):
    """The labels of a sample from s[i] (just past '{'): a dict and the
    index past '}'."""
    labels = {}
    while True:
        if s[i] == "}":
            return labels, i + 1
        m = LABEL.match(s, i)
        if not m or s[m.end():m.end() + 2] != '="':
            raise ValueError("bad label at %r" % s[i:])
        name, i = m.group(0), m.end() + 2
        if name.startswith("__"):
            raise ValueError("reserved label name %s" % name)
        v = []
        while s[i] != '"':
            if s[i] == "\\":
                esc = s[i + 1]
                if esc not in ('\\', '"', 'n'):
                    raise ValueError("bad escape \\%s" % esc)
                v.append("\n" if esc == "n" else esc)
                i += 2
            else:
                if s[i] == "\n":
                    raise ValueError("newline in a label value")
                v.append(s[i])
                i += 1
        if name in labels:
            raise ValueError("label %s twice" % name)
        labels[name] = "".join(v)
        i += 1
        if s[i] == ",":
            i += 1
        elif s[i] != "}":
            raise ValueError("expected , or } at %r" % s[i:])


def family_of(name, types):
    """The family a sample name belongs to (a histogram's _bucket, _sum and
    _count belong to it), or None."""
    if name in types:
        return name
    for suffix in ("_bucket", "_sum", "_count"):
        base = name[:-len(suffix)]
        if name.endswith(suffix) and types.get(base) == "histogram":
            return base
    return None


def parse_exposition(text):
    """({(name, frozenset of labels): value}, {family: type}); raises
    ValueError naming the line for anything out of the format."""
    if not text.endswith("\n"):
        raise ValueError("the page does not end with a newline")
    samples, types, helps, done = {}, {}, set(), set()
    current = None
    for n, line in enumerate(text[:-1].split("\n"), 1):
        try:
            if line.startswith("#"):
                parts = line.split(" ", 3)
                if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                    name = parts[2]
                    if not METRIC.fullmatch(name):
                        raise ValueError("bad metric name %r" % name)
                    if parts[1] == "HELP":
                        if name in helps:
                            raise ValueError("second HELP for " + name)
                        helps.add(name)
                    else:
                        if len(parts) != 4 or parts[3] not in TYPES:
                            raise ValueError("bad TYPE line")
                        if name in types:
                            raise ValueError("second TYPE for " + name)
                        if any(family_of(k[0], {name: parts[3]}) == name
                               for k in samples):
                            raise ValueError("TYPE after samples of " + name)
                        types[name] = parts[3]
                continue
            if not line:
                continue
            m = METRIC.match(line)
            if not m:
                raise ValueError("bad sample")
            name, i = m.group(0), m.end()
            labels = {}
            if i < len(line) and line[i] == "{":
                labels, i = parse_labels(line + "\n", i + 1)
            rest = line[i:].split(" ")
            if rest[0] != "" or len(rest) not in (2, 3):
                raise ValueError("bad sample")
            value = parse_value(rest[1])
            if len(rest) == 3:
                int(rest[2])        # a timestamp, in ms
            fam = family_of(name, types)
            if fam is None:
                raise ValueError("no # TYPE for " + name)
            if fam != current:
                if fam in done:
                    raise ValueError("samples of %s not together" % fam)
                if current is not None:
                    done.add(current)
                current = fam
            if types[fam] == "counter" and value < 0:
                raise ValueError("negative counter")
            key = (name, frozenset(labels.items()))
            if key in samples:
                raise ValueError("sample twice")
            samples[key] = value
        except (ValueError, IndexError) as e:
            raise ValueError("line %d %r: %s" % (n, line, e))
    check_histograms(samples, types)
    return samples, types


def check_histograms(samples, types):
    for fam, t in types.items():
        if t != "histogram":
            continue
        series = {}
        for (name, labels), v in samples.items():
            if name == fam + "_bucket":
                d = dict(labels)
                le = d.pop("le", None)
                if le is None:
                    raise ValueError("%s bucket without le" % fam)
                series.setdefault(frozenset(d.items()), []).append(
                    (parse_value(le), v))
        for other, v in samples.items():
            if other[0] in (fam + "_sum", fam + "_count") and \
                    other[1] not in series:
                raise ValueError("%s without buckets" % other[0])
        for labels, buckets in series.items():
            buckets.sort()
            if buckets[-1][0] != math.inf:
                raise ValueError("%s%s: no le=\"+Inf\"" % (fam, dict(labels)))
            counts = [c for _, c in buckets]
            if counts != sorted(counts):
                raise ValueError("%s%s: buckets not cumulative" %
                                 (fam, dict(labels)))
            count = samples.get((fam + "_count", labels))
            if count != buckets[-1][1] or \
                    (fam + "_sum", labels) not in samples:
                raise ValueError("%s%s: +Inf %s, _count %s" %
                                 (fam, dict(labels), buckets[-1][1], count))


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())), 0)


def counters_never_down(old, new, types):
    """The samples of counters and histograms that went down (or went
    away) from the page old to the page new."""
    down = []
    for key, v in old.items():
        if types.get(family_of(key[0], types)) in ("counter", "histogram") \
                and new.get(key, -1) < v:
            down.append((key, v, new.get(key)))
    return down


# -- talking to the page ---------------------------------------------------------

def http_get(port, path="/metrics", method="GET"):
    """(status, headers dict, body text) of one request."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path)
        r = conn.getresponse()
        return r.status, dict(r.getheaders()), r.read().decode()
    finally:
        conn.close()


def scrape(port):
    status, headers, body = http_get(port)
    if status != 200:
        raise ValueError("GET /metrics: %d" % status)
    return parse_exposition(body)[0], headers


def h2_settled(port):
    """A raw connection that has sent the HTTP/2 preface and SETTINGS and
    seen the server acknowledge them: one the server counts as serving."""
    s = socket.create_connection(("127.0.0.1", port), 5)
    s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" +
              b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
    buf = b""
    deadline = time.time() + 5
    while time.time() < deadline:
        while len(buf) >= 9:
            ln = int.from_bytes(buf[:3], "big")
            if len(buf) < 9 + ln:
                break
            if buf[3] == 4 and buf[4] & 1:      # SETTINGS with ACK
                return s
            buf = buf[9 + ln:]
        chunk = s.recv(4096)
        if not chunk:
            break
        buf += chunk
    s.close()
    return None


def closed_by_peer(s, timeout=5):
    s.settimeout(timeout)
    try:
        while s.recv(4096):
            pass
        return True
    except (socket.timeout, ConnectionResetError):
        return False


# -- kvdb ------------------------------------------------------------------------

# The load: keys 1..N, each value DATA bytes, keys from MISSING up absent.
N = 400
DATA = 16
MISSING = 100000
KEPT = N - 100 - 200        # deleted by delVersion, by del


def load(c_for):
    """Every method with every outcome it can have, 250 to 500 calls of
    each, keys split among four clients so that calls run at once.
    Returns {(method, status): calls}."""
    want = {}

    def note(method, r, expect):
        if r.status != expect:
            raise AssertionError("%s: %r, wanted %s" % (method, r,
                                                        STATUS[expect]))
        want[(method, STATUS[expect])] = want.get(
            (method, STATUS[expect]), 0) + 1

    def data(k):
        return (b"v%d" % k).ljust(DATA, b".")

    def part(c, ks):
        out = []
        for k in ks:
            out.append(("set", c.set(k, k, data(k)), SUCCESS))
        for k in ks:
            if k <= 100:
                out.append(("set", c.set(k, 0, data(k)), ERROR))
            out.append(("get", c.get(k), SUCCESS))
            if k <= 100:
                # A get of an absent key is ERROR in kvdb's semantics
                # (test_semantics in kvclient.py); ERROR_NE is for
                # testAndSet and delVersion of an absent key.
                out.append(("get", c.get(MISSING + k), ERROR))
            if k <= 200:
                out.append(("test_and_set", c.tas(k, k, data(k), 1),
                            SUCCESS))
            elif k <= 300:
                out.append(("test_and_set", c.tas(k, k, data(k), 7),
                            ERROR_WV))
            if k <= 50:
                out.append(("test_and_set", c.tas(MISSING + k, 1, b"x", 1),
                            ERROR_NE))
                out.append(("del_version", c.delv(MISSING + k, 1),
                            ERROR_NE))
                out.append(("del", c.delete(MISSING + k), ERROR))
            if k <= 100:
                out.append(("del_version", c.delv(k, 2), SUCCESS))
            elif k > 300:
                out.append(("del_version", c.delv(k, 9), ERROR_WV))
            if 100 < k <= 300:
                out.append(("del", c.delete(k), SUCCESS))
        return out

    keys = list(range(1, N + 1))
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        futs = [ex.submit(part, c_for(i), keys[i::4]) for i in range(4)]
        for f in futs:
            for method, r, expect in f.result():
                note(method, r, expect)
    return want


def test_kvdb():
    mport = free_port()
    srv = Server(DSD, ["--metrics-listen=127.0.0.1:%d" % mport,
                       "--snapshot-interval=1", "--max-key-bytes=64",
                       "--max-message=4096", "--max-connections=8"])
    clients = []
    try:
        kvdb_checks(srv, mport, clients)
    finally:
        # Also after a page that did not parse ended the checks.
        for cl in clients:
            cl.close()
        check("kvdb exits 0 on SIGTERM", srv.stop() == 0,
              srv.logtext()[-1500:])
        srv.cleanup()


def kvdb_checks(srv, mport, clients):
    started = time.time()
    check("kvdb starts with --metrics-listen", srv.wait_port(),
          srv.logtext())
    check("its start-up line names the page",
          srv.wait_log(r"metrics on http://127\.0\.0\.1:%d/metrics" % mport),
          srv.logtext()[-1000:])

    status, headers, body = http_get(mport)
    check("GET /metrics: 200, Content-Type %s" % CTYPE,
          status == 200 and headers.get("Content-Type") == CTYPE,
          (status, headers))
    try:
        before, types = parse_exposition(body)
        ok = True
    except ValueError as e:
        before, types, ok = {}, {}, False
        body = str(e)
    check("the first page parses as the exposition format", ok, body)
    want = {
        "dsd_requests_total": "counter", "dsd_grpc_errors_total": "counter",
        "dsd_request_duration_seconds": "histogram",
        "dsd_connections": "gauge", "dsd_streams": "gauge",
        "dsd_connections_accepted_total": "counter",
        "dsd_requests_refused_total": "counter", "dsd_keys": "gauge",
        "dsd_value_bytes": "gauge", "dsd_wal_bytes_written_total": "counter",
        "dsd_wal_fsyncs_total": "counter",
        "dsd_wal_fsync_duration_seconds": "histogram",
        "dsd_snapshots_total": "counter",
        "dsd_snapshot_duration_seconds": "histogram",
        "dsd_snapshot_size_bytes": "gauge",
        "dsd_snapshot_last_success_timestamp_seconds": "gauge",
        "process_cpu_seconds_total": "counter",
        "process_resident_memory_bytes": "gauge",
        "process_open_fds": "gauge", "process_max_fds": "gauge",
        "process_start_time_seconds": "gauge"}
    missing = {k: v for k, v in want.items() if types.get(k) != v}
    check("every family is there with its type", not missing, missing)
    check("process metrics: memory, descriptors, a start time just now",
          value(before, "process_resident_memory_bytes") > 1 << 20 and
          0 < value(before, "process_open_fds") <
          value(before, "process_max_fds") and
          abs(value(before, "process_start_time_seconds") - started) < 30,
          [(k, v) for k, v in before.items() if k[0].startswith("process")])
    check("a new server has answered nothing and holds no key",
          sum(v for k, v in before.items()
              if k[0] == "dsd_requests_total") == 0 and
          value(before, "dsd_keys") == 0)

    # The load, scraped all the while by a thread of its own.
    pages, errors, stop = [], [], threading.Event()

    def scraper():
        while not stop.is_set():
            try:
                pages.append(scrape(mport)[0])
            except Exception as e:      # ValueError, OSError
                errors.append(repr(e))
            time.sleep(0.02)
    t = threading.Thread(target=scraper)
    t.start()
    clients += [Client(srv.addr) for _ in range(4)]
    try:
        did = load(lambda i: clients[i])
        loaded = True
    except Exception as e:      # AssertionError, grpc.RpcError
        did, loaded = {}, False
        errors.append(repr(e))
    stop.set()
    t.join()
    after, _ = scrape(mport)
    pages.append(after)
    check("the load ran, every call with the status it should have",
          loaded, errors[:3])
    check("%d pages scraped during the load parse, and none failed" %
          len(pages), len(pages) >= 3 and not errors, errors[:3])
    down = []
    for a, b in zip([before] + pages, pages):
        down += counters_never_down(a, b, types)
    check("no counter went down from one scrape to the next", not down,
          down[:5])

    moved = {}
    for method in ("set", "get", "del", "del_version", "test_and_set"):
        for st in STATUS.values():
            d = value(after, "dsd_requests_total", method=method,
                      status=st) - value(before, "dsd_requests_total",
                                         method=method, status=st)
            if d != did.get((method, st), 0):
                moved[(method, st)] = (d, did.get((method, st), 0))
    check("dsd_requests_total moved by exactly the calls made, by method "
          "and status (%d calls)" % sum(did.values()),
          loaded and not moved, moved)
    check("  ... a failed testAndSet is ERROR_WV (100), a get of a missing "
          "key ERROR (100), testAndSet of a missing key ERROR_NE (50)",
          value(after, "dsd_requests_total", method="test_and_set",
                status="ERROR_WV") == 100 and
          value(after, "dsd_requests_total", method="get",
                status="ERROR") == 100 and
          value(after, "dsd_requests_total", method="test_and_set",
                status="ERROR_NE") == 50)
    sets = sum(n for (m, _), n in did.items() if m == "set")
    check("dsd_request_duration_seconds counted every set (%d)" % sets,
          value(after, "dsd_request_duration_seconds_count", method="set") -
          value(before, "dsd_request_duration_seconds_count",
                method="set") == sets and
          value(after, "dsd_request_duration_seconds_sum", method="set") > 0)
    kept = KEPT
    check("dsd_keys is what is stored (%d), dsd_value_bytes their data" %
          kept, value(after, "dsd_keys") == kept and
          value(after, "dsd_value_bytes") == kept * DATA,
          (value(after, "dsd_keys"), value(after, "dsd_value_bytes")))
    check("... and a Get of every key agrees",
          sum(clients[0].get(k).status == SUCCESS
              for k in range(1, N + 1)) == kept)
    check("the log's bytes and syncs grew, each sync timed",
          value(after, "dsd_wal_bytes_written_total") >
          value(before, "dsd_wal_bytes_written_total") + kept * DATA and
          value(after, "dsd_wal_fsyncs_total") >
          value(before, "dsd_wal_fsyncs_total") and
          value(after, "dsd_wal_fsync_duration_seconds_count") >
          value(before, "dsd_wal_fsync_duration_seconds_count"))
    check("no stream is left open once the load is done",
          value(after, "dsd_streams") == 0)

    # A snapshot, from --snapshot-interval=1 now that the store changed.
    deadline = time.time() + 10
    snap = after
    while time.time() < deadline and \
            value(snap, "dsd_snapshots_total", result="success") == 0:
        time.sleep(0.2)
        snap = scrape(mport)[0]
    check("a snapshot shows: counted as success, timed, sized, stamped",
          value(snap, "dsd_snapshots_total", result="success") >= 1 and
          value(snap, "dsd_snapshots_total", result="failure") == 0 and
          value(snap, "dsd_snapshot_duration_seconds_count") >= 1 and
          value(snap, "dsd_snapshot_size_bytes") > 64 and
          started - 1 <= value(
              snap, "dsd_snapshot_last_success_timestamp_seconds") <=
          time.time() + 1,
          [(k, v) for k, v in snap.items() if "snapshot" in k[0]])

    # Refusals: each answered with its code, counted once as a gRPC error
    # of its method and, where a limit refused it, by that reason.
    c = clients[0]
    for what, call, code, method, reason in (
            ("a key over --max-key-bytes (126 bytes, over 64)",
             lambda: c.set(1 << 1000, 1, b"x"), "INVALID_ARGUMENT", "set",
             "max_key_bytes"),
            ("a message over --max-message",
             lambda: c.set(7, 1, b"y" * 5000), "RESOURCE_EXHAUSTED", "set",
             "max_message"),
            ("an unknown method", lambda: c.ch.unary_unary(
                "/dsd.kvdb.v1.KV/Nope")(b"", timeout=5), "UNIMPLEMENTED",
             "unknown", None)):
        r0, _ = scrape(mport)
        try:
            call()
            got = None
        except grpc.RpcError as e:
            got = e.code().name
        r, _ = scrape(mport)
        errors = value(r, "dsd_grpc_errors_total", method=method,
                       code=code) - value(r0, "dsd_grpc_errors_total",
                                          method=method, code=code)
        refused = 1 if reason is None else value(
            r, "dsd_requests_refused_total", reason=reason) - value(
            r0, "dsd_requests_refused_total", reason=reason)
        check("%s: %s, counted as method %s%s" % (
            what, code, method, "" if reason is None else
            ", reason " + reason), got == code and errors == refused == 1,
            (got, errors, refused))

    # --max-connections=8: the four clients and four raw HTTP/2
    # connections fill it; the next is refused and closed at once.
    base, _ = scrape(mport)
    raw = [h2_settled(srv.port) for _ in range(8 - int(
        value(base, "dsd_connections")))]
    full, _ = scrape(mport)
    extra = socket.create_connection(("127.0.0.1", srv.port), 5)
    refused = closed_by_peer(extra)
    extra.close()
    r, _ = scrape(mport)
    check("connections fill --max-connections: dsd_connections 8",
          all(raw) and value(full, "dsd_connections") == 8,
          value(full, "dsd_connections"))
    check("the next is refused: max_connections counted, accepted too",
          refused and value(r, "dsd_requests_refused_total",
                            reason="max_connections") == 1 and
          value(r, "dsd_connections_accepted_total") -
          value(base, "dsd_connections_accepted_total") == len(raw) + 1,
          (refused, value(r, "dsd_connections_accepted_total"),
           value(base, "dsd_connections_accepted_total"), len(raw)))
    for s in raw:
        if s:
            s.close()
    deadline = time.time() + 5
    while time.time() < deadline and value(scrape(mport)[0],
                                           "dsd_connections") != \
            value(base, "dsd_connections"):
        time.sleep(0.1)
    check("closed connections leave dsd_connections",
          value(scrape(mport)[0], "dsd_connections") ==
          value(base, "dsd_connections"))

    # Other paths and methods; a malformed request harms nothing.
    status, _, _ = http_get(mport, "/")
    status2, _, _ = http_get(mport, "/metrics/x")
    check("another path: 404", status == 404 and status2 == 404,
          (status, status2))
    status, headers, _ = http_get(mport, method="POST")
    check("POST /metrics: 405, Allow: GET",
          status == 405 and headers.get("Allow") == "GET", (status, headers))
    bad = socket.create_connection(("127.0.0.1", mport), 5)
    bad.sendall(b"\x16\x03\x01\x02\x00 GET\x00/metrics HTTP/9\r\n" +
                b"X" * 20000 + b"\r\n\r\n")
    answer = b""
    bad.settimeout(5)
    try:
        while True:
            chunk = bad.recv(4096)
            if not chunk:
                break
            answer += chunk
    except (socket.timeout, ConnectionResetError):
        pass
    bad.close()
    half = socket.create_connection(("127.0.0.1", mport), 5)
    half.sendall(b"GET /metr")      # and nothing more, left open
    try:
        ok_after = value(scrape(mport)[0], "dsd_keys") == KEPT and \
            clients[1].get(N).status == SUCCESS
    except Exception as e:      # ValueError, OSError, grpc.RpcError
        ok_after = repr(e)
    half.close()
    check("a malformed HTTP request gets a 4xx or a close, nothing more",
          answer == b"" or re.match(rb"HTTP/1\.[01] 4[0-9][0-9] ", answer),
          answer[:80])
    check("... and gRPC and /metrics are served after it, with a "
          "half-sent request still open", ok_after is True, ok_after)


# -- kvdb-replicated ----------------------------------------------------------

def test_replicated():
    c = Cluster(3)
    try:
        replicated_checks(c)
    finally:
        c.cleanup()


def replicated_checks(c):
    ports = {}
    for n in c.nodes:
        ports[n.id] = free_port()
        n.extra.append("--metrics-listen=127.0.0.1:%d" % ports[n.id])
    leader = c.start()
    check("kvdb-replicated: three nodes with --metrics-listen elect a leader",
          leader, c.logs())
    if not leader:
        return
    f = c.follower(leader)
    before = {n.id: scrape(ports[n.id])[0] for n in c.nodes}
    cl = f.cl()
    for k in range(1, 21):
        cl.set(k, k, b"r")
    gets = sum(cl.get(k).status == SUCCESS for k in range(1, 21))
    cl.close()
    c.converged()
    pages = {}
    try:
        pages = {n.id: scrape(ports[n.id])[0] for n in c.nodes}
        ok = True
    except ValueError as e:
        ok = repr(e)
    check("kvdb-replicated: every node's page parses", ok is True, ok)
    if ok is not True:
        return

    def moved(nid, method, st="SUCCESS"):
        return value(pages[nid], "dsd_requests_total", method=method,
                     status=st) - value(before[nid], "dsd_requests_total",
                                        method=method, status=st)
    check("the follower counts the 20 sets and 20 gets it passed on",
          moved(f.id, "set") == 20 and moved(f.id, "get") == gets == 20,
          (moved(f.id, "set"), moved(f.id, "get"), gets))
    check("the leader does not count them again",
          moved(leader.id, "set") == 0 and moved(leader.id, "get") == 0,
          (moved(leader.id, "set"), moved(leader.id, "get")))
    check("the follower also timed them, and served the leader's Forward",
          value(pages[f.id], "dsd_request_duration_seconds_count",
                method="set") >= 20 and
          value(pages[leader.id], "dsd_request_duration_seconds_count",
                method="forward") >= 1)
    terms = {value(p, "dsd_raft_term") for p in pages.values()}
    check("dsd_raft_is_leader is 1 on the leader only; one term on all",
          [value(pages[n.id], "dsd_raft_is_leader") for n in c.nodes] ==
          [1 if n is leader else 0 for n in c.nodes] and len(terms) == 1 and
          terms.pop() >= 1, {n.id: value(pages[n.id], "dsd_raft_is_leader")
                              for n in c.nodes})
    check("every node applied entries, no more than committed, and holds "
          "the 20 keys",
          all(value(p, "dsd_raft_applied_index") > 0 and
              value(p, "dsd_raft_commit_index") >=
              value(p, "dsd_raft_applied_index") and
              value(p, "dsd_keys") == 20 for p in pages.values()),
          {i: (value(p, "dsd_raft_applied_index"), value(p, "dsd_keys"))
           for i, p in pages.items()})
    rcs = c.stop()
    check("kvdb-replicated: every node exits 0 on SIGTERM",
          all(rc == 0 for rc in rcs.values()), rcs)


def main():
    # A page that does not parse ends the part that scraped it, as a
    # failed check rather than a traceback, and the other part still runs.
    for part in (test_kvdb, test_replicated):
        try:
            part()
        except ValueError as e:
            check("%s: every page parses" % part.__name__, False, e)
    finish()


main()
