"""One test run: start nodes, init, generate load, nemesis, final phase, check.

Phases follow Maelstrom (maelstrom.md sections 1, 4, 7):
  start N processes -> init (10 s) -> workload setup requests ->
  main phase (generator at --rate, nemesis) for --time-limit ->
  wait for ops still in flight -> heal -> [final phase] -> SIGKILL -> check.

Node stdout lines are checked against the hazards of section 1.4; the first
one a node commits is recorded as a fault, and from then on nothing more is
delivered from that node (Maelstrom's reader thread dies the same way).
A node exiting before the end is a crash: the run stops and exits 255.
"""

import asyncio
import json
import os
import random
import re
import signal
import sys
import tempfile
import time

from . import checkers, perf
from .nemesis import describe, random_partition
from .net import KIND_CLIENT, KIND_NODE, KIND_SERVICE, Network
from .services import make_services
from .workloads.base import Outcome, UnexpectedReply

DEFINITE_CODES = frozenset((1, 10, 11, 12, 14, 20, 21, 22, 30))
INIT_TIMEOUT = 10.0
RECOVERY_WAIT = 10.0
LINE_LIMIT = 64 * 1024 * 1024
FAULT_LINE_MAX = 200

EXIT_VALID, EXIT_INVALID, EXIT_UNKNOWN, EXIT_CRASH = 0, 1, 2, 255

_enc = json.JSONEncoder(separators=(",", ":"))
_client_re = re.compile(r"^c\d+$")


def error_type(code, f, idempotent=()):
    """fail for a definite error code or an idempotent f, else info."""
    if f in idempotent:
        return "fail"
    if type(code) is int and code in DEFINITE_CODES:
        return "fail"
    return "info"


def _truncate(raw):
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    text = text.rstrip("\n")
    if len(text) > FAULT_LINE_MAX:
        text = text[:FAULT_LINE_MAX] + "...(%d chars)" % len(text)
    return text


class Client:
    """A synchronous Maelstrom client c<k> bound to one node."""

    __slots__ = ("runner", "id", "node", "state", "next_msg_id", "waiting",
                 "fut")

    def __init__(self, runner, ident, node):
        self.runner = runner
        self.id = ident
        self.node = node
        self.state = {}
        self.next_msg_id = 0
        self.waiting = None
        self.fut = None

    def deliver(self, env):
        body = env["body"]
        irt = body.get("in_reply_to")
        fut = self.fut
        if (fut is not None and not fut.done() and irt == self.waiting
                and not isinstance(irt, bool)):
            fut.set_result(body)
            return
        self.runner.late_replies += 1
        self.runner.log("%s ignored a reply it is not waiting for from %s: %s"
                        % (self.id, env["src"], _truncate(_enc.encode(body))))

    async def call(self, body, timeout):
        """Send body to our node; return the reply body, or None on timeout."""
        loop = self.runner.loop
        self.next_msg_id += 1
        mid = self.next_msg_id
        body["msg_id"] = mid
        fut = loop.create_future()
        self.fut = fut
        self.waiting = mid
        handle = loop.call_later(timeout, _expire, fut)
        self.runner.net.send(self.id, self.node, body)
        try:
            return await fut
        finally:
            handle.cancel()
            self.fut = None
            self.waiting = None


def _expire(fut):
    if not fut.done():
        fut.set_result(None)


class Slot:
    """One unit of concurrency; holds its current client."""

    __slots__ = ("index", "node", "client")

    def __init__(self, index, node):
        self.index = index
        self.node = node
        self.client = None


class NodeProc:
    __slots__ = ("id", "proc", "faulted", "ignored", "exit", "tasks", "log")

    def __init__(self, ident):
        self.id = ident
        self.proc = None
        self.faulted = False
        self.ignored = 0
        self.exit = None
        self.tasks = []
        self.log = None


class Runner:
    def __init__(self, opts, workload_cls, cmd, store):
        self.opts = opts
        self.workload = workload_cls(opts)
        self.cmd = cmd
        self.store = store
        self.node_ids = ["n%d" % i for i in range(opts.node_count)]
        master = random.Random(opts.seed)
        self.gen_rng = random.Random(master.random())
        self.nem_rng = random.Random(master.random())
        self.net_rng = random.Random(master.random())
        self.svc_rng = random.Random(master.random())
        self.setup_rng = random.Random(master.random())
        self.history = []
        self.faults = []
        self.crash = None          # reason text once a node exited early
        self.failure = None        # init-failed / setup-failed / harness text
        self.nodes = {}
        self.next_client = 0
        self.closed_clients = set()
        self.late_replies = 0
        self.stopping = False
        self.free = []
        self.op_tasks = set()
        self.partitioned = False
        self.logf = None
        self.loop = None
        self.net = None
        self.t0 = None

    # -- logging and history ----------------------------------------------

    def now(self):
        return self.loop.time() - self.t0

    def log(self, text, echo=False):
        line = "%9.3f %s" % (self.now() if self.t0 is not None else 0, text)
        if self.logf:
            self.logf.write(line + "\n")
        if echo:
            print(text, file=sys.stderr, flush=True)

    def record(self, process, typ, f, value, **extra):
        e = {"index": len(self.history),
             "time": int((self.loop.time() - self.t0) * 1e9),
             "process": process, "type": typ, "f": f, "value": value}
        if extra:
            e.update(extra)
        self.history.append(e)
        return e

    # -- faults and crashes -----------------------------------------------

    def fault(self, node, kind, reason, raw):
        node.faulted = True
        f = {"node": node.id, "time": round(self.now(), 3), "kind": kind,
             "reason": "fault: " + reason, "line": _truncate(raw)}
        self.faults.append(f)
        self.log("%s; line: %s" % (f["reason"], f["line"]), echo=True)
        self.log("nothing more from %s is delivered (as Maelstrom's Error! "
                 "in maelstrom.process)" % node.id, echo=True)

    def handle_line(self, node, raw):
        try:
            msg = json.loads(raw)
        except ValueError:
            return self.fault(node, "not-json", "%s wrote a line that is not "
                              "JSON: %r" % (node.id, _truncate(raw)[:60]), raw)
        if not isinstance(msg, dict):
            return self.fault(node, "not-object", "%s wrote JSON that is not "
                              "an object" % node.id, raw)
        src = msg.get("src")
        dest = msg.get("dest")
        if not isinstance(src, str) or not isinstance(dest, str):
            return self.fault(node, "no-src-dest", "%s wrote a message "
                              "without string src and dest" % node.id, raw)
        body = msg.get("body")
        if not isinstance(body, dict):
            return self.fault(node, "bad-body", "%s wrote a message whose "
                              "body is not an object" % node.id, raw)
        if src != node.id:
            return self.fault(node, "bad-src", "%s sent a message with src %s "
                              "(not its own id)" % (node.id, src), raw)
        net = self.net
        if not net.has(dest):
            if dest in self.closed_clients:
                hint = "late reply to a closed client?"
            elif _client_re.match(dest):
                hint = "no such client"
            else:
                hint = "no such node"
            return self.fault(node, "unknown-dest", "%s sent to unknown dest "
                              "%s (%s)" % (node.id, dest, hint), raw)
        net.send(src, dest, body)

    async def read_stdout(self, node):
        reader = node.proc.stdout
        while True:
            try:
                raw = await reader.readline()
            except ValueError:
                if not node.faulted:
                    self.fault(node, "line-too-long", "%s wrote a line longer "
                               "than %d bytes" % (node.id, LINE_LIMIT), b"")
                continue
            if not raw:
                return
            if node.faulted or self.stopping:
                node.ignored += 1
                continue
            self.handle_line(node, raw)

    async def read_stderr(self, node):
        reader = node.proc.stderr
        while True:
            raw = await reader.readline()
            if not raw:
                return
            node.log.write(raw)
            node.log.flush()
            sys.stderr.write("[%s] %s" % (node.id,
                                          raw.decode("utf-8", "replace")))
            if not raw.endswith(b"\n"):
                sys.stderr.write("\n")

    async def watch(self, node):
        rc = await node.proc.wait()
        node.exit = rc
        if self.stopping:
            return
        if self.crash is None:
            self.crash = ("crash: %s exited with status %s at %.2f s "
                          "(see node-logs/%s.log)"
                          % (node.id, rc, self.now(), node.id))
            self.log(self.crash, echo=True)
        self.abort.set()

    # -- network endpoints ------------------------------------------------

    def node_deliver(self, node):
        stdin = node.proc.stdin

        def deliver(env):
            if node.exit is None and not stdin.is_closing():
                stdin.write((_enc.encode(env) + "\n").encode())
        return deliver

    def service_deliver(self, name, svc):
        net = self.net

        def deliver(env):
            body = env["body"]
            reply = svc.handle(env["src"], body)
            mid = body.get("msg_id")
            if reply is None or mid is None:
                return
            reply["in_reply_to"] = mid
            net.send(name, env["src"], reply)
        return deliver

    def new_client(self, node):
        c = Client(self, "c%d" % self.next_client, node)
        self.next_client += 1
        self.net.register(c.id, KIND_CLIENT, c.deliver)
        return c

    def close_client(self, c):
        self.net.unregister(c.id)
        self.closed_clients.add(c.id)

    # -- operations -------------------------------------------------------

    async def run_op(self, slot, req, final=False):
        wl = self.workload
        client = slot.client
        extra = {"final": True} if final else {}
        inv = self.record(client.id, "invoke", req.f, req.value, **extra)
        reply = await wl.perform(req, client, self.timeout)
        error = None
        value = req.value
        if isinstance(reply, Outcome):      # decided by the workload
            typ, value, error = reply
        elif reply is None:
            # Reference section 2: ops the workload marks idempotent
            # (broadcast read, kafka assign) always fail, timeouts too.
            typ = "fail" if req.f in wl.idempotent else "info"
            error = "net-timeout"
        elif reply.get("type") == "error":
            typ = error_type(reply.get("code"), req.f, wl.idempotent)
            error = {k: v for k, v in reply.items()
                     if k not in ("type", "in_reply_to", "msg_id")}
        else:
            try:
                value = wl.complete(inv, reply, client)
                typ = "ok"
            except UnexpectedReply as exc:
                typ = "info"
                error = {"unexpected-reply": str(exc)}
            except Exception as exc:  # Jepsen: a client exception is :info
                typ = "info"
                error = {"client-exception": repr(exc)}
                self.log("%s: %s.complete raised %r on %s" % (
                    client.id, wl.name, exc, _truncate(_enc.encode(reply))),
                    echo=True)
        if error is not None:
            extra["error"] = error
        self.record(client.id, typ, req.f, value, **extra)
        if (typ == "info" or error == "net-timeout") and \
                wl.closes_clients_on_timeout:
            # Jepsen: an :info op crashes the process; a client that is not
            # reusable is closed and a fresh one (new c id) takes its place.
            self.close_client(client)
            slot.client = self.new_client(slot.node)
            self.log("closed %s after %s; %s takes its place (bound to %s)"
                     % (client.id, "timeout" if error == "net-timeout"
                        else "an info op" if error is None
                        else "indefinite error", slot.client.id, slot.node))

    async def op_task(self, slot, req):
        try:
            await self.run_op(slot, req)
        finally:
            self.free.append(slot)
            self.slot_freed.set()

    async def generate(self, deadline):
        """Issue ops at --rate with Jepsen's stagger until deadline."""
        loop = self.loop
        rng = self.gen_rng
        wl = self.workload
        dt = 2.0 / self.opts.rate
        next_t = loop.time()
        while True:
            now = loop.time()
            if next_t >= deadline:
                return
            if next_t > now:
                await asyncio.sleep(next_t - now)
                now = loop.time()
            nominal = next_t
            if not self.free:
                # All clients busy: the op happens when one frees up.
                while not self.free:
                    self.slot_freed.clear()
                    left = deadline - loop.time()
                    if left <= 0:
                        return
                    try:
                        await asyncio.wait_for(self.slot_freed.wait(), left)
                    except asyncio.TimeoutError:
                        return
                nominal = loop.time()
                if nominal >= deadline:
                    return
            free = self.free
            i = rng.randrange(len(free))
            free[i], free[-1] = free[-1], free[i]
            slot = free.pop()
            req = wl.gen_op(rng, slot.client)
            if req is None:
                free.append(slot)
            else:
                t = loop.create_task(self.op_task(slot, req))
                self.op_tasks.add(t)
                t.add_done_callback(self.op_tasks.discard)
            next_t = nominal + rng.uniform(0.0, dt)

    async def nemesis(self, deadline):
        """Alternate partition and heal, staggered around the interval."""
        loop = self.loop
        rng = self.nem_rng
        interval = self.opts.nemesis_interval
        t = loop.time()       # Jepsen's stagger emits its first op at once
        while t < deadline:
            now = loop.time()
            if t > now:
                await asyncio.sleep(t - now)
            if self.partitioned:
                self.heal("stop-partition")
            else:
                shape, grudge = random_partition(self.node_ids, rng)
                self.net.set_grudge(grudge)
                self.partitioned = True
                value = {"shape": shape, "grudge": describe(grudge)}
                self.record("nemesis", "invoke", "start-partition", shape)
                self.record("nemesis", "info", "start-partition", value)
                self.log("nemesis: start-partition %s %s"
                         % (shape, json.dumps(value["grudge"])))
            t += rng.uniform(0.0, 2.0 * interval)

    def heal(self, why):
        self.net.heal()
        self.partitioned = False
        self.record("nemesis", "invoke", "stop-partition", None)
        self.record("nemesis", "info", "stop-partition", "network healed")
        self.log("nemesis: %s, network healed" % why)

    # -- phases -----------------------------------------------------------

    async def start_nodes(self):
        opts = self.opts
        os.makedirs(os.path.join(self.store, "node-logs"), exist_ok=True)
        for nid in self.node_ids:
            node = NodeProc(nid)
            path = os.path.join(self.store, "node-logs", nid + ".log")
            node.log = open(path, "wb")
            stderr = asyncio.subprocess.PIPE if opts.log_stderr else node.log
            node.proc = await asyncio.create_subprocess_exec(
                *self.cmd, stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE, stderr=stderr,
                cwd=tempfile.gettempdir(), limit=LINE_LIMIT)
            self.nodes[nid] = node
            self.net.register(nid, KIND_NODE, self.node_deliver(node))
            loop = self.loop
            node.tasks.append(loop.create_task(self.read_stdout(node)))
            node.tasks.append(loop.create_task(self.watch(node)))
            if opts.log_stderr:
                node.tasks.append(loop.create_task(self.read_stderr(node)))

    async def rpc_once(self, node, body, timeout):
        """Send one request from a fresh setup client, then close it."""
        c = self.new_client(node)
        try:
            return await c.call(body, timeout)
        finally:
            self.close_client(c)

    async def init_node(self, nid):
        body = {"type": "init", "node_id": nid, "node_ids": list(self.node_ids)}
        reply = await self.rpc_once(nid, body, INIT_TIMEOUT)
        if reply is None:
            return "%s did not answer init within %g s" % (nid, INIT_TIMEOUT)
        if reply.get("type") != "init_ok":
            return "%s answered init with %s" % (nid, _truncate(
                _enc.encode(reply)))
        return None

    async def setup_node(self, nid, body):
        reply = await self.rpc_once(nid, dict(body), self.timeout)
        # Maelstrom checks the reply schema: topology -> topology_ok.
        if reply is None or reply.get("type") != "%s_ok" % body.get("type"):
            return "%s answered %s with %s" % (
                nid, body.get("type"),
                "nothing" if reply is None else _enc.encode(reply))
        return None

    async def until_abort(self, coro):
        """Run coro (or future); return (True, result), or (False, None)
        if a node crashed meanwhile."""
        task = asyncio.ensure_future(coro)
        stop = self.loop.create_task(self.abort.wait())
        await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            stop.cancel()
            return True, task.result()
        task.cancel()
        try:
            await task
        except BaseException:
            pass
        return False, None

    async def main_phase(self):
        opts = self.opts
        loop = self.loop
        wl = self.workload
        slots = [Slot(i, self.node_ids[i % len(self.node_ids)])
                 for i in range(self.concurrency)]
        for s in slots:
            s.client = self.new_client(s.node)
        self.slots = slots
        self.free = list(slots)
        self.slot_freed = asyncio.Event()
        self.log("running %s for %g s at %g ops/s with %d clients"
                 % (wl.name, opts.time_limit, opts.rate, len(slots)))
        deadline = loop.time() + opts.time_limit
        tasks = [self.generate(deadline)]
        if opts.nemesis == "partition":
            tasks.append(self.nemesis(deadline))

        async def both():
            await asyncio.gather(*tasks)
            # Phases end once every op in flight has completed.
            while self.op_tasks:
                await asyncio.gather(*list(self.op_tasks),
                                     return_exceptions=True)
        ok, _ = await self.until_abort(both())
        if not ok:
            for t in list(self.op_tasks):
                t.cancel()
            return False
        if opts.nemesis == "partition":
            self.heal("final heal")
        if wl.has_final_phase:
            self.log("Waiting for recovery...", echo=True)
            ok, _ = await self.until_abort(asyncio.sleep(RECOVERY_WAIT))
            if not ok:
                return False

            async def finals(slot):
                for req in wl.final_ops(slot.client):
                    if isinstance(req, (int, float)):   # a pause, seconds
                        await asyncio.sleep(req)
                        continue
                    await self.run_op(slot, req, final=True)
            ok, _ = await self.until_abort(
                asyncio.gather(*(finals(s) for s in slots)))
            if not ok:
                return False
        return True

    async def teardown(self):
        self.stopping = True
        for node in self.nodes.values():
            if node.proc.returncode is None:
                try:
                    node.proc.kill()
                except ProcessLookupError:
                    pass
        for node in self.nodes.values():
            try:
                await asyncio.wait_for(node.proc.wait(), 5)
            except asyncio.TimeoutError:
                self.log("%s did not die after SIGKILL" % node.id, echo=True)
            for t in node.tasks:
                if not t.done():
                    try:
                        await asyncio.wait_for(t, 2)
                    except (asyncio.TimeoutError, asyncio.CancelledError,
                            Exception):
                        pass
        if self.net:
            self.net.close()
        for node in self.nodes.values():
            if node.log:
                node.log.close()

    async def run(self):
        """Run the test; return the exit status."""
        opts = self.opts
        self.loop = asyncio.get_running_loop()
        self.t0 = self.loop.time()
        self.abort = asyncio.Event()
        self.timeout = self.workload.request_timeout()
        self.concurrency = opts.concurrency
        self.net = Network(self.loop, opts.latency, opts.latency_dist,
                           self.net_rng)
        self.net.on_error = lambda text: self.log(text, echo=True)
        self.logf = open(os.path.join(self.store, "harness.log"), "w")
        try:
            # SIGTERM cancels the run like ^C; teardown still kills nodes.
            self.loop.add_signal_handler(signal.SIGTERM,
                                         asyncio.current_task().cancel)
        except (NotImplementedError, RuntimeError):
            pass
        self.log("command: %s" % " ".join(self.cmd))
        self.log("seed: %s" % opts.seed)
        for name, svc in make_services(self.svc_rng).items():
            self.net.register(name, KIND_SERVICE,
                              self.service_deliver(name, svc))
        wall0 = time.monotonic()
        cpu0 = time.process_time()
        try:
            try:
                await self.start_nodes()
            except OSError as exc:
                self.failure = "could not start node: %s" % exc
                self.log(self.failure, echo=True)
            if self.failure is None and self.crash is None:
                ok, errs = await self.until_abort(asyncio.gather(
                    *(self.init_node(n) for n in self.node_ids)))
                errs = [e for e in (errs or []) if e]
                if ok and errs:
                    self.failure = "init-failed: " + "; ".join(errs)
                    self.log(self.failure, echo=True)
            if self.failure is None and self.crash is None:
                reqs = self.workload.setup_requests(list(self.node_ids),
                                                    self.setup_rng)
                if reqs:
                    ok, errs = await self.until_abort(asyncio.gather(
                        *(self.setup_node(n, b) for n, b in reqs)))
                    errs = [e for e in (errs or []) if e]
                    if ok and errs:
                        self.failure = "setup-failed: " + "; ".join(errs)
                        self.log(self.failure, echo=True)
            if self.failure is None and self.crash is None:
                await self.main_phase()
        finally:
            await self.teardown()
            self.elapsed = time.monotonic() - wall0
            self.cpu = time.process_time() - cpu0
        return self.finish()

    # -- results ------------------------------------------------------------

    def finish(self):
        opts = self.opts
        wl = self.workload
        history = self.history
        invokes = [e for e in history
                   if e["process"] != "nemesis" and e["type"] == "invoke"]
        op_count = len(invokes)
        test = {"workload": wl.name, "node-count": opts.node_count,
                "concurrency": self.concurrency, "rate": opts.rate,
                "time-limit": opts.time_limit, "latency": opts.latency,
                "latency-dist": opts.latency_dist, "nemesis": opts.nemesis,
                "nemesis-interval": opts.nemesis_interval,
                "availability": opts.availability, "timeout": opts.timeout,
                "seed": opts.seed, "command": self.cmd}
        results = {"test": test}
        try:
            results["workload"] = wl.check(history, test)
        except Exception as exc:  # Jepsen: a checker crash is :unknown
            results["workload"] = {"valid": checkers.UNKNOWN,
                                   "reason": "checker crashed: %r" % exc}
        results["stats"] = checkers.stats(history, wl.stats_exempt)
        if opts.availability is not None:
            results["availability"] = checkers.availability(
                history, opts.availability)
        results["net"] = checkers.net(self.net.stats, op_count, self.faults)
        perf_res = perf.check(opts, results)
        if perf_res is not None:
            results["perf"] = perf_res
        order = ["net", "stats", "availability", "workload", "perf"]
        valid = checkers.merge_valid(results[k]["valid"]
                                     for k in order if k in results)
        reasons = []
        if self.failure:
            reasons.append(self.failure)
        if self.crash:
            reasons.append(self.crash)
        for k in order:
            r = results.get(k)
            if r is None or r["valid"] is True:
                continue
            label = wl.name if k == "workload" else k
            text = r.get("reason", "valid=%s" % r["valid"])
            reasons.append(text if k == "net" else "%s: %s" % (label, text))
        if self.failure or self.crash:
            valid = False
            status = EXIT_CRASH
        else:
            status = {True: EXIT_VALID, False: EXIT_INVALID}.get(
                valid, EXIT_UNKNOWN)
        results["valid"] = valid
        results["reasons"] = reasons
        if self.crash:
            results["crash"] = self.crash
        if self.failure:
            results["failure"] = self.failure
        results["late-replies-ignored"] = self.late_replies
        results["elapsed-s"] = round(self.elapsed, 3)
        results["harness-cpu-s"] = round(self.cpu, 3)
        self.results = results
        self.write(results)

        st = results["stats"]
        nt = results["net"]
        frac = st["ok-count"] / op_count if op_count else 1.0
        vtext = {True: "true", False: "false"}.get(valid, "unknown")
        try:
            extra = wl.summary(results["workload"])
        except Exception as exc:
            extra = "summary-error=%r" % exc
        line = ("%s valid=%s ops=%d ok=%d fail=%d info=%d avail=%.3f "
                "servers-msgs-per-op=%.2f all-msgs-per-op=%.2f %sstore=%s"
                % (wl.name, vtext, op_count, st["ok-count"],
                   st["fail-count"], st["info-count"], frac,
                   nt["servers"]["msgs-per-op"], nt["all"]["msgs-per-op"],
                   extra + " " if extra else "", self.store))
        if reasons:
            line += " reason: " + "; ".join(reasons)
        self.summary = line
        return status

    def write(self, results):
        with open(os.path.join(self.store, "history.jsonl"), "w") as f:
            for e in self.history:
                f.write(json.dumps(e) + "\n")
        with open(os.path.join(self.store, "results.json"), "w") as f:
            json.dump(results, f, indent=2, default=str)
            f.write("\n")
        if self.logf:
            self.logf.close()
            self.logf = None
