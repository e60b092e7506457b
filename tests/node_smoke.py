#!/usr/bin/python3
"""Piped-JSON smoke tests of the Maelstrom node modes and their runtime.

These drive `dsd` directly over stdin/stdout, without the harness: init and
held messages, malformed input, long lines, end of input, signals, and the
per-mode basics.  The harness (tests/maelstrom/) runs the real workloads.
Usage: node_smoke.py [path/to/dsd]
"""
import json
import select
import os
import signal
import subprocess
import sys
import time

DSD = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "src", "dsd")
results = []


def check(name, cond, detail=""):
    results.append(bool(cond))
    print(("ok - " if cond else "not ok - ") + name +
          ("" if cond or not detail else " (" + str(detail)[:300] + ")"))


def env(src, dest, body):
    return json.dumps({"src": src, "dest": dest, "body": body})


def init(node="n0", nodes=("n0",)):
    return env("c0", node, {"type": "init", "msg_id": 1, "node_id": node,
                            "node_ids": list(nodes)})


def run(mode, lines, args=(), timeout=20):
    """Feed lines, close stdin, return (status, parsed stdout, stderr)."""
    p = subprocess.run([DSD, "--mode=" + mode, *args],
                       input=("\n".join(lines) + "\n").encode(),
                       capture_output=True, timeout=timeout)
    out, bad = [], []
    for raw in p.stdout.decode().splitlines():
        try:
            out.append(json.loads(raw))
        except ValueError:
            bad.append(raw)
    return p.returncode, out, p.stderr.decode(), bad


def replies_to(out, msg_id):
    return [m for m in out if m["body"].get("in_reply_to") == msg_id]


def test_echo():
    rc, out, err, bad = run("maelstrom-echo", [
        env("c1", "n0", {"type": "echo", "msg_id": 2, "echo": "early"}),
        init(),
        "this is not json",
        '{"src":"c1"}',
        env("c1", "n0", {"type": "echo", "msg_id": 3,
                         "echo": {"nested": [1, "x"]}}),
        env("c1", "n0", {"type": "frobnicate", "msg_id": 4}),
        env("c1", "n0", {"type": "echo", "msg_id": 5}),
    ])
    check("echo: exits 0 at end of input", rc == 0, rc)
    check("echo: stdout holds only JSON lines", not bad, bad)
    check("echo: every line has src and dest",
          all("src" in m and "dest" in m for m in out))
    ok = replies_to(out, 1)
    check("echo: init answered with init_ok",
          ok and ok[0]["body"]["type"] == "init_ok" and ok[0]["src"] == "n0")
    early = replies_to(out, 2)
    check("echo: a request before init is answered after init_ok",
          early and early[0]["body"] == {"type": "echo_ok", "echo": "early",
                                         "in_reply_to": 2,
                                         "msg_id": early[0]["body"]["msg_id"]}
          and out.index(early[0]) > out.index(ok[0]))
    r = replies_to(out, 3)
    check("echo: payload echoed unchanged",
          r and r[0]["body"]["echo"] == {"nested": [1, "x"]}, r)
    check("echo: malformed lines are logged, not fatal",
          "not valid JSON" in err and r)
    r = replies_to(out, 4)
    check("echo: unknown type gets error 10",
          r and r[0]["body"]["type"] == "error" and r[0]["body"]["code"] == 10, r)
    r = replies_to(out, 5)
    check("echo: echo without a payload gets error 12",
          r and r[0]["body"]["code"] == 12, r)
    ids = [m["body"]["msg_id"] for m in out]
    check("echo: msg_ids are unique and increasing", ids == sorted(set(ids)), ids)


def test_long_lines():
    big = "x" * (5 << 20)
    rc, out, err, bad = run("maelstrom-echo", [
        init(),
        env("c1", "n0", {"type": "echo", "msg_id": 2, "echo": big}),
    ])
    r = replies_to(out, 2)
    check("echo: a 5 MiB payload comes back intact",
          r and r[0]["body"]["echo"] == big)
    rc, out, err, bad = run("maelstrom-echo", [
        init(),
        env("c1", "n0", {"type": "echo", "msg_id": 2, "echo": "y" * 5000}),
        env("c1", "n0", {"type": "echo", "msg_id": 3, "echo": "after"}),
    ], args=["--max-line=2048"])
    check("echo: a line over --max-line is dropped and logged",
          not replies_to(out, 2) and "longer than 2048" in err, err)
    check("echo: the next line is still served",
          replies_to(out, 3) and rc == 0)


def test_signal():
    p = subprocess.Popen([DSD, "--mode=maelstrom-echo"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdin.write((init() + "\n").encode())
    p.stdin.flush()
    line = p.stdout.readline()
    time.sleep(0.1)
    p.send_signal(signal.SIGTERM)
    try:
        rc = p.wait(timeout=5)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = None
    check("echo: answers over a live pipe", b"init_ok" in line, line)
    check("echo: SIGTERM stops the node with status 0", rc == 0, rc)


def test_unique_ids():
    n, per = 3, 2000
    nodes = ["n%d" % i for i in range(n)]
    seen = []
    for run_no in range(2):           # the second run is a restart
        for node in nodes:
            lines = [init(node, nodes)] + [
                env("c1", node, {"type": "generate", "msg_id": 10 + i})
                for i in range(per)]
            rc, out, err, bad = run("unique-ids", lines)
            got = [m["body"]["id"] for m in out
                   if m["body"].get("type") == "generate_ok"]
            check("unique-ids: %s run %d answers every generate" % (node, run_no),
                  len(got) == per and rc == 0, (len(got), rc))
            seen += got
    keys = [json.dumps(i, sort_keys=True) for i in seen]
    check("unique-ids: %d ids from 3 nodes and a restart are distinct" %
          len(keys), len(set(keys)) == len(keys) == 2 * n * per)


class Live:
    """A node on live pipes, for modes that wait on services or peers:
    the test answers their requests itself."""

    def __init__(self, mode, node="n0", nodes=("n0",), args=()):
        self.p = subprocess.Popen([DSD, "--mode=" + mode, *args],
                                  stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL)
        self.node = node
        self.buf = b""
        self.send("c0", {"type": "init", "msg_id": 1, "node_id": node,
                         "node_ids": list(nodes)})
        self.expect(lambda m: m["body"].get("type") == "init_ok")

    def send(self, src, body):
        self.p.stdin.write((env(src, self.node, body) + "\n").encode())
        self.p.stdin.flush()

    def expect(self, pred, timeout=3.0):
        """The first message matching pred within timeout, or None;
        messages before it are returned in self.skipped.  Reads the pipe
        unbuffered, so select() sees every line still to be handled."""
        self.skipped = []
        end = time.monotonic() + timeout
        while True:
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                m = json.loads(line)
                if pred(m):
                    return m
                self.skipped.append(m)
            left = end - time.monotonic()
            if left <= 0 or not select.select([self.p.stdout], [], [],
                                              left)[0]:
                return None
            data = os.read(self.p.stdout.fileno(), 65536)
            if not data:
                return None
            self.buf += data

    def close(self):
        self.p.stdin.close()
        try:
            return self.p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.p.kill()
            return None


def to(dest, typ=None, key=None):
    """A predicate: a message to dest, of type typ, with key key."""
    return lambda m: (m["dest"] == dest and
                      (typ is None or m["body"].get("type") == typ) and
                      (key is None or m["body"].get("key") == key))


def reply_to(msg_id):
    return lambda m: m["body"].get("in_reply_to") == msg_id


def test_counter():
    n = Live("counter", "n0", ["n0", "n1"])
    n.send("c1", {"type": "add", "msg_id": 2, "delta": 3})
    w = n.expect(to("seq-kv", "write", "n0"))
    check("counter: an add writes the node's total to seq-kv",
          w and w["body"]["value"] == 3, w)
    n.send("c1", {"type": "add", "msg_id": 3, "delta": 4})
    early = n.expect(reply_to(2), timeout=0.3)
    check("counter: no add_ok before seq-kv has the add", early is None,
          early)
    n.send("seq-kv", {"type": "write_ok", "in_reply_to": w["body"]["msg_id"]})
    r = n.expect(reply_to(2))
    check("counter: add_ok once the write succeeds",
          r and r["body"]["type"] == "add_ok", r)
    w = n.expect(to("seq-kv", "write", "n0"))
    check("counter: adds that arrived meanwhile go in the next write",
          w and w["body"]["value"] == 7, w)
    n.send("seq-kv", {"type": "write_ok", "in_reply_to": w["body"]["msg_id"]})
    check("counter: the second add is acknowledged",
          n.expect(reply_to(3)) is not None)
    n.send("c1", {"type": "add", "msg_id": 4, "delta": 0})
    r = n.expect(reply_to(4))
    check("counter: a zero delta needs no write",
          r and r["body"]["type"] == "add_ok" and
          not [m for m in n.skipped if m["dest"] == "seq-kv"], n.skipped)

    n.send("c1", {"type": "read", "msg_id": 5})
    f = n.expect(to("seq-kv"))
    check("counter: a read first writes the fence key",
          f and f["body"]["type"] == "write" and
          f["body"]["key"] == "fence-n0", f)
    early = n.expect(to("seq-kv", "read"), timeout=0.3)
    check("counter: no key is read before the fence write succeeds",
          early is None, early)
    n.send("seq-kv", {"type": "write_ok", "in_reply_to": f["body"]["msg_id"]})
    rd = n.expect(to("seq-kv", "read"))
    check("counter: then the other nodes' keys are read",
          rd and rd["body"]["key"] == "n1", rd)
    n.send("seq-kv", {"type": "read_ok", "value": 5,
                      "in_reply_to": rd["body"]["msg_id"]})
    r = n.expect(reply_to(5))
    check("counter: a read sums the other keys and its own total",
          r and r["body"] == {"type": "read_ok", "value": 12,
                              "in_reply_to": 5, "msg_id": r["body"]["msg_id"]},
          r)
    n.send("c1", {"type": "read", "msg_id": 6})
    f2 = n.expect(to("seq-kv", "write"))
    check("counter: each fence writes a new value, so it is a real write",
          f2 and f2["body"]["value"] != f["body"]["value"], (f, f2))
    n.send("seq-kv", {"type": "write_ok", "in_reply_to": f2["body"]["msg_id"]})
    rd = n.expect(to("seq-kv", "read"))
    n.send("seq-kv", {"type": "error", "code": 20,
                      "in_reply_to": rd["body"]["msg_id"]})
    r = n.expect(reply_to(6))
    check("counter: a missing key counts as 0",
          r and r["body"].get("value") == 7, r)
    n.send("c1", {"type": "add", "msg_id": 7, "delta": -2})
    w = n.expect(to("seq-kv", "write", "n0"))
    check("counter: negative deltas (pn-counter) are written alike",
          w and w["body"]["value"] == 5, w)
    check("counter: exits 0 at end of input", n.close() == 0)

    # An unanswered write is retried, and the add is answered with an
    # indefinite error by --add-timeout.
    n = Live("counter", "n0", ["n0"], args=["--kv-timeout=100",
                                            "--add-timeout=400"])
    n.send("c1", {"type": "add", "msg_id": 2, "delta": 2})
    w1 = n.expect(to("seq-kv", "write"))
    w2 = n.expect(to("seq-kv", "write"))
    check("counter: a write that times out is retried",
          w1 and w2 and w2["body"]["value"] == 2, (w1, w2))
    r = n.expect(reply_to(2))
    check("counter: an add unwritten by --add-timeout gets error 13",
          r and r["body"]["type"] == "error" and r["body"]["code"] == 13, r)
    n.close()


def test_kafka():
    rc, out, err, bad = run("kafka", [
        init(),
        env("c1", "n0", {"type": "send", "msg_id": 2, "key": "a", "msg": 10}),
        env("c1", "n0", {"type": "send", "msg_id": 3, "key": "a", "msg": 11}),
        env("c1", "n0", {"type": "send", "msg_id": 4, "key": "b", "msg": 12}),
        env("c1", "n0", {"type": "poll", "msg_id": 5,
                         "offsets": {"a": 1, "b": 0, "zz": 0}}),
        env("c1", "n0", {"type": "commit_offsets", "msg_id": 6,
                         "offsets": {"a": 1}}),
        env("c1", "n0", {"type": "commit_offsets", "msg_id": 7,
                         "offsets": {"a": 0, "b": 0}}),
        env("c1", "n0", {"type": "list_committed_offsets", "msg_id": 8,
                         "keys": ["a", "b", "zz"]}),
        env("c1", "n0", {"type": "send", "msg_id": 9, "key": 5, "msg": 1}),
    ])
    offs = [replies_to(out, i)[0]["body"].get("offset") for i in (2, 3, 4)]
    check("kafka: offsets are dense per key from 0", offs == [0, 1, 0], offs)
    r = replies_to(out, 5)
    check("kafka: poll returns from the requested offset, leaves out "
          "keys with nothing",
          r and r[0]["body"]["msgs"] == {"a": [[1, 11]], "b": [[0, 12]]}, r)
    r = replies_to(out, 8)
    check("kafka: committed offsets never go backwards",
          r and r[0]["body"]["offsets"] == {"a": 1, "b": 0}, r)
    r = replies_to(out, 9)
    check("kafka: a send without a string key gets error 12",
          r and r[0]["body"]["code"] == 12, r)

    # Two nodes: each key belongs to one of them.
    def forwards(m):
        return [e for e in m["body"].get("entries", []) if e[0] == "f"]
    owner = {}
    for k in "abcdefgh":
        rc, out, err, bad = run("kafka", [
            init("n0", ["n0", "n1"]),
            env("c1", "n0", {"type": "send", "msg_id": 2, "key": k,
                             "msg": 1})])
        owner[k] = "n1" if [m for m in out if forwards(m)] else "n0"
    mine = [k for k in owner if owner[k] == "n0"]
    theirs = [k for k in owner if owner[k] == "n1"]
    check("kafka: keys are spread over the nodes", mine and theirs, owner)
    if not (mine and theirs):
        return
    k = theirs[0]
    n = Live("kafka", "n0", ["n0", "n1"])
    n.send("c1", {"type": "send", "msg_id": 2, "key": k, "msg": 7})
    f = n.expect(lambda m: m["dest"] == "n1" and forwards(m))
    check("kafka: a send for another node's key is forwarded to it",
          f and f["body"]["seq"] == 1 and forwards(f)[0][2:] == [k, 7], f)
    fid = forwards(f)[0][1] if f else 0
    n.send("c1", {"type": "poll", "msg_id": 3, "offsets": {k: 0}})
    r = n.expect(reply_to(3))
    check("kafka: a replica returns nothing it has not been sent",
          r and r["body"]["msgs"] == {}, r)
    n.send("n1", {"type": "kafka_repl", "msg_id": 50, "seq": 1, "ack": 1,
                  "entries": [["s", k, 0, 7], ["a", fid, 0]]})
    r = n.expect(reply_to(2))
    check("kafka: the owner's answer on its stream goes to the client",
          r and r["body"] == {"type": "send_ok", "offset": 0,
                              "in_reply_to": 2,
                              "msg_id": r["body"]["msg_id"]}, r)
    n.send("n1", {"type": "kafka_repl", "msg_id": 51, "seq": 4, "ack": 1,
                  "entries": [["s", k, 2, 9]]})
    n.send("n1", {"type": "kafka_repl", "msg_id": 52, "seq": 3, "ack": 1,
                  "entries": [["s", k, 1, 8], ["c", k, 0]]})
    n.send("c1", {"type": "poll", "msg_id": 4, "offsets": {k: 0}})
    r = n.expect(reply_to(4))
    check("kafka: replication past a gap is ignored, never stored",
          r and r["body"]["msgs"] == {k: [[0, 7], [1, 8]]}, r)
    a = n.expect(lambda m: m["dest"] == "n1" and
                 m["body"].get("type") == "kafka_repl" and
                 m["body"]["ack"] == 4)
    check("kafka: replication is acknowledged", a is not None)
    n.send("c1", {"type": "list_committed_offsets", "msg_id": 5,
                  "keys": [k]})
    r = n.expect(reply_to(5))
    check("kafka: replicated commits are listed",
          r and r["body"]["offsets"] == {k: 0}, r)
    n.send("c1", {"type": "send", "msg_id": 6, "key": k, "msg": 10})
    f = n.expect(lambda m: m["dest"] == "n1" and forwards(m))
    n.send("n1", {"type": "kafka_repl", "msg_id": 53, "seq": 5, "ack": 2,
                  "entries": [["e", forwards(f)[0][1], 11]]})
    r = n.expect(reply_to(6))
    check("kafka: the owner's definite refusal is passed on",
          r and r["body"]["type"] == "error" and r["body"]["code"] == 11, r)
    n.send("c1", {"type": "send", "msg_id": 7, "key": mine[0], "msg": 9})
    r = n.expect(reply_to(7))
    check("kafka: the owner answers its own keys at once",
          r and r["body"].get("offset") == 0, r)
    e = n.expect(lambda m: m["dest"] == "n1" and
                 ["s", mine[0], 0, 9] in m["body"].get("entries", []))
    check("kafka: the owner replicates appends in a batch", e is not None)
    r2 = n.expect(lambda m: m["dest"] == "n1" and
                  m["body"].get("type") == "kafka_repl" and
                  m["body"]["entries"], timeout=1.5)
    check("kafka: unacknowledged entries are sent again",
          e and r2 and r2["body"]["seq"] == e["body"]["seq"], r2)
    check("kafka: exits 0 at end of input", n.close() == 0)

    n = Live("kafka", "n0", ["n0", "n1"], args=["--forward-timeout=200",
                                                "--replicate-interval=60000"])
    n.send("c1", {"type": "send", "msg_id": 2, "key": k, "msg": 7})
    r = n.expect(reply_to(2))
    check("kafka: an unanswered forward is an indefinite error",
          r and r["body"]["type"] == "error" and r["body"]["code"] == 0, r)
    check("kafka: a forward does not wait for the batch timer",
          [m for m in n.skipped if m["dest"] == "n1" and forwards(m)],
          n.skipped)
    n.close()


def test_txn():
    rc, out, err, bad = run("txn", [
        init(),
        env("c1", "n0", {"type": "txn", "msg_id": 2,
                         "txn": [["r", 1, None], ["w", 1, 5], ["r", 1, None],
                                 ["w", 2, 1], ["w", 2, 2]]}),
        env("c1", "n0", {"type": "txn", "msg_id": 3,
                         "txn": [["r", 1, None], ["r", 2, None],
                                 ["r", 3, None]]}),
        env("c1", "n0", {"type": "txn", "msg_id": 4,
                         "txn": [["x", 1, None]]}),
    ])
    r = replies_to(out, 2)
    check("txn: reads see the transaction's own writes",
          r and r[0]["body"]["txn"] == [["r", 1, None], ["w", 1, 5],
                                        ["r", 1, 5], ["w", 2, 1],
                                        ["w", 2, 2]], r)
    r = replies_to(out, 3)
    check("txn: only a transaction's last write to a key is installed",
          r and r[0]["body"]["txn"] == [["r", 1, 5], ["r", 2, 2],
                                        ["r", 3, None]], r)
    r = replies_to(out, 4)
    check("txn: a bad micro-op gets error 12",
          r and r[0]["body"]["code"] == 12, r)

    n = Live("txn", "n0", ["n0", "n1"])
    n.send("c1", {"type": "txn", "msg_id": 2, "txn": [["w", 1, 10]]})
    r = n.expect(reply_to(2))
    check("txn: answered at once, without asking a peer",
          r and r["body"]["type"] == "txn_ok", r)
    e = n.expect(to("n1", "txn_repl"))
    check("txn: the write set is replicated with its version (clock, node)",
          e and e["body"]["entries"] == [[1, 0, [[1, 10]]]], e)
    n.send("c1", {"type": "txn", "msg_id": 3, "txn": [["w", 1, 11]]})
    n.expect(reply_to(3))
    # Last writer wins by clock, then node index: (1, n1) loses to n0's
    # (2, n0) on key 1 and wins key 2; (2, n1) then beats (2, n0).
    n.send("n1", {"type": "txn_repl", "msg_id": 50, "seq": 1, "ack": 0,
                  "entries": [[1, 1, [[1, 20], [2, 21]]]]})
    n.send("c1", {"type": "txn", "msg_id": 4,
                  "txn": [["r", 1, None], ["r", 2, None]]})
    r = n.expect(reply_to(4))
    check("txn: an older replicated write loses, a newer key is taken",
          r and r["body"]["txn"] == [["r", 1, 11], ["r", 2, 21]], r)
    n.send("n1", {"type": "txn_repl", "msg_id": 51, "seq": 3, "ack": 0,
                  "entries": [[9, 1, [[1, 99]]]]})
    n.send("n1", {"type": "txn_repl", "msg_id": 52, "seq": 2, "ack": 0,
                  "entries": [[2, 1, [[1, 30]]]]})
    n.send("c1", {"type": "txn", "msg_id": 5, "txn": [["r", 1, None]]})
    r = n.expect(reply_to(5))
    check("txn: a tie on the clock goes to the higher node; an entry "
          "past a gap is not applied",
          r and r["body"]["txn"] == [["r", 1, 30]], r)
    n.send("c1", {"type": "txn", "msg_id": 6, "txn": [["w", 3, 40]]})
    e = n.expect(lambda m: m["dest"] == "n1" and
                 m["body"].get("type") == "txn_repl" and
                 [3, 40] in (m["body"]["entries"] or [[0, 0, []]])[-1][2])
    check("txn: a later transaction orders after what the node has seen",
          e and e["body"]["entries"][-1][0] == 3, e)
    check("txn: exits 0 at end of input", n.close() == 0)


def main():
    test_echo()
    test_long_lines()
    test_signal()
    test_unique_ids()
    test_counter()
    test_kafka()
    test_txn()
    passed = sum(results)
    print("%d passed, %d failed" % (passed, len(results) - passed))
    sys.exit(0 if passed == len(results) else 1)


main()
