"""Direct unit checks of the harness pieces (run by ./selftest, or alone:
python3 -m unittest test_units from this directory)."""

import asyncio
import contextlib
import io
import os
import random
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from maelharness import checkers, cli, nemesis, runner  # noqa: E402
from maelharness.net import KIND_CLIENT, KIND_NODE, KIND_SERVICE, Network  # noqa: E402,E501
from maelharness.runner import error_type  # noqa: E402
from maelharness.services import LinKV, LinTSO, LwwKV, SeqKV  # noqa: E402
from maelharness.workloads.base import Request  # noqa: E402
from maelharness.workloads.echo import Echo  # noqa: E402
from maelharness.workloads.unique_ids import UniqueIds  # noqa: E402
from maelharness import perf  # noqa: E402
from maelharness.workloads.base import UnexpectedReply  # noqa: E402
from maelharness.workloads.broadcast import (  # noqa: E402
    TOPOLOGIES, Broadcast, frequency_distribution, set_full)
from maelharness.workloads.counter import (  # noqa: E402
    GCounter, PNCounter, acceptable_ranges)
# kafka and txn-rw-register checker and client tests live in their own file
from test_kafka_txn import *  # noqa: E402,F401,F403


def code(reply):
    return reply.get("code") if reply["type"] == "error" else reply["type"]


class LinKVTest(unittest.TestCase):
    def test_read_write_cas(self):
        kv = LinKV()
        self.assertEqual(code(kv.handle("n0", {"type": "read", "key": 1})), 20)
        self.assertEqual(code(kv.handle("n0", {"type": "cas", "key": 1,
                                               "from": 0, "to": 1})), 20)
        kv.handle("n0", {"type": "write", "key": 1, "value": 5})
        self.assertEqual(kv.handle("n1", {"type": "read", "key": 1})["value"],
                         5)
        self.assertEqual(code(kv.handle("n0", {"type": "cas", "key": 1,
                                               "from": 4, "to": 6})), 22)
        self.assertEqual(code(kv.handle("n0", {"type": "cas", "key": 1,
                                               "from": 5, "to": 6})), "cas_ok")
        self.assertEqual(kv.handle("n1", {"type": "read", "key": 1})["value"],
                         6)

    def test_create_if_not_exists(self):
        kv = LinKV()
        r = kv.handle("n0", {"type": "cas", "key": "k", "from": 9, "to": 3,
                             "create_if_not_exists": True})
        self.assertEqual(code(r), "cas_ok")
        self.assertEqual(kv.handle("n0", {"type": "read", "key": "k"})["value"],
                         3)
        # The key exists now, so from must match.
        r = kv.handle("n0", {"type": "cas", "key": "k", "from": 9, "to": 4,
                             "create_if_not_exists": True})
        self.assertEqual(code(r), 22)

    def test_json_equality(self):
        kv = LinKV()
        kv.handle("n0", {"type": "write", "key": 1, "value": True})
        for other in ("1", True, 1.0, [1]):
            self.assertEqual(code(kv.handle("n0", {"type": "read",
                                                   "key": other})), 20)
        # true is not 1, and 1.0 is not 1.
        self.assertEqual(code(kv.handle("n0", {"type": "cas", "key": 1,
                                               "from": 1, "to": 2})), 22)
        kv.handle("n0", {"type": "write", "key": {"a": [1, 2]}, "value": 1})
        self.assertEqual(code(kv.handle("n0", {"type": "cas",
                                               "key": {"a": [1, 2]},
                                               "from": 1.0, "to": 2})), 22)
        self.assertEqual(code(kv.handle("n0", {"type": "cas",
                                               "key": {"a": [1, 2]},
                                               "from": 1, "to": 2})), "cas_ok")

    def test_unknown_type(self):
        self.assertEqual(code(LinKV().handle("n0", {"type": "frob",
                                                    "key": 1})), 10)


class LwwKVTest(unittest.TestCase):
    def test_ignores_create_if_not_exists(self):
        for seed in range(20):
            kv = LwwKV(random.Random(seed))
            r = kv.handle("n0", {"type": "cas", "key": "k", "from": 0,
                                 "to": 1, "create_if_not_exists": True})
            self.assertEqual(code(r), 20)

    def test_converges(self):
        kv = LwwKV(random.Random(1))
        kv.handle("n0", {"type": "write", "key": "k", "value": 1})
        kv.handle("n0", {"type": "write", "key": "k", "value": 2})
        seen = [kv.handle("n1", {"type": "read", "key": "k"}).get("value")
                for _ in range(50)]
        self.assertEqual(seen[-1], 2)   # merges spread the newest write


class SeqKVTest(unittest.TestCase):
    def test_stale_but_monotonic(self):
        kv = SeqKV(random.Random(7))
        for v in range(100):
            kv.handle("a", {"type": "write", "key": "k", "value": v})
        reads = [kv.handle("b", {"type": "read", "key": "k"})["value"]
                 for _ in range(200)]
        self.assertEqual(reads, sorted(reads), "b's view went backwards")
        self.assertLess(reads[0], 99, "first read should be stale here")
        self.assertGreaterEqual(min(reads), 100 - 32, "beyond 32 versions")
        self.assertEqual(reads[-1], 99)

    def test_write_moves_view_to_newest(self):
        kv = SeqKV(random.Random(3))
        for v in range(50):
            kv.handle("a", {"type": "write", "key": "k", "value": v})
        kv.handle("b", {"type": "write", "key": "b-own", "value": 0})
        for _ in range(20):
            self.assertEqual(kv.handle("b", {"type": "read",
                                             "key": "k"})["value"], 49)

    def test_writer_reads_its_writes(self):
        kv = SeqKV(random.Random(5))
        for v in range(40):
            kv.handle("a", {"type": "write", "key": "k", "value": v})
            self.assertEqual(kv.handle("a", {"type": "read",
                                             "key": "k"})["value"], v)

    def test_cas_applies_to_newest_only(self):
        for seed in range(30):
            kv = SeqKV(random.Random(seed))
            for v in range(6):
                kv.handle("a", {"type": "write", "key": "k", "value": v})
            # Would succeed on a stale version, but mutations go to the
            # newest, where it fails (22); on the oldest, k is absent (20).
            r = kv.handle("b", {"type": "cas", "key": "k", "from": 0,
                                "to": 42})
            self.assertIn(code(r), (20, 22))
            self.assertEqual(kv.newest(), 6)
            # A cas can also fail against a stale version; retried, it
            # succeeds once b's view has caught up.
            for _ in range(100):
                r = kv.handle("b", {"type": "cas", "key": "k", "from": 5,
                                    "to": 6})
                if code(r) == "cas_ok":
                    break
                self.assertIn(code(r), (20, 22))
            self.assertEqual(code(r), "cas_ok")
            self.assertEqual(kv.handle("b", {"type": "read",
                                             "key": "k"})["value"], 6)

    def test_stale_read_can_miss_key(self):
        stale = 0
        for seed in range(30):
            kv = SeqKV(random.Random(seed))
            kv.handle("a", {"type": "write", "key": "x", "value": 1})
            if code(kv.handle("b", {"type": "read", "key": "x"})) == 20:
                stale += 1
        self.assertGreater(stale, 0)
        self.assertLess(stale, 30)

    def test_create_if_not_exists(self):
        kv = SeqKV(random.Random(1))
        r = kv.handle("a", {"type": "cas", "key": "k", "from": 0, "to": 1,
                            "create_if_not_exists": True})
        self.assertEqual(code(r), "cas_ok")
        self.assertEqual(kv.handle("a", {"type": "read",
                                         "key": "k"})["value"], 1)


class LinTSOTest(unittest.TestCase):
    def test_counts_from_zero(self):
        tso = LinTSO()
        self.assertEqual([tso.handle("n0", {"type": "ts"})["ts"]
                          for _ in range(3)], [0, 1, 2])


def run_async(coro):
    return asyncio.run(coro)


class NetworkTest(unittest.TestCase):
    def make(self, latency, dist="constant", seed=1):
        loop = asyncio.get_running_loop()
        net = Network(loop, latency, dist, random.Random(seed))
        got = {}
        for ident, kind in (("n0", KIND_NODE), ("n1", KIND_NODE),
                            ("n2", KIND_NODE), ("c9", KIND_CLIENT),
                            ("lin-kv", KIND_SERVICE)):
            got[ident] = []
            net.register(ident, kind,
                         lambda env, l=got[ident]: l.append(env))
        return net, got

    def test_in_order_per_destination(self):
        async def go():
            net, got = self.make(5, "exponential")
            sent = []
            for i in range(300):
                src = "n0" if i % 3 else "n2"
                sent.append(net.send(src, "n1", {"i": i})["id"])
                if i % 50 == 0:
                    await asyncio.sleep(0.002)
            await asyncio.sleep(0.3)
            self.assertEqual([e["id"] for e in got["n1"]], sent)
        run_async(go())

    def test_client_waits_behind_node_message(self):
        async def go():
            net, got = self.make(50)
            net.send("n0", "n1", {"first": True})
            net.send("c9", "n1", {"second": True})
            net.send("c9", "n2", {"free": True})
            # Nothing queued for n2: delivered at once, no latency.
            self.assertEqual(len(got["n2"]), 1)
            self.assertEqual(got["n1"], [])
            await asyncio.sleep(0.1)
            self.assertEqual([list(e["body"]) for e in got["n1"]],
                             [["first"], ["second"]])
        run_async(go())

    def test_latency_applies_to_nodes_and_services(self):
        async def go():
            net, got = self.make(40)
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            net.send("n0", "lin-kv", {})
            net.send("n0", "c9", {})
            self.assertEqual(len(got["c9"]), 1)
            self.assertEqual(got["lin-kv"], [])
            while not got["lin-kv"]:
                await asyncio.sleep(0.005)
            self.assertGreaterEqual(loop.time() - t0, 0.035)
        run_async(go())

    def test_partition_drops_at_delivery(self):
        async def go():
            net, got = self.make(50)
            net.send("n0", "n1", {"k": "before"})     # in flight
            net.set_grudge({"n1": {"n0"}})
            net.send("n1", "n0", {"k": "reverse"})    # n0 holds no grudge
            net.send("n0", "lin-kv", {"k": "service"})
            net.send("c9", "n1", {"k": "client"})
            await asyncio.sleep(0.1)
            self.assertEqual(got["n1"][0]["body"]["k"], "client")
            self.assertEqual(len(got["n1"]), 1)
            self.assertEqual(len(got["n0"]), 1)
            self.assertEqual(len(got["lin-kv"]), 1)
            net.send("n0", "n1", {"k": "during"})     # healed before due
            await asyncio.sleep(0.01)
            net.heal()
            await asyncio.sleep(0.08)
            self.assertEqual([e["body"]["k"] for e in got["n1"]],
                             ["client", "during"])
            s = net.stats.summary(1)
            self.assertEqual(s["servers"]["send-count"], 4)
            self.assertEqual(s["servers"]["recv-count"], 3)
            self.assertEqual(s["clients"]["send-count"], 1)
            self.assertEqual(net.stats.dropped, 1)
        run_async(go())

    def test_uniform_bounds(self):
        async def go():
            net, _ = self.make(10, "uniform")
            xs = [net._sample_latency() for _ in range(2000)]
            self.assertTrue(all(0 <= x <= 0.02 for x in xs))
            self.assertAlmostEqual(sum(xs) / len(xs), 0.01, delta=0.001)
        run_async(go())


class NemesisTest(unittest.TestCase):
    nodes = ["n%d" % i for i in range(5)]

    def test_majorities_ring(self):
        for n in (3, 4, 5, 7):
            nodes = ["n%d" % i for i in range(n)]
            g = nemesis.majorities_ring(nodes, random.Random(n))
            views = []
            for node in nodes:
                sees = set(nodes) - g.get(node, set())
                self.assertIn(node, sees)
                self.assertGreater(len(sees), n / 2)
                views.append(frozenset(sees))
            self.assertEqual(len(set(views)), n)

    def test_shapes(self):
        rng = random.Random(2)
        g = nemesis.one(self.nodes, rng)
        isolated = [n for n in self.nodes if len(g[n]) == 4]
        self.assertEqual(len(isolated), 1)
        g = nemesis.majority(self.nodes, rng)
        self.assertEqual(sorted(len(v) for v in g.values()),
                         [2, 2, 2, 3, 3])
        g = nemesis.minority_third(self.nodes, rng)
        self.assertEqual(sorted(len(v) for v in g.values()),
                         [1, 1, 1, 1, 4])
        for shape in nemesis.SHAPES.values():
            self.assertEqual(shape(["n0"], rng), {})


def ev(process, typ, f, value, **kw):
    d = {"process": process, "type": typ, "f": f, "value": value, "time": 0}
    d.update(kw)
    return d


class CheckerTest(unittest.TestCase):
    def test_unique_ids_json_equality(self):
        h = []
        for i, v in enumerate([1, "1", 1.0, True, [1], "n0-1"]):
            h += [ev("c%d" % i, "invoke", "generate", None),
                  ev("c%d" % i, "ok", "generate", v)]
        r = UniqueIds.check(None, h, {})
        self.assertIs(r["valid"], True)
        self.assertEqual(r["acknowledged-count"], 6)
        h += [ev("c9", "invoke", "generate", None),
              ev("c9", "ok", "generate", "1")]
        r = UniqueIds.check(None, h, {})
        self.assertIs(r["valid"], False)
        self.assertEqual(r["duplicated-count"], 1)
        self.assertEqual(r["attempted-count"], 7)

    def test_echo(self):
        h = [ev("c1", "invoke", "echo", "Please echo 1"),
             ev("c1", "ok", "echo", "Please echo 1"),
             ev("c2", "invoke", "echo", "Please echo 2"),
             ev("c1", "invoke", "echo", "Please echo 3"),
             ev("c2", "info", "echo", "Please echo 2"),
             ev("c1", "ok", "echo", "Please echo 4")]
        r = Echo.check(None, h, {})
        self.assertIs(r["valid"], False)
        self.assertEqual(r["mismatch-count"], 1)
        self.assertEqual(r["mismatches"][0]["sent"], "Please echo 3")

    def test_stats_and_availability(self):
        h = [ev("c1", "invoke", "read", None), ev("c1", "fail", "read", None),
             ev("c1", "invoke", "add", 1), ev("c1", "ok", "add", 1),
             ev("nemesis", "info", "start-partition", None)]
        r = checkers.stats(h)
        self.assertIs(r["valid"], False)
        self.assertIn("read never returned ok", r["reason"])
        self.assertIs(checkers.stats(h, exempt={"read"})["valid"], True)
        self.assertIs(checkers.availability(h, "total")["valid"], False)
        self.assertIs(checkers.availability(h, 0.5)["valid"], True)
        self.assertIs(checkers.availability(h, 0.6)["valid"], False)

    def test_merge_valid(self):
        self.assertIs(checkers.merge_valid([True, True]), True)
        self.assertIs(checkers.merge_valid([True, "unknown", False]), False)
        self.assertEqual(checkers.merge_valid([True, "unknown"]), "unknown")

    def test_error_type(self):
        for c in (1, 10, 11, 12, 14, 20, 21, 22, 30):
            self.assertEqual(error_type(c, "x"), "fail")
        for c in (0, 13, 1000, 5000, 99, None, "11", True):
            self.assertEqual(error_type(c, "x"), "info")
        self.assertEqual(error_type(13, "read", {"read"}), "fail")


class CliTest(unittest.TestCase):
    def test_parse(self):
        opts, cmd = cli.parse(["-w", "echo", "--node-count", "3",
                               "--concurrency", "2n", "--", "./x", "--m=y"])
        self.assertEqual(opts.concurrency, 6)
        self.assertTrue(os.path.isabs(cmd[0]))
        self.assertEqual(cmd[1], "--m=y")
        opts, cmd = cli.parse(["-w", "unique-ids", "--concurrency", "4",
                               "--bin", "dsd", "--", "--mode=unique-ids"])
        self.assertEqual((opts.concurrency, cmd),
                         (4, ["dsd", "--mode=unique-ids"]))

    def test_bad_options_exit_254(self):
        bad = [["-w", "echo", "--frobnicate", "--", "x"],
               ["-w", "nope", "--", "x"],
               ["-w", "echo"],
               ["-w", "echo", "--availability", "most", "--", "x"],
               ["-w", "echo", "--nemesis", "kill", "--", "x"],
               ["-w", "echo", "--concurrency", "0n", "--", "x"]]
        devnull = open(os.devnull, "w")
        old = sys.stderr
        try:
            sys.stderr = devnull
            for argv in bad:
                with self.assertRaises(SystemExit) as cm:
                    cli.parse(argv)
                self.assertEqual(cm.exception.code, 254, argv)
        finally:
            sys.stderr = old
            devnull.close()


class FinalPhaseTest(unittest.TestCase):
    """The final-phase plumbing (for broadcast, g-counter, kafka) with a
    made-up echo workload whose clients each send one final echo."""

    def test_final_phase(self):
        class EchoFinal(Echo):
            name = "echo-final"
            has_final_phase = True

            def final_ops(self, client):
                return [Request("final-echo", "bye " + client.id,
                                {"type": "echo", "echo": "bye " + client.id})]

        node = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                            "goodnodes", "echo.py")
        opts, cmd = cli.parse(["-w", "echo", "--node-count", "2",
                               "--time-limit", "0.6", "--rate", "20",
                               "--nemesis", "partition",
                               "--nemesis-interval", "0.2", "--", node])
        store = tempfile.mkdtemp(prefix="maelstrom-unit-")
        old = runner.RECOVERY_WAIT
        runner.RECOVERY_WAIT = 0.3
        try:
            r = runner.Runner(opts, EchoFinal, cmd, store)
            with contextlib.redirect_stderr(io.StringIO()) as err:
                status = asyncio.run(r.run())
        finally:
            runner.RECOVERY_WAIT = old
            shutil.rmtree(store, ignore_errors=True)
        self.assertEqual(status, 0, r.summary)
        self.assertIn("Waiting for recovery...", err.getvalue())
        h = r.history
        finals = [e for e in h if e.get("final")]
        self.assertEqual(sorted((e["process"], e["type"]) for e in finals),
                         [("c2", "invoke"), ("c2", "ok"),
                          ("c3", "invoke"), ("c3", "ok")])
        heal = [e for e in h if e["process"] == "nemesis"][-1]
        self.assertEqual(heal["f"], "stop-partition")
        first_final = min(e["time"] for e in finals)
        self.assertGreaterEqual(first_final - heal["time"], 0.3e9)
        self.assertTrue(all(e["time"] < heal["time"] for e in h
                            if e["process"] != "nemesis"
                            and not e.get("final")))


MS = 1000000


class SetFullTest(unittest.TestCase):
    """Jepsen set-full semantics (broadcast), on hand-made histories."""

    def check(self, h):
        return set_full(h, add_f="broadcast", read_f="read")

    def test_stable_latency_from_last_absent_invocation(self):
        h = [ev("c1", "invoke", "broadcast", 0, time=0),
             ev("c1", "ok", "broadcast", 0, time=1 * MS),
             ev("c2", "invoke", "read", None, time=5 * MS),
             ev("c2", "ok", "read", [], time=6 * MS),
             ev("c2", "invoke", "read", None, time=10 * MS),
             ev("c2", "ok", "read", [0], time=11 * MS)]
        r = self.check(h)
        self.assertIs(r["valid"], True)
        self.assertEqual((r["stable-count"], r["lost-count"],
                          r["stale-count"]), (1, 0, 1))
        # (5 ms + 1 ns) - 1 ms, floored to whole ms
        self.assertEqual(r["stable-latencies"]["0.5"], 4)
        self.assertEqual(r["worst-stale"][0]["element"], 0)
        self.assertEqual(r["worst-stale"][0]["last-absent"]["index"], 2)

    def test_lost_needs_absent_read_after_known(self):
        h = [ev("c1", "invoke", "broadcast", 0, time=0),
             ev("c1", "ok", "broadcast", 0, time=1 * MS),
             ev("c2", "invoke", "read", None, time=2 * MS),
             ev("c2", "ok", "read", [0], time=3 * MS),
             ev("c2", "invoke", "read", None, time=9 * MS),
             ev("c2", "ok", "read", [], time=10 * MS)]
        r = self.check(h)
        self.assertIs(r["valid"], False)
        self.assertEqual(r["lost"], [0])
        self.assertEqual(r["lost-latencies"]["1"], 1)   # 2 ms + 1 ns - 1 ms
        self.assertIn("1 of 1 values lost", r["reason"])

    def test_absent_read_concurrent_with_add_is_never_read(self):
        # The read is invoked before the add completes: it may linearize
        # before the add, so its miss proves nothing.
        h = [ev("c1", "invoke", "broadcast", 0, time=0),
             ev("c2", "invoke", "read", None, time=1),
             ev("c1", "ok", "broadcast", 0, time=2),
             ev("c2", "ok", "read", [], time=3)]
        r = self.check(h)
        self.assertEqual(r["never-read"], [0])
        self.assertEqual(r["valid"], "unknown")
        self.assertIn("no value is stable", r["reason"])

    def test_known_from_first_read_and_unacked_add(self):
        h = [ev("c1", "invoke", "broadcast", 0, time=0),
             ev("c2", "invoke", "read", None, time=1 * MS),
             ev("c2", "ok", "read", [0], time=2 * MS),
             ev("c1", "info", "broadcast", 0, time=5000 * MS),
             ev("c3", "invoke", "read", None, time=5001 * MS),
             ev("c3", "ok", "read", [], time=5002 * MS)]
        r = self.check(h)
        # known is the read's completion (index 2) < last absent (index 4).
        self.assertEqual(r["lost"], [0])

    def test_highest_invocation_wins_regardless_of_completion_order(self):
        # Read A (absent) is invoked first but completes after read B
        # (present): last-present (B's invocation) is later, so stable.
        h = [ev("c1", "invoke", "broadcast", 0, time=0),
             ev("c1", "ok", "broadcast", 0, time=1 * MS),
             ev("c2", "invoke", "read", None, time=3 * MS),
             ev("c3", "invoke", "read", None, time=4 * MS),
             ev("c3", "ok", "read", [0], time=5 * MS),
             ev("c2", "ok", "read", [], time=6 * MS)]
        r = self.check(h)
        self.assertIs(r["valid"], True)
        self.assertEqual(r["stable-latencies"]["0"], 2)

    def test_only_adds_invoked_before_the_read_are_updated(self):
        h = [ev("c2", "invoke", "read", None, time=0),
             ev("c1", "invoke", "broadcast", 0, time=1),
             ev("c2", "ok", "read", [], time=2),       # 0 absent (concurrent)
             ev("c1", "ok", "broadcast", 0, time=3),
             ev("c2", "invoke", "read", None, time=4),
             ev("c2", "ok", "read", [0, 7, "x"], time=5)]
        r = self.check(h)
        self.assertIs(r["valid"], True)
        self.assertEqual(r["attempt-count"], 1)
        self.assertEqual(r["unexpected-count"], 2)   # informational only

    def test_duplicates_and_json_equality(self):
        h = [ev("c1", "invoke", "broadcast", 1, time=0),
             ev("c1", "ok", "broadcast", 1, time=1),
             ev("c2", "invoke", "read", None, time=2),
             ev("c2", "ok", "read", [1.0, True, "1"], time=3)]
        r = self.check(h)
        self.assertEqual(r["lost"], [1])    # 1.0, true and "1" are not 1
        self.assertEqual(r["duplicated-count"], 0)
        h += [ev("c2", "invoke", "read", None, time=4),
              ev("c2", "ok", "read", [1, 1], time=5)]
        r = self.check(h)
        self.assertEqual(r["stable-count"], 1)
        self.assertEqual(r["duplicated"], {"1": 2})
        self.assertIs(r["valid"], False)
        self.assertIn("more than once in a single read", r["reason"])

    def test_failed_reads_and_nemesis_ignored(self):
        h = [ev("c1", "invoke", "broadcast", 0, time=0),
             ev("c1", "ok", "broadcast", 0, time=1),
             ev("nemesis", "info", "start-partition", None),
             ev("c2", "invoke", "read", None, time=2),
             ev("c2", "fail", "read", None, time=3),
             ev("c2", "invoke", "read", None, time=4),
             ev("c2", "ok", "read", [0], time=5)]
        r = self.check(h)
        self.assertIs(r["valid"], True)
        self.assertEqual(r["stale-count"], 0)

    def test_frequency_distribution(self):
        self.assertEqual(frequency_distribution(range(10, 0, -1)),
                         {"0": 1, "0.5": 6, "0.95": 10, "0.99": 10, "1": 10})
        self.assertEqual(frequency_distribution([7]),
                         {"0": 7, "0.5": 7, "0.95": 7, "0.99": 7, "1": 7})
        self.assertIsNone(frequency_distribution([]))
        xs = list(range(100))
        d = frequency_distribution(xs)
        self.assertEqual((d["0.5"], d["0.95"], d["0.99"]), (50, 95, 99))


class TopologyTest(unittest.TestCase):
    def test_grid(self):
        nodes = ["n%d" % i for i in range(5)]
        self.assertEqual(TOPOLOGIES["grid"](nodes),
                         {"n0": ["n3", "n1"], "n1": ["n4", "n2", "n0"],
                          "n2": ["n1"], "n3": ["n0", "n4"],
                          "n4": ["n1", "n3"]})
        nodes = ["n%d" % i for i in range(25)]
        g = TOPOLOGIES["grid"](nodes)
        self.assertEqual(max(len(v) for v in g.values()), 4)
        self.assertEqual(sorted(g["n12"]), ["n11", "n13", "n17", "n7"])

    def test_shapes_are_symmetric_and_connected(self):
        nodes = ["n%d" % i for i in range(25)]
        for name, topo in TOPOLOGIES.items():
            t = topo(nodes)
            self.assertEqual(sorted(t), sorted(nodes), name)
            for a, nb in t.items():
                self.assertNotIn(a, nb, name)
                for b in nb:
                    self.assertIn(a, t[b], name)
            seen, todo = {"n0"}, ["n0"]
            while todo:
                for b in t[todo.pop()]:
                    if b not in seen:
                        seen.add(b)
                        todo.append(b)
            self.assertEqual(len(seen), 25, name)
        self.assertEqual(TOPOLOGIES["tree4"](nodes)["n0"],
                         ["n1", "n2", "n3", "n4"])
        self.assertEqual(TOPOLOGIES["tree2"](nodes)["n1"], ["n0", "n3", "n4"])
        self.assertEqual(TOPOLOGIES["line"](nodes)["n24"], ["n23"])
        self.assertEqual(len(TOPOLOGIES["total"](nodes)["n3"]), 24)

    def test_one_topology_request_per_node(self):
        opts, _ = cli.parse(["-w", "broadcast", "--node-count", "3",
                             "--topology", "line", "--", "x"])
        reqs = Broadcast(opts).setup_requests(["n0", "n1", "n2"], None)
        self.assertEqual([n for n, _ in reqs], ["n0", "n1", "n2"])
        self.assertEqual(reqs[0][1], {"type": "topology", "topology": {
            "n0": ["n1"], "n1": ["n0", "n2"], "n2": ["n1"]}})

    def test_generator_values_once_each(self):
        opts, _ = cli.parse(["-w", "broadcast", "--", "x"])
        w = Broadcast(opts)
        rng = random.Random(4)
        ops = [w.gen_op(rng, None) for _ in range(400)]
        vals = [r.value for r in ops if r.f == "broadcast"]
        self.assertEqual(vals, list(range(len(vals))))
        self.assertTrue(150 < len(vals) < 250)
        self.assertEqual(ops[-1].body.get("type"), ops[-1].f)


class CounterTest(unittest.TestCase):
    def test_acceptable_ranges(self):
        self.assertEqual(acceptable_ranges(10, []), [[10, 10]])
        self.assertEqual(acceptable_ranges(10, [3, 3]),
                         [[10, 10], [13, 13], [16, 16]])
        self.assertEqual(acceptable_ranges(10, [1, 2, 0]), [[10, 13]])
        self.assertEqual(acceptable_ranges(10, [-5, 4]),
                         [[5, 5], [9, 10], [14, 14]])
        self.assertEqual(acceptable_ranges(0, [2, 4, 4]),
                         [[0, 0], [2, 2], [4, 4], [6, 6], [8, 8], [10, 10]])
        # Brute force against the subset sums.
        rng = random.Random(9)
        for _ in range(200):
            ds = [rng.randrange(10) - 5 for _ in range(rng.randrange(7))]
            base = rng.randrange(-20, 20)
            sums = {base}
            for d in ds:
                sums |= {s + d for s in sums}
            got = set()
            for lo, hi in acceptable_ranges(base, ds):
                got |= set(range(lo, hi + 1))
            self.assertEqual(got, sums, (base, ds))

    def test_only_final_reads_judged(self):
        h = [ev("c1", "invoke", "add", 3), ev("c1", "ok", "add", 3),
             ev("c1", "invoke", "add", 4), ev("c1", "info", "add", 4),
             ev("c2", "invoke", "add", 2), ev("c2", "fail", "add", 2),
             ev("c3", "invoke", "read", None), ev("c3", "ok", "read", 99),
             ev("c3", "invoke", "read", None, final=True),
             ev("c3", "ok", "read", 7, final=True),
             ev("c4", "invoke", "read", None, final=True),
             ev("c4", "ok", "read", 3, final=True)]
        r = GCounter.check(None, h, {})
        self.assertIs(r["valid"], True)
        self.assertEqual(r["acceptable"], [[3, 3], [7, 7]])
        self.assertEqual(r["final-reads"], [7, 3])
        h[-1] = ev("c4", "ok", "read", 5, final=True)
        r = PNCounter.check(None, h, {})
        self.assertIs(r["valid"], False)
        self.assertEqual(r["errors"][0]["value"], 5)
        self.assertIn("1 of 2 final reads outside the acceptable set "
                      "{3..3,7..7}", r["reason"])

    def test_generators(self):
        opts, _ = cli.parse(["-w", "g-counter", "--", "x"])
        rng = random.Random(2)
        ops = [GCounter(opts).gen_op(rng, None) for _ in range(3000)]
        adds = [r.value for r in ops if r.f == "add"]
        self.assertEqual(sorted(set(adds)), [0, 1, 2, 3, 4])
        self.assertAlmostEqual(len(adds) / 3000.0, 1 / 3.0, delta=0.04)
        ops = [PNCounter(opts).gen_op(rng, None) for _ in range(3000)]
        adds = [r.value for r in ops if r.f == "add"]
        self.assertEqual(sorted(set(adds)), list(range(-5, 5)))
        self.assertEqual(ops[0].body["type"], ops[0].f)

    def test_read_value_must_be_an_integer(self):
        w = PNCounter(None)
        op = {"f": "read", "value": None}
        self.assertEqual(w.complete(op, {"type": "read_ok", "value": 4.0},
                                    None), 4)
        for bad in (4.5, "4", True, None):
            with self.assertRaises(UnexpectedReply):
                w.complete(op, {"type": "read_ok", "value": bad}, None)


class PerfTest(unittest.TestCase):
    def opts(self, *argv):
        return cli.parse(["-w", "broadcast"] + list(argv) + ["--", "x"])[0]

    def test_bars(self):
        results = {"workload": {"stable-latencies": {"0.5": 399, "1": 600}},
                   "net": {"servers": {"msgs-per-op": 29.9}}}
        self.assertIsNone(perf.check(self.opts(), results))
        r = perf.check(self.opts("--max-median-latency", "400",
                                 "--max-msgs-per-op", "30"), results)
        self.assertIs(r["valid"], True)
        r = perf.check(self.opts("--max-median-latency", "400",
                                 "--max-latency", "600"), results)
        self.assertIs(r["valid"], False)
        self.assertEqual(r["reason"], "max stable latency 600 ms is not "
                         "below --max-latency 600")
        r = perf.check(self.opts("--max-latency", "600"),
                       {"workload": {}, "net": {"servers": {}}})
        self.assertEqual(r["valid"], "unknown")

    def test_bad_options_exit_254(self):
        devnull = open(os.devnull, "w")
        old = sys.stderr
        try:
            sys.stderr = devnull
            for argv in (["--topology", "ring"], ["--max-latency", "-1"],
                         ["--max-msgs-per-op", "lots"]):
                with self.assertRaises(SystemExit) as cm:
                    self.opts(*argv)
                self.assertEqual(cm.exception.code, 254, argv)
        finally:
            sys.stderr = old
            devnull.close()


if __name__ == "__main__":
    unittest.main()
