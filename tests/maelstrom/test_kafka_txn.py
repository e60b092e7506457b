"""Unit checks of the kafka and txn-rw-register workloads and checkers.

Imported by test_units.py (so ./selftest runs them), or alone:
python3 -m unittest test_kafka_txn from this directory.

Each anomaly the checkers look for has a hand-built history here that must
be rejected with exactly that error type, and there are correct histories
that must pass, so the checks are not vacuous.
"""

import asyncio
import contextlib
import io
import os
import random
import shutil
import sys
import tempfile
import types
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from maelharness import cli, runner  # noqa: E402
from maelharness.workloads.base import Outcome, UnexpectedReply  # noqa: E402
from maelharness.workloads.kafka import Kafka  # noqa: E402
from maelharness.workloads.kafka_check import check_kafka  # noqa: E402
from maelharness.workloads.keypool import KeyPool  # noqa: E402
from maelharness.workloads.txn_check import check_txn  # noqa: E402
from maelharness.workloads.txn_rw_register import TxnRwRegister  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))

# What test_units.py picks up with its star import: the test cases only.
__all__ = ["KafkaCheckerTest", "TxnCheckerTest", "KeyPoolTest",
           "KafkaClientTest", "TxnWorkloadTest", "KafkaRunTest"]


class History:
    """Builds a history of synchronous ops; times are 1 ms apart unless
    given (t= sets the invoke time, in seconds)."""

    def __init__(self):
        self.h = []
        self.t = 0

    def op(self, p, f, inv_value, typ, value, error=None, t=None, dt=0.001):
        if t is not None:
            self.t = int(t * 1e9)
        self.t += 1000
        self.h.append({"index": len(self.h), "time": self.t, "process": p,
                       "type": "invoke", "f": f, "value": inv_value})
        self.t += int(dt * 1e9)
        e = {"index": len(self.h), "time": self.t, "process": p,
             "type": typ, "f": f, "value": value}
        if error is not None:
            e["error"] = error
        self.h.append(e)
        return self

    # kafka
    def send(self, p, k, m, o=None, typ="ok", **kw):
        inv = {"key": k, "msg": m}
        if typ == "ok":
            return self.op(p, "send", inv, "ok", dict(inv, offset=o), **kw)
        err = {"code": 11} if typ == "fail" else "net-timeout"
        return self.op(p, "send", inv, typ, inv, error=err, **kw)

    def poll(self, p, offsets, msgs, typ="ok", **kw):
        return self.op(p, "poll", None, typ,
                       {"offsets": offsets, "msgs": msgs}, **kw)

    def assign(self, p, keys, offsets, seek=False):
        inv = {"keys": keys, "seek-to-beginning": seek}
        return self.op(p, "assign", inv, "ok", dict(inv, offsets=offsets))

    def crash(self, p):
        return self.op(p, "crash", None, "info", None)

    # txn
    def txn(self, p, mops, typ="ok"):
        inv = [[f, k, None if f == "r" else v] for f, k, v in mops]
        if typ == "ok":
            return self.op(p, "txn", inv, "ok", [list(m) for m in mops])
        err = {"code": 30} if typ == "fail" else "net-timeout"
        return self.op(p, "txn", inv, typ, inv, error=err)


def kafka_base():
    """c1 sends msgs 1, 2, 3 to key "a" at offsets 0, 1, 2."""
    return (History().send("c1", "a", 1, 0).send("c1", "a", 2, 1)
            .send("c1", "a", 3, 2))


class KafkaCheckerTest(unittest.TestCase):
    def assertErrors(self, h, want, valid=False):
        r = check_kafka(h.h)
        self.assertEqual(r["error-types"], sorted(want), r)
        self.assertIs(r["valid"], valid, r)
        if not valid:
            self.assertIn("bad error types", r["reason"])
            for t in want:
                self.assertIn(t, r["reason"])
        return r

    def test_correct_history_passes(self):
        h = (kafka_base()
             .assign("c2", ["a"], {"a": 0})
             .poll("c2", {"a": 0}, {"a": [[0, 1], [1, 2]]})
             .poll("c2", {"a": 2}, {"a": [[2, 3]]})
             .poll("c2", {"a": 3}, {})
             .send("c1", "a", 4, 3)
             .send("c1", "b", 1, 0)
             .crash("c2")
             .assign("c3", ["a", "b"], {"a": 0, "b": 0}, seek=True)
             .poll("c3", {"a": 0, "b": 0},
                   {"a": [[0, 1], [1, 2], [2, 3], [3, 4]], "b": [[0, 1]]}))
        r = self.assertErrors(h, [], valid=True)
        self.assertEqual((r["send-count"], r["poll-count"], r["key-count"]),
                         (5, 4, 2))

    def test_inconsistent_offsets(self):
        h = (History().send("c1", "a", 1, 0).send("c2", "a", 2, 0)
             .poll("c3", {"a": 0}, {"a": [[0, 1]]})
             .poll("c4", {"a": 0}, {"a": [[0, 2]]}))
        r = self.assertErrors(h, ["inconsistent-offsets"])
        self.assertEqual(r["inconsistent-offsets"]["examples"][0]["msgs"],
                         [1, 2])

    def test_inconsistent_offsets_between_polls_only(self):
        h = (History().send("c1", "a", 1).send("c1", "a", 2, typ="info")
             .poll("c3", {"a": 0}, {"a": [[0, 1]]})
             .poll("c4", {"a": 0}, {"a": [[0, 2]]}))
        h.h[1]["value"]["offset"] = 0
        self.assertErrors(h, ["inconsistent-offsets"])

    def test_duplicate(self):
        h = (History().send("c1", "a", 1, 0).send("c1", "a", 2, 1)
             .poll("c2", {"a": 0}, {"a": [[0, 1], [1, 2], [2, 1]]}))
        r = self.assertErrors(h, ["duplicate"])
        self.assertEqual(r["duplicate"]["examples"][0]["offsets"], [0, 2])

    def test_lost_write(self):
        # Offset 2 was polled; the acknowledged msg 2 at offset 1 never was.
        h = (kafka_base()
             .poll("c2", {"a": 0}, {"a": [[0, 1]]})
             .assign("c3", ["a"], {"a": 2})
             .poll("c3", {"a": 2}, {"a": [[2, 3]]}))
        r = self.assertErrors(h, ["lost-write", "unseen"])
        e = r["lost-write"]["examples"][0]
        self.assertEqual((e["offset"], e["msg"], e["max-polled-offset"]),
                         (1, 2, 2))

    def test_unseen(self):
        h = (History().send("c1", "a", 1, 0).send("c1", "a", 2, 1)
             .poll("c2", {"a": 0}, {"a": [[0, 1]]}))
        r = self.assertErrors(h, ["unseen"])
        self.assertEqual(r["unseen"]["by-key"], {"a": 1})

    def test_unacknowledged_sends_need_not_be_seen(self):
        h = (History().send("c1", "a", 1, 0).send("c1", "a", 2, typ="info")
             .send("c1", "a", 3, typ="fail")
             .poll("c2", {"a": 0}, {"a": [[0, 1]]}))
        self.assertErrors(h, [], valid=True)

    def test_poll_skip_between_polls(self):
        h = (kafka_base()
             .poll("c2", {"a": 0}, {"a": [[0, 1]]})
             .poll("c2", {"a": 1}, {"a": [[2, 3]]})
             .poll("c3", {"a": 1}, {"a": [[1, 2]]}))
        r = self.assertErrors(h, ["poll-skip"])
        e = r["poll-skip"]["examples"][0]
        self.assertEqual((e["last read"], e["then-polled"], e["skipped"]),
                         (0, 2, [1]))

    def test_poll_skip_past_requested_offset(self):
        # First poll of the key: the node started after the offset asked for.
        h = (History().send("c1", "a", 1, 0).send("c1", "a", 2, 1)
             .poll("c2", {"a": 0}, {"a": [[1, 2]]})
             .poll("c3", {"a": 0}, {"a": [[0, 1], [1, 2]]}))
        r = self.assertErrors(h, ["poll-skip"])
        self.assertEqual(r["poll-skip"]["examples"][0]["requested"], 0)

    def test_int_poll_skip(self):
        h = (kafka_base()
             .poll("c2", {"a": 0}, {"a": [[0, 1], [2, 3]]})
             .poll("c3", {"a": 1}, {"a": [[1, 2], [2, 3]]}))
        r = self.assertErrors(h, ["int-poll-skip"])
        self.assertEqual(r["int-poll-skip"]["examples"][0]["skipped"], [1])

    def test_gaps_over_offsets_that_never_existed_are_fine(self):
        h = (History().send("c1", "a", 1, 0).send("c1", "a", 2, 5)
             .poll("c2", {"a": 0}, {"a": [[0, 1], [5, 2]]})
             .poll("c2", {"a": 6}, {}))
        self.assertErrors(h, [], valid=True)

    def test_nonmonotonic_poll(self):
        h = (History().send("c1", "a", 1, 0).send("c1", "a", 2, 1)
             .poll("c2", {"a": 0}, {"a": [[0, 1], [1, 2]]})
             .poll("c2", {"a": 2}, {"a": [[1, 2]]}))
        r = self.assertErrors(h, ["nonmonotonic-poll"])
        e = r["nonmonotonic-poll"]["examples"][0]
        self.assertEqual((e["last read"], e["then-polled"]), (1, 1))

    def test_int_nonmonotonic_poll(self):
        h = (History().send("c1", "a", 1, 0).send("c1", "a", 2, 1)
             .poll("c2", {"a": 0}, {"a": [[0, 1], [1, 2], [1, 2]]}))
        self.assertErrors(h, ["int-nonmonotonic-poll"])

    def test_crash_and_assign_reset_the_consumer(self):
        ok = (History().send("c1", "a", 1, 0).send("c1", "b", 1, 0)
              .poll("c2", {"a": 0}, {"a": [[0, 1]]})
              .crash("c2")
              .poll("c3", {"a": 0}, {"a": [[0, 1]]})
              .assign("c3", ["b"], {"b": 0})
              .assign("c3", ["a", "b"], {"a": 0, "b": 0})
              .poll("c3", {"a": 0, "b": 0}, {"a": [[0, 1]], "b": [[0, 1]]}))
        self.assertErrors(ok, [], valid=True)
        # Keeping the key assigned keeps the position: re-reading is bad.
        bad = (History().send("c1", "a", 1, 0)
               .poll("c2", {"a": 0}, {"a": [[0, 1]]})
               .assign("c2", ["a", "b"], {"a": 1, "b": 0})
               .poll("c2", {"a": 1, "b": 0}, {"a": [[0, 1]]}))
        self.assertErrors(bad, ["nonmonotonic-poll"])

    def test_nonmonotonic_send(self):
        h = (History().send("c1", "a", 1, 1).send("c1", "a", 2, 0)
             .poll("c2", {"a": 0}, {"a": [[0, 2], [1, 1]]}))
        r = self.assertErrors(h, ["nonmonotonic-send"])
        self.assertEqual(r["nonmonotonic-send"]["examples"][0]["offsets"],
                         [1, 0])

    def test_sends_of_different_processes_may_interleave(self):
        h = (History().send("c1", "a", 1, 1).send("c2", "a", 2, 0)
             .poll("c3", {"a": 0}, {"a": [[0, 2], [1, 1]]}))
        self.assertErrors(h, [], valid=True)

    def test_int_nonmonotonic_send_and_allowed_int_send_skip(self):
        h = History().op("c1", "send", None, "ok", {"mops": [
            ["send", "a", 1, 1], ["send", "a", 2, 0]]})
        h.poll("c2", {"a": 0}, {"a": [[0, 2], [1, 1]]})
        self.assertErrors(h, ["int-nonmonotonic-send"])
        h = History().op("c1", "send", None, "ok", {"mops": [
            ["send", "a", 1, 0], ["send", "a", 2, 2]]})
        h.send("c2", "a", 3, 1)
        h.poll("c3", {"a": 0}, {"a": [[0, 1], [1, 3], [2, 2]]})
        r = self.assertErrors(h, ["int-send-skip"], valid=True)
        self.assertEqual(r["bad-error-types"], [])

    def test_g1a(self):
        h = (History().send("c1", "a", 1, typ="fail")
             .poll("c2", {"a": 0}, {"a": [[0, 1]]}))
        r = self.assertErrors(h, ["G1a"])
        self.assertEqual(r["G1a"]["examples"][0]["writer-error"],
                         {"code": 11})

    def test_phantom_msg(self):
        h = (History().send("c1", "a", 1, 0)
             .poll("c2", {"a": 0}, {"a": [[0, 1], [1, 7]]}))
        self.assertErrors(h, ["phantom-msg"])

    def test_huge_offset(self):
        big = 2 ** 60
        h = (History().send("c1", "a", 1, big)
             .poll("c2", {"a": 0}, {"a": [[big, 1]]}))
        r = self.assertErrors(h, ["huge-offset"])
        self.assertEqual(r["huge-offset"]["count"], 2)

    def test_polls_of_failed_commits_still_move_the_consumer(self):
        # The poll returned msgs but its commit failed: the client moved on,
        # so polling from there on is no skip.
        h = (kafka_base()
             .poll("c2", {"a": 0}, {"a": [[0, 1], [1, 2]]}, typ="fail")
             .poll("c2", {"a": 2}, {"a": [[2, 3]]}))
        self.assertErrors(h, [], valid=True)

    def test_worst_realtime_lag(self):
        h = (History().send("c1", "a", 1, 0, t=1)
             .assign("c2", ["a"], {"a": 0})
             .poll("c2", {"a": 0}, {"a": [[0, 1]]}, t=2)
             .send("c1", "a", 2, 1, t=3, dt=0.5)       # known from 3.5 s
             .poll("c2", {"a": 1}, {}, t=6)            # 2.5 s behind
             .poll("c2", {"a": 1}, {"a": [[1, 2]]}, t=7))
        r = self.assertErrors(h, [], valid=True)
        lag = r["worst-realtime-lag"]
        self.assertEqual((lag["process"], lag["key"]), ("c2", "a"))
        self.assertAlmostEqual(lag["lag"], 2.5, places=2)


class TxnCheckerTest(unittest.TestCase):
    def assertAnomalies(self, h, want, bad_ru, bad_rc):
        """want: anomaly types found; bad_ru/bad_rc: which of them each
        model forbids."""
        for model, bad in (("read-uncommitted", bad_ru),
                           ("read-committed", bad_rc)):
            r = check_txn(h.h, model)
            self.assertEqual(r["anomaly-types"], sorted(want), (model, r))
            self.assertEqual(r["bad-anomaly-types"], sorted(bad), (model, r))
            self.assertIs(r["valid"], not bad, (model, r))
            if bad:
                self.assertIn("%s forbids %s" % (model, sorted(bad)[0]),
                              r["reason"])
        return r

    def test_correct_history_passes(self):
        h = (History().txn("c1", [["w", 1, 1], ["w", 2, 1]])
             .txn("c2", [["r", 1, 1], ["w", 1, 2], ["r", 1, 2]])
             .txn("c1", [["r", 1, 2], ["r", 2, 1], ["r", 3, None]])
             .txn("c2", [["w", 3, 1]], typ="fail")
             .txn("c1", [["w", 2, 2]], typ="info")
             .txn("c2", [["r", 2, 2], ["r", 3, None]]))
        r = self.assertAnomalies(h, [], [], [])
        self.assertEqual(r["edge-counts"], {"ww": 1, "wr": 4})
        self.assertEqual((r["ok-count"], r["fail-count"], r["info-count"]),
                         (4, 1, 1))

    def test_g0_write_cycle(self):
        # Each txn read the other's write of a key, then overwrote it:
        # ww both ways (and wr, so G1c as well).
        h = (History().txn("c1", [["w", 1, 1], ["r", 2, 1], ["w", 2, 2]])
             .txn("c2", [["w", 2, 1], ["r", 1, 1], ["w", 1, 2]]))
        r = self.assertAnomalies(h, ["G0", "G1c"], ["G0"], ["G0", "G1c"])
        steps = r["anomalies"]["G0"][0]["steps"]
        self.assertEqual([s["type"] for s in steps], ["ww", "ww"])

    def test_g1a_aborted_read(self):
        h = (History().txn("c1", [["w", 1, 1]], typ="fail")
             .txn("c2", [["r", 1, 1]]))
        r = self.assertAnomalies(h, ["G1a"], [], ["G1a"])
        self.assertEqual(r["anomalies"]["G1a"][0]["writer"]["type"], "fail")

    def test_info_writes_may_be_read(self):
        h = (History().txn("c1", [["w", 1, 1]], typ="info")
             .txn("c2", [["r", 1, 1]]))
        self.assertAnomalies(h, [], [], [])

    def test_g1b_intermediate_read(self):
        h = (History().txn("c1", [["w", 1, 1], ["w", 1, 2]])
             .txn("c2", [["r", 1, 1]]))
        self.assertAnomalies(h, ["G1b"], [], ["G1b"])

    def test_g1c_circular_information_flow(self):
        h = (History().txn("c1", [["w", 1, 1], ["r", 2, 1]])
             .txn("c2", [["w", 2, 1], ["r", 1, 1]]))
        r = self.assertAnomalies(h, ["G1c"], [], ["G1c"])
        steps = r["anomalies"]["G1c"][0]["steps"]
        self.assertEqual([s["type"] for s in steps], ["wr", "wr"])
        self.assertEqual(len(r["anomalies"]["G1c"][0]["cycle"]), 2)

    def test_g1c_through_a_longer_cycle(self):
        h = (History().txn("c1", [["w", 1, 1], ["r", 3, 1]])
             .txn("c2", [["r", 1, 1], ["w", 2, 1]])
             .txn("c3", [["r", 2, 1], ["w", 3, 1]])
             .txn("c4", [["r", 1, None]]))
        r = self.assertAnomalies(h, ["G1c"], [], ["G1c"])
        self.assertEqual(len(r["anomalies"]["G1c"][0]["cycle"]), 3)

    def test_garbage_read(self):
        h = History().txn("c1", [["w", 1, 1]]).txn("c2", [["r", 1, 99]])
        self.assertAnomalies(h, ["garbage-read"], ["garbage-read"],
                             ["garbage-read"])

    def test_future_read(self):
        h = History().txn("c1", [["r", 1, 1], ["w", 1, 1]])
        self.assertAnomalies(h, ["future-read"], ["future-read"],
                             ["future-read"])

    def test_internal_is_reported_but_allowed(self):
        h = (History().txn("c1", [["w", 1, 1], ["r", 1, None]])
             .txn("c2", [["r", 2, None], ["r", 2, None]]))
        r = self.assertAnomalies(h, ["internal"], [], [])
        self.assertEqual(r["anomalies"]["internal"][0]["expected"], 1)

    def test_duplicate_writes(self):
        h = History().txn("c1", [["w", 1, 1]]).txn("c2", [["w", 1, 1]])
        self.assertAnomalies(h, ["duplicate-writes"], ["duplicate-writes"],
                             ["duplicate-writes"])

    def test_cyclic_versions(self):
        h = (History().txn("c1", [["r", 1, 2], ["w", 1, 1]])
             .txn("c2", [["r", 1, 1], ["w", 1, 2]]))
        r = self.assertAnomalies(h, ["G0", "G1c", "cyclic-versions"],
                                 ["G0", "cyclic-versions"],
                                 ["G0", "G1c", "cyclic-versions"])
        self.assertEqual(r["anomalies"]["cyclic-versions"][0]["values"],
                         ["1", "2"])

    def test_empty_transaction_graph(self):
        h = History().txn("c1", [["w", 1, 1]], typ="fail")
        self.assertAnomalies(h, ["empty-transaction-graph"],
                             ["empty-transaction-graph"],
                             ["empty-transaction-graph"])
        self.assertIs(check_txn([], "read-uncommitted")["valid"], False)


def opts(argv):
    o, _ = cli.parse(argv + ["--", "x"])
    return o


class KeyPoolTest(unittest.TestCase):
    def test_rotation_and_unique_values(self):
        pool = KeyPool(3, 4)
        rng = random.Random(1)
        seen = set()
        for _ in range(200):
            k, v = pool.write(rng)
            self.assertNotIn((k, v), seen)
            self.assertTrue(1 <= v <= 4)
            seen.add((k, v))
        self.assertEqual(len(pool.active), 3)
        self.assertGreater(max(pool.active), 40)

    def test_exponential_choice(self):
        pool = KeyPool(10, 16)
        rng = random.Random(2)
        counts = [0] * 10
        for _ in range(20000):
            counts[pool.rand_key(rng)] += 1
        # As Elle's formula: key i of the pool is 2^i times as likely as
        # the first (so new keys, which take a retired key's place, are hot).
        self.assertAlmostEqual(counts[9] / 20000, 0.5, delta=0.03)
        self.assertAlmostEqual(counts[8] / counts[9], 0.5, delta=0.06)
        self.assertGreater(counts[0], 0)


class FakeClient:
    """Answers kafka requests from a script: {type: reply body or None}."""

    def __init__(self, replies):
        self.replies = replies
        self.state = {}
        self.sent = []

    async def call(self, body, timeout):
        self.sent.append(body)
        r = self.replies.get(body["type"])
        return r(body) if callable(r) else r


class KafkaClientTest(unittest.TestCase):
    def wl(self, *argv):
        return Kafka(opts(["-w", "kafka"] + list(argv)))

    def test_poll_advances_and_commits_like_maelstrom(self):
        wl = self.wl()
        c = FakeClient({"poll_ok": None,
                        "poll": {"type": "poll_ok", "msgs": {
                            "a": [[3, 1], [4, 2]], "b": [], "z": [[7, 9]]}},
                        "commit_offsets": {"type": "commit_offsets_ok"}})
        c.state["offsets"] = {"a": 3, "b": 5}
        out = asyncio.run(wl.perform(wl.gen_poll(), c, 1))
        self.assertEqual(out.type, "ok")
        self.assertEqual(c.sent[0], {"type": "poll",
                                     "offsets": {"a": 3, "b": 5}})
        self.assertEqual(c.sent[1], {"type": "commit_offsets",
                                     "offsets": {"a": 4, "z": 7}})
        self.assertEqual(c.state["offsets"], {"a": 5, "b": 5, "z": 8})
        self.assertEqual(out.value["offsets"], {"a": 3, "b": 5})
        self.assertEqual(out.value["committed"], {"a": 4, "z": 7})

    def test_commit_failure_keeps_what_was_polled(self):
        wl = self.wl()
        c = FakeClient({"poll": {"type": "poll_ok",
                                 "msgs": {"a": [[0, 1]]}},
                        "commit_offsets": {"type": "error", "code": 11}})
        out = asyncio.run(wl.perform(wl.gen_poll(), c, 1))
        self.assertEqual((out.type, out.value["msgs"]),
                         ("fail", {"a": [[0, 1]]}))
        c.replies["commit_offsets"] = None
        out = asyncio.run(wl.perform(wl.gen_poll(), c, 1))
        self.assertEqual((out.type, out.error), ("info", "net-timeout"))

    def test_malformed_poll_is_info(self):
        wl = self.wl()
        for msgs in ([1], {"a": [[True, 1]]}, {"a": [[1]]}, {"a": 3}):
            c = FakeClient({"poll": {"type": "poll_ok", "msgs": msgs}})
            out = asyncio.run(wl.perform(wl.gen_poll(), c, 1))
            self.assertEqual(out.type, "info", msgs)
            self.assertIn("unexpected-reply", out.error)
            self.assertEqual(c.state, {})

    def test_assign_uses_committed_offsets_and_is_idempotent(self):
        wl = self.wl()
        c = FakeClient({"list_committed_offsets": {
            "type": "list_committed_offsets_ok", "offsets": {"b": 4}}})
        c.state["offsets"] = {"a": 7, "x": 2}
        req = wl.gen_assign(["a", "b", "c"])
        out = asyncio.run(wl.perform(req, c, 1))
        self.assertEqual(out.type, "ok")
        self.assertEqual(c.state["offsets"], {"a": 7, "b": 4, "c": 0})
        for reply in (None, {"type": "error", "code": 13},
                      {"type": "list_committed_offsets_ok",
                       "offsets": {"a": "7"}}):
            c.replies["list_committed_offsets"] = reply
            self.assertEqual(asyncio.run(wl.perform(req, c, 1)).type,
                             "fail")

    def test_send_reply_validation(self):
        wl = self.wl()
        op = {"value": {"key": "a", "msg": 1}}
        self.assertEqual(wl.complete(op, {"type": "send_ok", "offset": 3},
                                     None),
                         {"key": "a", "msg": 1, "offset": 3})
        for bad in ({"type": "send_ok", "offset": "3"},
                    {"type": "send_ok", "offset": 1.5},
                    {"type": "send_ok"}, {"type": "poll_ok", "offset": 1}):
            with self.assertRaises(UnexpectedReply):
                wl.complete(op, bad, None)

    def test_crash_is_local_info(self):
        wl = self.wl()
        c = FakeClient({})
        out = asyncio.run(wl.perform(wl.gen_crash(), c, 1))
        self.assertEqual(out, Outcome("info", None, None))
        self.assertEqual(c.sent, [])

    def test_generator_mix(self):
        wl = self.wl("--concurrency", "2")
        rng = random.Random(3)
        c = types.SimpleNamespace(state={})
        fs = [wl.gen_op(rng, c).f for _ in range(6400)]
        n = {f: fs.count(f) for f in set(fs)}
        self.assertAlmostEqual(n["send"] / n["poll"], 1, delta=0.1)
        self.assertGreater(n["assign"], 50)
        self.assertLess(n["assign"], 160)
        sends = [r for r in (wl.gen_op(rng, c) for _ in range(3000))
                 if r.f == "send"]
        pairs = {(r.value["key"], r.value["msg"]) for r in sends}
        self.assertEqual(len(pairs), len(sends))
        self.assertTrue(all(isinstance(r.value["key"], str) for r in sends))


class TxnWorkloadTest(unittest.TestCase):
    def test_options(self):
        o = opts(["-w", "txn-rw-register"])
        self.assertEqual((o.consistency_models, o.max_txn_length,
                          o.key_count, o.max_writes_per_key),
                         ("read-committed", 4, 10, 16))
        devnull = open(os.devnull, "w")
        old = sys.stderr
        try:
            sys.stderr = devnull
            for bad in (["--consistency-models",
                         "read-uncommitted,read-committed"],
                        ["--consistency-models", "serializable"],
                        ["--max-txn-length", "0"]):
                with self.assertRaises(SystemExit) as cm:
                    opts(["-w", "txn-rw-register"] + bad)
                self.assertEqual(cm.exception.code, 254, bad)
        finally:
            sys.stderr = old
            devnull.close()

    def test_generator(self):
        wl = TxnRwRegister(opts(["-w", "txn-rw-register",
                                 "--max-txn-length", "3"]))
        rng = random.Random(4)
        written = set()
        lengths = set()
        for _ in range(2000):
            req = wl.gen_op(rng, None)
            lengths.add(len(req.value))
            self.assertEqual(req.body["txn"], req.value)
            for f, k, v in req.value:
                self.assertIn(f, ("r", "w"))
                if f == "w":
                    self.assertNotIn((k, v), written)
                    self.assertLessEqual(v, 16)
                    written.add((k, v))
                else:
                    self.assertIsNone(v)
        self.assertEqual(lengths, {1, 2, 3})

    def test_reply_validation(self):
        wl = TxnRwRegister(opts(["-w", "txn-rw-register"]))
        op = {"value": [["r", 1, None], ["w", 2, 5]]}
        ok = {"type": "txn_ok", "txn": [["r", 1, 3], ["w", 2, 5]]}
        self.assertEqual(wl.complete(op, ok, None), ok["txn"])
        for bad in ([["r", 1, 3]], [["r", 1, 3], ["w", 2, 6]],
                    [["r", 2, 3], ["w", 2, 5]], [["w", 1, 3], ["w", 2, 5]],
                    [["r", 1], ["w", 2, 5]], "nope"):
            with self.assertRaises(UnexpectedReply):
                wl.complete(op, {"type": "txn_ok", "txn": bad}, None)


class KafkaRunTest(unittest.TestCase):
    """The kafka client against the correct single-node kafka node,
    in-process with a short recovery wait: final polls, crash ops."""

    def run_node(self, node, *argv):
        o, cmd = cli.parse(["-w", "kafka", "--concurrency", "2n",
                            "--time-limit", "1", "--rate", "300"]
                           + list(argv)
                           + ["--", os.path.join(HERE, node)])
        store = tempfile.mkdtemp(prefix="maelstrom-unit-")
        old = runner.RECOVERY_WAIT
        runner.RECOVERY_WAIT = 0.2
        try:
            r = runner.Runner(o, Kafka, cmd, store)
            with contextlib.redirect_stderr(io.StringIO()):
                status = asyncio.run(r.run())
        finally:
            runner.RECOVERY_WAIT = old
            shutil.rmtree(store, ignore_errors=True)
        return status, r

    def test_good_node(self):
        status, r = self.run_node(os.path.join("goodnodes", "kafka.py"))
        self.assertEqual(status, 0, r.summary)
        h = r.history
        w = r.results["workload"]
        self.assertGreater(w["send-count"], 50)
        self.assertGreater(w["poll-count"], 50)
        finals = [e for e in h if e.get("final") and e["type"] != "invoke"]
        by_f = {}
        for e in finals:
            by_f.setdefault(e["f"], []).append(e)
        self.assertEqual(len(by_f["crash"]), 2)
        self.assertEqual(len(by_f["assign"]), 2)
        self.assertTrue(all(e["value"]["seek-to-beginning"]
                            for e in by_f["assign"]))
        crashed = {e["process"] for e in by_f["crash"]}
        self.assertFalse(crashed & {e["process"] for e in by_f["poll"]})
        # Every final client read every key up to the highest offset.
        for p in {e["process"] for e in by_f["poll"]}:
            got = {}
            for e in by_f["poll"]:
                if e["process"] == p:
                    for k, prs in e["value"]["msgs"].items():
                        got[k] = max([got.get(k, -1)] + [o for o, _ in prs])
            self.assertEqual(got, r.workload.max_offsets)

    def test_losing_node_is_caught(self):
        status, r = self.run_node(os.path.join("badnodes",
                                               "kafka_lose.py"))
        self.assertEqual(status, 1, r.summary)
        self.assertIn("lost-write", r.results["workload"]["bad-error-types"])
        self.assertIn("unseen", r.results["workload"]["bad-error-types"])


if __name__ == "__main__":
    unittest.main()
