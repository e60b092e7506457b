#!/usr/bin/python3
"""Tests of the kvdb linearizability checker (tests/lab/linearizability.py).

Hand-built histories with known verdicts and windows, the command line,
random histories from a simulated register (must pass) and the same with
one read made impossible (must fail at that read), a brute-force oracle on
small random histories, and a timing of a 3000-operation history.
Usage: test_checker.py [--seed N] [--long]; ends with "N passed, M failed".
--long adds a few minutes of oracle checks on histories of up to 40
operations, where rarer paths of the search show up.
"""
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import linearizability as lin  # noqa: E402

CHECKER = os.path.join(HERE, "linearizability.py")
results = []


def check(name, cond, detail=""):
    results.append(bool(cond))
    print(("ok - " if cond else "not ok - ") + name +
          ("" if cond or not detail else " (" + str(detail)[:400] + ")"))


# ------------------------------------------------------- history builders

def V(version, timestamp, data):
    return {"version": version, "timestamp": timestamp, "data": data}


def A_set(ts, data):
    return {"timestamp": ts, "data": data}


def A_tas(ts, data, version):
    return {"timestamp": ts, "data": data, "version": version}


def A_dv(version):
    return {"version": version}


def op(p, f, arg, t0, t1, status=None, value=None, outcome="ok", key="1"):
    """The invoke and (unless t1 is None) completion events of one op."""
    evs = [{"type": "invoke", "process": p, "f": f, "key": key, "arg": arg,
            "time": t0}]
    if t1 is not None:
        c = {"type": outcome, "process": p, "f": f, "key": key, "arg": arg,
             "time": t1}
        if outcome == "ok":
            c["result"] = {"status": status, "value": value}
        elif outcome == "info":
            c["result"] = "timeout"
        evs.append(c)
    return evs


def hist(*ops):
    """Events of several ops in time order (stable: file order on ties)."""
    evs = [e for o in ops for e in o]
    return sorted(evs, key=lambda e: e["time"])


def verdict(events, **kw):
    return lin.check_history(events, **kw)


def window_of(res, key="1"):
    """The failing window of key as (process, f) pairs, in order."""
    for kr in res.failures:
        if kr.key == key:
            return [(o.process, lin.FNAMES[o.f]) for o in kr.window]
    return None


def failing_keys(res):
    return [kr.key for kr in res.failures]


# ------------------------------------------------------------- the model

def test_model():
    M = lin.MAX_VERSION
    st = (3, 7, "x")
    cases = [
        ((None, lin.SET, (5, "a")), ((1, 5, "a"), ("SUCCESS", None))),
        ((st, lin.SET, (5, "a")), (st, ("ERROR", st))),
        ((None, lin.GET, ()), (None, ("ERROR", None))),
        ((st, lin.GET, ()), (st, ("SUCCESS", st))),
        ((None, lin.DEL, ()), (None, ("ERROR", None))),
        ((st, lin.DEL, ()), (None, ("SUCCESS", st))),
        ((None, lin.DELVERSION, (3,)), (None, ("ERROR_NE", None))),
        ((st, lin.DELVERSION, (2,)), (st, ("ERROR_WV", st))),
        ((st, lin.DELVERSION, (3,)), (None, ("SUCCESS", st))),
        ((None, lin.TESTANDSET, (9, "b", 3)), (None, ("ERROR_NE", None))),
        ((st, lin.TESTANDSET, (9, "b", 4)), (st, ("ERROR_WV", st))),
        ((st, lin.TESTANDSET, (9, "b", 3)), ((4, 9, "b"), ("SUCCESS", st))),
        (((M, 1, "m"), lin.TESTANDSET, (9, "b", M)),
         ((M, 1, "m"), ("ERROR", (M, 1, "m")))),
    ]
    bad = [(c, lin.step(*c), want) for c, want in cases
           if lin.step(*c) != want]
    check("model: every branch of the five operations", not bad, bad)


# ------------------------------------------------------ hand-built cases

def test_sequential():
    h = hist(
        op(1, "get", None, 0, 1, "ERROR", None),
        op(1, "set", A_set(10, "a"), 2, 3, "SUCCESS", None),
        op(2, "get", None, 4, 5, "SUCCESS", V(1, 10, "a")),
        op(2, "set", A_set(11, "z"), 6, 7, "ERROR", V(1, 10, "a")),
        op(1, "testandset", A_tas(12, "b", 1), 8, 9, "SUCCESS",
           V(1, 10, "a")),
        op(3, "testandset", A_tas(13, "c", 1), 10, 11, "ERROR_WV",
           V(2, 12, "b")),
        op(3, "delversion", A_dv(1), 12, 13, "ERROR_WV", V(2, 12, "b")),
        op(2, "get", None, 14, 15, "SUCCESS", V(2, 12, "b")),
        op(1, "delversion", A_dv(2), 16, 17, "SUCCESS", V(2, 12, "b")),
        op(1, "delversion", A_dv(2), 18, 19, "ERROR_NE", None),
        op(2, "testandset", A_tas(14, "d", 1), 20, 21, "ERROR_NE", None),
        op(3, "del", None, 22, 23, "ERROR", None),
        op(3, "set", A_set(15, "e"), 24, 25, "SUCCESS", None),
        op(1, "del", None, 26, 27, "SUCCESS", V(1, 15, "e")),
        op(2, "get", None, 28, 29, "ERROR", None))
    r = verdict(h)
    check("sequential history of every operation and outcome passes",
          r.linearizable and r.operations == 15 and r.ok == 15, r.failures)
    # The same history with the last get claiming the deleted value.
    h[-1] = dict(h[-1], result={"status": "SUCCESS", "value": V(1, 15, "e")})
    r = verdict(h)
    check("sequential history with a read after the delete seeing the "
          "value fails", not r.linearizable and
          window_of(r) == [(1, "del"), (2, "get")], window_of(r))


def test_concurrent_writes():
    # Two concurrent sets on an absent key: one wins; a concurrent read
    # sees either winner, and a later read sees the winner.
    for winner, loser, data in ((1, 2, "x"), (2, 1, "y")):
        wv = V(1, 10 if winner == 1 else 20, data)
        for seen in (wv, None):
            h = hist(
                op(1, "set", A_set(10, "x"), 0, 10,
                   *(("SUCCESS", None) if winner == 1 else ("ERROR", wv))),
                op(2, "set", A_set(20, "y"), 1, 11,
                   *(("SUCCESS", None) if winner == 2 else ("ERROR", wv))),
                op(3, "get", None, 2, 12,
                   "SUCCESS" if seen else "ERROR", seen),
                op(3, "get", None, 13, 14, "SUCCESS", wv))
            r = verdict(h)
            check("concurrent sets, p%d wins, concurrent read sees %s: "
                  "passes" % (winner, "it" if seen else "absent"),
                  r.linearizable, r.failures)
    h = hist(op(1, "set", A_set(10, "x"), 0, 10, "SUCCESS", None),
             op(2, "set", A_set(20, "y"), 1, 11, "SUCCESS", None))
    r = verdict(h)
    check("concurrent sets that both succeed fail",
          not r.linearizable and
          sorted(window_of(r)) == [(1, "set"), (2, "set")], window_of(r))
    # Concurrent testandsets: the loser's ERROR_WV shows the winner's value
    # and a concurrent read may see the old or the new value.
    for seen in (V(1, 1, "a"), V(2, 2, "b")):
        h = hist(op(9, "set", A_set(1, "a"), 0, 1, "SUCCESS", None),
                 op(1, "testandset", A_tas(2, "b", 1), 2, 10, "SUCCESS",
                    V(1, 1, "a")),
                 op(2, "testandset", A_tas(3, "c", 1), 3, 11, "ERROR_WV",
                    V(2, 2, "b")),
                 op(3, "get", None, 4, 12, "SUCCESS", seen))
        r = verdict(h)
        check("concurrent testandsets, read sees version %d: passes"
              % seen["version"], r.linearizable, r.failures)
    # Equal times count as overlap: a read invoked at the very nanosecond
    # a set completes may still miss it.
    h = hist(op(1, "set", A_set(1, "a"), 0, 5, "SUCCESS", None),
             op(2, "get", None, 5, 6, "ERROR", None))
    r = verdict(h)
    check("a read invoked at a write's completion time may miss it",
          r.linearizable, r.failures)
    h = hist(op(1, "set", A_set(1, "a"), 0, 5, "SUCCESS", None),
             op(2, "get", None, 6, 7, "ERROR", None))
    r = verdict(h)
    check("a read invoked 1 ns after a write completed must see it",
          not r.linearizable, r.failures)


def test_stale_read():
    h = hist(
        op(1, "set", A_set(1, "a"), 0, 10, "SUCCESS", None),
        op(2, "get", None, 20, 30, "SUCCESS", V(1, 1, "a")),
        op(3, "get", None, 25, 35, "SUCCESS", V(1, 1, "a")),
        op(1, "testandset", A_tas(2, "b", 1), 40, 50, "SUCCESS",
           V(1, 1, "a")),
        op(2, "get", None, 60, 70, "SUCCESS", V(1, 1, "a")))
    r = verdict(h)
    kr = r.failures[0] if r.failures else None
    check("stale read after a completed testandset fails",
          not r.linearizable and kr.end.process == 2 and
          kr.end.invoke_time == 60, kr and kr.end.invoke_time)
    check("stale read: the window is the write and the read only",
          window_of(r) == [(1, "testandset"), (2, "get")], window_of(r))
    check("stale read: the states at the window's start are absent and "
          "version 1", kr and kr.start_states == [None, (1, 1, "a")],
          kr and kr.start_states)
    # Another read, in flight at the stale read's start, that saw the old
    # value: in the window it is optional and leaves the state unchanged,
    # and it must not stop the search from skipping it (a bug once made
    # the window from the stale read fail, hiding the write).
    h = hist(
        op(1, "set", A_set(1, "a"), 0, 10, "SUCCESS", None),
        op(2, "get", None, 20, 52, "SUCCESS", V(1, 1, "a")),
        op(3, "testandset", A_tas(2, "b", 1), 30, 40, "SUCCESS",
           V(1, 1, "a")),
        op(4, "get", None, 50, 55, "SUCCESS", V(1, 1, "a")))
    r = verdict(h)
    kr = r.failures[0] if r.failures else None
    check("stale read with an older read in flight: window is that read "
          "(in flight), the write and the stale read",
          window_of(r) == [(2, "get"), (3, "testandset"), (4, "get")] and
          kr.roles.get(kr.window[0].index) == "in-flight", window_of(r))
    # A read of a value two changes old: the window start may lag one
    # change behind, not two, so the read alone fails from what was
    # possible (the new value, or absent just before it).
    h = hist(
        op(1, "set", A_set(1, "a"), 0, 10, "SUCCESS", None),
        op(2, "del", None, 20, 30, "SUCCESS", V(1, 1, "a")),
        op(3, "set", A_set(2, "b"), 40, 50, "SUCCESS", None),
        op(4, "get", None, 60, 70, "SUCCESS", V(1, 1, "a")))
    r = verdict(h)
    kr = r.failures[0] if r.failures else None
    check("read of a value deleted and replaced: window is the read, "
          "from absent or the new value", window_of(r) == [(4, "get")] and
          kr.start_states == [None, (1, 2, "b")],
          (window_of(r), kr and kr.start_states))
    # The same read while the delete is still running: it may come first.
    h = hist(
        op(1, "set", A_set(1, "a"), 0, 10, "SUCCESS", None),
        op(2, "del", None, 20, 80, "SUCCESS", V(1, 1, "a")),
        op(4, "get", None, 60, 70, "SUCCESS", V(1, 1, "a")))
    r = verdict(h)
    check("read overlapping the delete of its value passes", r.linearizable,
          r.failures)


def test_never_written():
    h = hist(op(1, "set", A_set(1, "a"), 0, 10, "SUCCESS", None),
             op(2, "get", None, 20, 30, "SUCCESS", V(1, 1, "a")),
             op(2, "get", None, 40, 50, "SUCCESS", V(1, 1, "zz")))
    r = verdict(h)
    check("read of a value never written fails; window is that read",
          not r.linearizable and window_of(r) == [(2, "get")],
          window_of(r))
    h = hist(op(2, "get", None, 0, 10, "SUCCESS", V(1, 1, "a")))
    r = verdict(h)
    check("read of a value on a key never written fails",
          not r.linearizable and r.failures[0].start_states == [None],
          r.failures)


def test_lost_update():
    for name, t in (("concurrent", (20, 40, 25, 45)),
                    ("sequential", (20, 30, 40, 50))):
        h = hist(op(1, "set", A_set(1, "a"), 0, 10, "SUCCESS", None),
                 op(2, "testandset", A_tas(2, "b", 1), t[0], t[1], "SUCCESS",
                    V(1, 1, "a")),
                 op(3, "testandset", A_tas(3, "c", 1), t[2], t[3], "SUCCESS",
                    V(1, 1, "a")))
        r = verdict(h)
        check("lost update, %s testandsets on version 1 both succeed: "
              "fails, window is the two" % name,
              not r.linearizable and window_of(r) ==
              [(2, "testandset"), (3, "testandset")], window_of(r))
    # The control: the second one sees the first's version.
    h = hist(op(1, "set", A_set(1, "a"), 0, 10, "SUCCESS", None),
             op(2, "testandset", A_tas(2, "b", 1), 20, 30, "SUCCESS",
                V(1, 1, "a")),
             op(3, "testandset", A_tas(3, "c", 2), 40, 50, "SUCCESS",
                V(2, 2, "b")),
             op(3, "get", None, 60, 70, "SUCCESS", V(3, 3, "c")))
    r = verdict(h)
    check("chained testandsets on versions 1 then 2 pass", r.linearizable,
          r.failures)


def test_wrong_value_fields():
    base = [op(1, "set", A_set(5, "a"), 0, 10, "SUCCESS", None)]
    good = V(1, 5, "a")
    variants = {"right": good, "data": V(1, 5, "b"),
                "version": V(2, 5, "a"), "timestamp": V(1, 6, "a"),
                "null": None}
    for f, arg, status in (("delversion", A_dv(2), "ERROR_WV"),
                           ("delversion", A_dv(1), "SUCCESS"),
                           ("testandset", A_tas(9, "z", 3), "ERROR_WV"),
                           ("set", A_set(9, "z"), "ERROR"),
                           ("del", None, "SUCCESS")):
        for what, value in variants.items():
            h = hist(*base, op(2, f, arg, 20, 30, status, value))
            r = verdict(h)
            want = what == "right"
            check("%s -> %s with %s value: %s" % (
                f, status, "the right" if want else "a wrong " + what,
                "passes" if want else "fails"),
                r.linearizable == want and
                (want or window_of(r) == [(2, f)]), window_of(r))
    # A right value with the wrong status.
    h = hist(*base, op(2, "delversion", A_dv(2), 20, 30, "ERROR_NE", None))
    check("delversion on a present key answering ERROR_NE fails",
          not verdict(h).linearizable)


def test_unknown_ops():
    for outcome, t1 in (("info", 15), (None, None)):
        name = "info" if outcome else "never-completed"
        h = hist(op(1, "set", A_set(1, "x"), 0, t1, outcome="info"),
                 op(2, "get", None, 20, 30, "ERROR", None),
                 op(3, "get", None, 40, 50, "SUCCESS", V(1, 1, "x")),
                 op(3, "get", None, 60, 70, "SUCCESS", V(1, 1, "x")))
        r = verdict(h)
        check("%s set that later shows up in a read passes" % name,
              r.linearizable and r.unknown == 1, r.failures)
        h = hist(op(1, "set", A_set(1, "x"), 0, t1, outcome="info"),
                 op(2, "get", None, 20, 30, "ERROR", None),
                 op(2, "get", None, 40, 50, "ERROR", None))
        r = verdict(h)
        check("%s set that never shows up passes" % name, r.linearizable,
              r.failures)
        h = hist(op(1, "set", A_set(1, "x"), 0, t1, outcome="info"),
                 op(2, "get", None, 20, 30, "SUCCESS", V(1, 1, "x")),
                 op(3, "get", None, 40, 50, "ERROR", None))
        r = verdict(h)
        kr = r.failures[0] if r.failures else None
        check("%s set whose value appears then vanishes without a delete "
              "fails" % name, not r.linearizable and kr.end.process == 3,
              r.failures)
        check("%s set that vanishes: window is the set (in flight) and "
              "both reads" % name,
              window_of(r) == [(1, "set"), (2, "get"), (3, "get")] and
              kr.roles.get(kr.window[0].index) == "in-flight",
              window_of(r))
    # The unknown set may take effect late: after a delete, even.
    h = hist(op(1, "set", A_set(1, "x"), 0, 5, outcome="info"),
             op(2, "set", A_set(2, "y"), 10, 20, "SUCCESS", None),
             op(3, "del", None, 30, 40, "SUCCESS", V(1, 2, "y")),
             op(4, "get", None, 50, 60, "SUCCESS", V(1, 1, "x")))
    r = verdict(h)
    check("info set taking effect after a later set and delete passes",
          r.linearizable, r.failures)
    # ... but never twice.
    h = hist(op(1, "set", A_set(1, "x"), 0, 5, outcome="info"),
             op(4, "get", None, 10, 20, "SUCCESS", V(1, 1, "x")),
             op(3, "del", None, 30, 40, "SUCCESS", V(1, 1, "x")),
             op(4, "get", None, 50, 60, "SUCCESS", V(1, 1, "x")))
    r = verdict(h)
    check("info set taking effect twice fails", not r.linearizable,
          r.failures)
    # An unknown testandset at the end with unfinished ops: no constraint.
    h = hist(op(1, "set", A_set(1, "x"), 0, 10, "SUCCESS", None),
             op(2, "testandset", A_tas(2, "y", 1), 20, None),
             op(3, "del", None, 21, None),
             op(4, "get", None, 22, None))
    r = verdict(h)
    check("unfinished operations at the end pass (3 unknown)",
          r.linearizable and r.unknown == 3 and r.ok == 1, r.failures)


def test_failed_set():
    h = hist(op(1, "set", A_set(1, "x"), 0, 10, outcome="fail"),
             op(2, "get", None, 20, 30, "SUCCESS", V(1, 1, "x")))
    r = verdict(h)
    kr = r.failures[0] if r.failures else None
    check("read of a failed set's value fails; window is the read; the "
          "failed set is listed", not r.linearizable and
          window_of(r) == [(2, "get")] and
          [o.process for o in kr.failed] == [1], r.failures)
    h[1] = dict(h[1], type="info")
    check("the same with the set unknown passes",
          verdict(h).linearizable)


def test_two_keys():
    h = hist(op(1, "set", A_set(1, "a"), 0, 10, "SUCCESS", None, key="7"),
             op(2, "set", A_set(1, "b"), 1, 11, "SUCCESS", None, key="8"),
             op(1, "get", None, 20, 30, "SUCCESS", V(1, 1, "a"), key="007"),
             op(2, "get", None, 21, 31, "ERROR", None, key="8"),
             op(3, "get", None, 22, 32, "SUCCESS", V(1, 1, "a"), key="+7"))
    r = verdict(h)
    check("two keys, only key 8 fails: the report names only 8",
          failing_keys(r) == ["8"] and len(r.keys) == 2, failing_keys(r))
    check("keys 7, 007 and +7 are one key", [k.key for k in r.keys] ==
          ["7", "8"] and r.keys[0].linearizable, [k.key for k in r.keys])
    r = verdict(h, key="0007")
    check("--key restricts the check to one key",
          r.linearizable and len(r.keys) == 1 and r.operations == 3,
          r.operations)
    big = "1" * 5000                    # past int()'s default digit limit
    h = hist(op(1, "set", A_set(1, "a"), 0, 10, "SUCCESS", None, key=big),
             op(1, "get", None, 20, 30, "SUCCESS", V(1, 1, "a"),
                key="000" + big))
    check("a 5000-digit key is normalised", verdict(h).linearizable)


def test_bad_input():
    cases = {
        "completion without invocation":
            [{"type": "ok", "process": 1, "f": "get", "key": "1",
              "time": 1, "result": {"status": "ERROR", "value": None}}],
        "two outstanding ops on one process":
            op(1, "get", None, 0, None) + op(1, "get", None, 1, None),
        "unknown f": op(1, "cas", None, 0, None),
        "set without data": op(1, "set", {"timestamp": 1}, 0, None),
        "non-decimal key": op(1, "get", None, 0, None, key="0x10"),
        "ok without a status":
            [op(1, "get", None, 0, 1, "ERROR", None)[0],
             {"type": "ok", "process": 1, "f": "get", "key": "1", "time": 1,
              "result": {"value": None}}],
        "value with a string version":
            op(1, "get", None, 0, 1, "SUCCESS",
               {"version": "1", "timestamp": 1, "data": "a"}),
        "completion on another key":
            [op(1, "get", None, 0, 1, "ERROR", None)[0],
             op(1, "get", None, 0, 1, "ERROR", None, key="2")[1]],
        "completion before invocation": op(1, "get", None, 5, 4, "ERROR",
                                           None),
    }
    for name, evs in cases.items():
        try:
            lin.check_history(evs)
            check("bad input rejected: " + name, False, "accepted")
        except lin.HistoryError as e:
            check("bad input rejected: " + name, True, e)
    # Completions may leave f and key out, and carry extra fields.
    h = op(1, "get", None, 0, 1, "ERROR", None)
    del h[1]["f"], h[1]["key"]
    h[0]["node"] = "n1"
    check("completion without f and key, extra fields: accepted",
          lin.check_history(h).linearizable)


def run_cli(lines, *args):
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl",
                                     delete=False) as fp:
        fp.write(lines)
        path = fp.name
    try:
        p = subprocess.run(["/usr/bin/python3", CHECKER, path, *args],
                           capture_output=True, text=True, timeout=120)
    finally:
        os.unlink(path)
    return p.returncode, p.stdout, p.stderr


def jl(events):
    return "".join(json.dumps(e) + "\n" for e in events)


def test_cli():
    good = hist(op(1, "set", A_set(1, "a"), 0, 10, "SUCCESS", None),
                op(2, "get", None, 20, 30, "SUCCESS", V(1, 1, "a")))
    rc, out, err = run_cli(jl(good))
    check("cli: linearizable history exits 0 with a summary line",
          rc == 0 and out.startswith("linearizable: 1 key, 2 operations "
                                     "(2 ok, 0 fail, 0 unknown)"), (rc, out))
    # The last line cut in the middle: that completion is lost, so the get
    # becomes unknown; a stale result there would have failed.
    stale = hist(op(1, "set", A_set(1, "a"), 0, 10, "SUCCESS", None),
                 op(2, "get", None, 20, 30, "ERROR", None))
    text = jl(stale)
    rc, out, err = run_cli(text[:-25])
    check("cli: truncated last line is ignored with a warning",
          rc == 0 and "line 4: truncated last line ignored" in err and
          "1 unknown" in out, (rc, out, err))
    rc, out, err = run_cli(text)
    check("cli: the same history whole is not linearizable, exit 1",
          rc == 1 and "NOT linearizable" in out and
          "cannot be explained" in out, (rc, out))
    lines = text.split("\n")
    lines[1] = lines[1][:20]
    rc, out, err = run_cli("\n".join(lines))
    check("cli: a bad line in the middle is bad input, exit 2",
          rc == 2 and "line 2: not JSON" in err, (rc, err))
    rc, out, err = run_cli(text, "--json")
    try:
        j = json.loads(out)
        w = j["failures"][0]["window"]
        good_json = (rc == 1 and j["linearizable"] is False and
                     [o["f"] for o in w] == ["set", "get"] and
                     w[1]["role"] == "end" and w[0]["role"] == "window" and
                     j["failures"][0]["start_states"] == [None])
    except (ValueError, KeyError, IndexError) as e:
        good_json, out = False, (out, e)
    check("cli: --json reports the window with roles and start states",
          good_json, out)
    rc, out, err = run_cli(text, "--key", "2")
    check("cli: --key for a key not in the history exits 2",
          rc == 2 and "no operations" in err, (rc, err))
    rc, out, err = run_cli("")
    check("cli: an empty history is linearizable",
          rc == 0 and "0 operations" in out, (rc, out, err))
    rc, out, err = run_cli(text, "--bogus")
    check("cli: a bad option exits 2", rc == 2, rc)


# ------------------------------------------------------ random histories

FWEIGHTS = (("set", 25), ("get", 30), ("del", 8), ("delversion", 10),
            ("testandset", 27))


def simulate(rng, n_ops, n_procs, keys, p_unknown=0.1, p_fail=0.05,
             tie=False):
    """A history of a real register: each op takes effect at one moment
    between its invocation and completion (or never, for fail; either,
    for info and unfinished).  Returns (events, ops) where ops are dicts
    with the op's true story.  tie: times from a coarse clock."""
    fnames = [f for f, w in FWEIGHTS for _ in range(w)]
    state = {k: None for k in keys}
    events, ops = [], []
    idle = list(range(n_procs))
    next_pid = n_procs
    pending = {}
    t = 0
    stamp = [0]

    def fresh():
        stamp[0] += 1
        return stamp[0]

    def now():
        return t // 3 if tie else t

    issued = 0
    while issued < n_ops or pending:
        t += rng.randint(1, 4)
        acts = []
        if idle and issued < n_ops:
            acts += ["invoke"] * 2
        unapplied = [p for p, o in pending.items() if not o["applied"]]
        if unapplied:
            acts += ["apply"] * 2
        if pending:
            acts += ["complete"]
        act = rng.choice(acts)
        if act == "invoke":
            p = idle.pop(rng.randrange(len(idle)))
            k = rng.choice(keys)
            f = rng.choice(fnames)
            cur = state[k]
            guess = (cur[0] if cur and rng.random() < 0.7
                     else rng.randint(1, 3))
            arg = {"set": lambda: A_set(fresh(), "d%d" % stamp[0]),
                   "get": lambda: None, "del": lambda: None,
                   "delversion": lambda: A_dv(guess),
                   "testandset": lambda: A_tas(fresh(), "d%d" % stamp[0],
                                               guess)}[f]()
            o = {"p": p, "f": f, "key": k, "arg": arg, "applied": False,
                 "result": None, "inv": now(), "outcome": None}
            o["args"] = lin._parse_args(lin.FCODES[f], arg)
            ops.append(o)
            pending[p] = o
            events.append({"type": "invoke", "process": p, "f": f,
                           "key": k, "arg": arg, "time": now()})
            issued += 1
        elif act == "apply":
            o = pending[rng.choice(unapplied)]
            ns, (st, v) = lin.step(state[o["key"]], lin.FCODES[o["f"]],
                                   o["args"])
            state[o["key"]] = ns
            o["applied"] = True
            o["result"] = {"status": st, "value": None if v is None else
                           V(*v)}
        else:
            p = rng.choice(list(pending))
            o = pending[p]
            r = rng.random()
            if not o["applied"] and r < p_fail:
                o["outcome"] = "fail"
            elif r < p_fail + p_unknown:
                o["outcome"] = "info"
            elif not o["applied"]:
                continue                 # it must take effect first
            else:
                o["outcome"] = "ok"
            del pending[p]
            ev = {"type": o["outcome"], "process": p, "f": o["f"],
                  "key": o["key"], "arg": o["arg"], "time": now()}
            if o["outcome"] == "ok":
                ev["result"] = o["result"]
            events.append(ev)
            o["ret"] = now()
            if o["outcome"] == "info":
                idle.append(next_pid)    # the lab retires the process id
                next_pid += 1
            else:
                idle.append(p)
        # Now and then the run ends with operations outstanding.
        if issued >= n_ops and pending and rng.random() < 0.05:
            break
    return events, ops


def mutate_read(rng, events):
    """Make one ok get's result impossible: a value no op ever wrote (data
    and timestamps are unique, so a changed field names nothing).  Returns
    (events, the mutated completion) or None if there is no ok get."""
    gets = [i for i, e in enumerate(events)
            if e["type"] == "ok" and e["f"] == "get"]
    if not gets:
        return None
    i = rng.choice(gets)
    res = events[i]["result"]
    v = res["value"]
    if v is None:
        nv = V(1, 10 ** 9, "never-written")
    else:
        nv = dict(v)
        field = rng.choice(("version", "timestamp", "data"))
        nv[field] = v[field] + "?" if field == "data" else v[field] + 1000
    evs = list(events)
    evs[i] = dict(events[i], result={"status": "SUCCESS", "value": nv})
    return evs, evs[i]


def test_random(seed):
    rng = random.Random(seed)
    started = time.monotonic()
    passed = failed_ok = 0
    bad = []
    n = 300
    for it in range(n):
        events, _ = simulate(rng, rng.randint(10, 60), rng.randint(1, 8),
                             ["1", "2"] if it % 3 == 0 else ["5"])
        r = lin.check_history(events)
        if r.linearizable:
            passed += 1
        else:
            bad.append(("clean", it))
        m = mutate_read(rng, events)
        if m is None:
            continue
        mevs, mev = m
        r = lin.check_history(mevs)
        # The mutated read completes the earliest non-linearizable prefix.
        ends = [(kr.end.process, kr.end.complete_time) for kr in r.failures]
        if ends == [(mev["process"], mev["time"])]:
            failed_ok += 1
        else:
            bad.append(("mutated", it, ends))
    took = time.monotonic() - started
    check("random: %d simulated histories all pass" % n, passed == n,
          bad[:3])
    check("random: every history with one read mutated fails at that "
          "read (%d)" % failed_ok, not bad and failed_ok > n * 0.9,
          bad[:3])
    print("# random: %d histories and their mutants checked in %.2f s"
          % (n, took))


# The reference oracle: the definitions of the module docstring, done
# the plain way (a depth-first search over every set of operations
# linearized so far, with none of the checker's reductions, so as not to
# share their bugs).  Single key; the window part assumes distinct times.

def brute_ops(events):
    """The searched operations: dicts with f, args, p (process), inv, ret
    (None unless ok), res (the ok result)."""
    out, cur = [], {}
    for e in events:
        if e["type"] == "invoke":
            f = lin.FCODES[e["f"]]
            o = {"f": f, "args": lin._parse_args(f, e["arg"]),
                 "p": e["process"], "inv": e["time"], "ret": None,
                 "res": None, "fail": False}
            cur[e["process"]] = o
            out.append(o)
            continue
        o = cur.pop(e["process"])
        o["fail"] = e["type"] == "fail"
        if e["type"] == "ok":
            v = e["result"]["value"]
            o["ret"] = e["time"]
            o["res"] = (e["result"]["status"], None if v is None else
                        (v["version"], v["timestamp"], v["data"]))
    # Failed ops did nothing; unknown gets do nothing and show nothing.
    return [o for o in out if not o["fail"] and
            not (o["ret"] is None and o["f"] == lin.GET)]


def brute_lin(spec, starts, collect=False):
    """spec: (op, expected or None, deadline or None: optional).  Whether
    the mandatory ops and some optional ones run in some order from one
    of starts, respecting real time (b before a if b returned before a
    began) and the expected results; with collect, the set of the final
    states of those runs and of the states just before their last change.
    """
    must = sum(1 << i for i, x in enumerate(spec) if x[2] is not None)
    found, seen = set(), set()
    todo = [(0, st, lin.NONE) for st in starts]
    while todo:
        cfg = todo.pop()
        if cfg in seen:
            continue
        seen.add(cfg)
        used, state, before = cfg
        if used & must == must:
            if not collect:
                return True
            found.add(state)
            if before is not lin.NONE:
                found.add(before)
        for i, (o, exp, _) in enumerate(spec):
            if used >> i & 1 or any(
                    not used >> j & 1 and x[2] is not None and x[2] < o["inv"]
                    for j, x in enumerate(spec)):
                continue
            ns, res = lin.step(state, o["f"], o["args"])
            if exp is None or res == exp:
                todo.append((used | 1 << i, ns,
                             (state if ns != state else before) if collect
                             else lin.NONE))
    return found if collect else False


def brute_prefix(ops, t):
    """The history cut just after time t."""
    return [(o, o["res"], o["ret"]) if o["ret"] is not None and o["ret"] <= t
            else (o, None, None) for o in ops if o["inv"] <= t]


def brute_window(events):
    """None if linearizable, else (end, start, states, window spec)."""
    ops = brute_ops(events)
    if brute_lin(brute_prefix(ops, float("inf")), [None]):
        return None
    T = next(r for r in sorted(o["ret"] for o in ops if o["ret"] is not None)
             if not brute_lin(brute_prefix(ops, r), [None]))
    end = next(o for o in ops if o["ret"] == T)
    # Results known by the end's completion.
    known = [(o, o["res"] if o["ret"] is not None and o["ret"] <= T
              else None) for o in ops]
    for s in sorted((o for o in ops if o["inv"] <= end["inv"]),
                    key=lambda o: -o["inv"]):
        before = [(o, res, o["ret"] if o["ret"] is not None and
                   o["ret"] < s["inv"] else None)
                  for o, res in known if o["inv"] < s["inv"]]
        states = brute_lin(before, [None], collect=True)
        window = [(o, res, o["ret"] if res is not None and
                   o["inv"] >= s["inv"] else None)
                  for o, res in known if o["inv"] <= T and
                  (o["inv"] >= s["inv"] or o["ret"] is None or
                   o["ret"] >= s["inv"])]
        if not brute_lin(window, states):
            return end, s, states, window
    raise AssertionError("no failing window")


def corrupt(rng, events):
    """Swap in a plausible wrong result for a random ok completion."""
    oks = [i for i, e in enumerate(events) if e["type"] == "ok"]
    if not oks:
        return events
    i = rng.choice(oks)
    choices = [{"status": "SUCCESS", "value": None},
               {"status": "ERROR", "value": None},
               {"status": "ERROR_NE", "value": None}]
    for e in events:
        if e["type"] == "ok" and e["result"]["value"]:
            choices.append({"status": rng.choice(lin.STATUSES),
                            "value": e["result"]["value"]})
    evs = list(events)
    evs[i] = dict(evs[i], result=rng.choice(choices))
    return evs


def collapse(events):
    """The same history with data and timestamps folded onto two values
    each, so that writes repeat values (a linearizable history stays so)."""
    def fold(d):
        if not isinstance(d, dict):
            return d
        d = dict(d)
        if "data" in d:
            d["data"] = "d%d" % (int(d["data"][1:]) % 2)
        if "timestamp" in d:
            d["timestamp"] %= 2
        if "value" in d:
            d["value"] = fold(d["value"])
        return d
    return [dict(e, arg=fold(e.get("arg")), **(
        {"result": fold(e["result"])} if "result" in e else {}))
        for e in events]


def test_oracle(seed, n, max_ops, max_procs, what):
    rng = random.Random(seed + max_ops)
    agree, nonlin = 0, 0
    bad = []
    for it in range(n):
        events, _ = simulate(rng, rng.randint(2, max_ops),
                             rng.randint(1, max_procs), ["1"],
                             p_unknown=0.25, p_fail=0.1, tie=it % 4 == 0)
        if rng.random() < 0.6:
            events = corrupt(rng, events)
        if it % 3 == 0:
            events = collapse(events)
        r = lin.check_history(events)
        if it % 4 == 0:
            # Equal times: the verdict only (ties count as overlap).
            want = brute_lin(brute_prefix(brute_ops(events), float("inf")),
                             [None])
            agree += r.linearizable == want
            if r.linearizable != want:
                bad.append(("verdict", events))
            continue
        bw = brute_window(events)
        agree += r.linearizable == (bw is None)
        if r.linearizable != (bw is None):
            bad.append(("verdict", events))
        if bw is None or r.linearizable:
            continue
        nonlin += 1
        end, start, states, window = bw
        kr = r.failures[0]
        shown = {(o.invoke_time, o.process) for o in kr.window}
        spec = {(x[0]["inv"], x[0]["p"]): x for x in window}
        if (kr.end.invoke_time, kr.end.process) != (end["inv"], end["p"]):
            bad.append(("end", events))
        elif (kr.start.invoke_time, kr.start.process) != (start["inv"],
                                                          start["p"]):
            bad.append(("start", events))
        elif not (shown <= set(spec) and
                  all(spec[k][2] is None for k in set(spec) - shown)):
            # Only optional operations may be left out of the report...
            bad.append(("window", events))
        elif brute_lin([spec[k] for k in shown], kr.start_states):
            # ... and what is shown must still fail from the states shown.
            bad.append(("shown window passes", events))
        elif not set(kr.start_states) <= states:
            bad.append(("states", events))
    check("oracle: verdicts agree with the reference on %d %s random "
          "histories" % (n, what),
          agree == n and not [b for b in bad if b[0] == "verdict"], bad[:1])
    check("oracle: end, start, window and start states agree with the "
          "definitions on the %d not linearizable" % nonlin,
          not bad and nonlin > n // 5, bad[:1])


def test_performance(seed):
    rng = random.Random(seed + 2)
    events, _ = simulate(rng, 3000, 10, ["1", "2", "3", "4", "5"],
                         p_unknown=0.03, p_fail=0.02)
    started = time.monotonic()
    r = lin.check_history(events)
    took = time.monotonic() - started
    print("# performance: %d ops (%d ok, %d fail, %d unknown) over %d keys, "
          "10 processes: %.2f s" % (r.operations, r.ok, r.fail, r.unknown,
                                    len(r.keys), took))
    check("performance: 3000 ops over 5 keys, 10 processes, linearizable, "
          "under 60 s", r.linearizable and r.operations == 3000 and
          took < 60, (r.linearizable, took))
    m = mutate_read(rng, events)
    started = time.monotonic()
    r = lin.check_history(m[0])
    took = time.monotonic() - started
    print("# performance: the same with one read mutated, with its window: "
          "%.2f s" % took)
    check("performance: the mutated one fails at the read, under 60 s",
          [(kr.end.process, kr.end.complete_time) for kr in r.failures] ==
          [(m[1]["process"], m[1]["time"])] and took < 60, took)


def main():
    ap = argparse.ArgumentParser(description="Tests of the checker.")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--long", action="store_true",
                    help="add minutes of checks against the reference")
    opts = ap.parse_args()
    seed = opts.seed
    print("# seed %d" % seed)
    test_model()
    test_sequential()
    test_concurrent_writes()
    test_stale_read()
    test_never_written()
    test_lost_update()
    test_wrong_value_fields()
    test_unknown_ops()
    test_failed_set()
    test_two_keys()
    test_bad_input()
    test_cli()
    test_random(seed)
    started = time.monotonic()
    test_oracle(seed, 400, 6, 4, "small")
    test_oracle(seed, 150, 24, 6, "medium")
    if opts.long:
        test_oracle(seed, 400, 40, 8, "larger")
    print("# oracle: %.2f s" % (time.monotonic() - started))
    test_performance(seed)
    npass = sum(results)
    print("%d passed, %d failed" % (npass, len(results) - npass))
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
