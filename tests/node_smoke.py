#!/usr/bin/python3
"""Piped-JSON smoke tests of the Maelstrom node modes and their runtime.

These drive `dsd` directly over stdin/stdout, without the harness: init and
held messages, malformed input, long lines, end of input, signals, and the
per-mode basics.  The harness (tests/maelstrom/) runs the real workloads.
Usage: node_smoke.py [path/to/dsd]
"""
import json
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


def main():
    test_echo()
    test_long_lines()
    test_signal()
    test_unique_ids()
    passed = sum(results)
    print("%d passed, %d failed" % (passed, len(results) - passed))
    sys.exit(0 if passed == len(results) else 1)


main()
