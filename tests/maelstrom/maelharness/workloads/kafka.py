"""kafka (section 5.5, challenges 5a-5c): append-only logs of messages per
string key, with committed offsets.

The client behaves like Maelstrom's kafka client (jepsen.tests.kafka with
assign, no transactions):

* Ops are sends and polls, half each, over a rotating pool of keys (see
  keypool.py; messages are 1, 2, ... per key, so unique per key).  About one
  op in 64 is an assign instead: of one key, plus (a third of the time) every
  key with acknowledged sends that no poll has returned yet.  An assign
  replaces the client's keys; a key it already had keeps its position, a new
  one starts at its committed offset (list_committed_offsets), else 0.
  Assign is idempotent: any error, or a timeout, makes it fail.
* A poll sends every assigned key with the client's next offset, advances
  each key to one past the highest offset returned, then commits the highest
  offset polled per key (commit_offsets).  The op completes once both replies
  are in; if the commit goes wrong the op is fail/info but still records what
  the poll returned.
* Now and then (on average every 30 s per client) a :crash op throws a client
  away (info, no message); its replacement starts from committed offsets.
* Final phase (after heal + 10 s): every client crashes, assigns every key
  seen so far from offset 0, and polls (0-0.4 s apart) until it has read each
  key up to the highest offset known at the end of the main phase, for at
  most 10 s in all.

History values (JSON):
  send    invoke {"key": k, "msg": m}      ok {"key": k, "msg": m, "offset": o}
  poll    invoke null                      completion {"offsets": requested,
                                             "msgs": {k: [[o, m], ...]},
                                             "committed": {k: o}} (msgs and
                                             committed only once known)
  assign  invoke {"keys": [...], "seek-to-beginning": bool}
          ok     the same plus "offsets": {k: starting offset}
  crash   invoke null, info null

The checker is in kafka_check.py.
"""

import random
import time

from ..services import canon
from .base import Outcome, Request, UnexpectedReply, Workload, expect_type
from .kafka_check import check_kafka
from .keypool import KeyPool, add_pool_options

ASSIGN_P = 1.0 / 64          # Jepsen's sub-p
UNSEEN_P = 1.0 / 3           # PollUnseen: merge unseen keys into an assign
CRASH_INTERVAL = 30.0        # s per client, Jepsen's crash-client-interval
FINAL_POLL_LIMIT = 10.0      # s, Maelstrom clips the final polls to 10 s
FINAL_POLL_GAP = 0.2         # s, mean gap between final polls (stagger 1/5)


def _is_int(x):
    return isinstance(x, int) and not isinstance(x, bool)


def _error_fields(reply):
    return {k: v for k, v in reply.items()
            if k not in ("type", "in_reply_to", "msg_id")}


def _classify(reply, f, idempotent):
    # Imported late: runner imports the workload registry at load time.
    from ..runner import error_type
    return error_type(reply.get("code"), f, idempotent)


def _valid_msgs(msgs):
    """None if msgs is {key: [[offset, msg], ...]} with integer offsets,
    else a description of what is wrong."""
    if not isinstance(msgs, dict):
        return "msgs is not an object"
    for k, pairs in msgs.items():
        if not isinstance(pairs, list):
            return "msgs[%s] is not an array" % canon(k)
        for p in pairs:
            if not (isinstance(p, list) and len(p) == 2 and _is_int(p[0])):
                return "msgs[%s] holds %s, not an [offset, msg] pair" % (
                    canon(k), canon(p)[:60])
    return None


class Kafka(Workload):
    name = "kafka"
    has_final_phase = True
    closes_clients_on_timeout = True
    idempotent = frozenset(["assign"])
    stats_exempt = frozenset(["crash"])

    @classmethod
    def add_arguments(cls, parser):
        add_pool_options(parser)

    def __init__(self, opts):
        super().__init__(opts)
        self.pool = KeyPool(opts.key_count, opts.max_writes_per_key)
        self.sent_max = {}        # key -> highest acknowledged send offset
        self.polled_max = {}      # key -> highest offset returned by a poll
        self.max_offsets = {}     # key -> highest offset known (final target)
        self.next_crash = None
        self.final_rng = random.Random(opts.seed)

    # -- generator ---------------------------------------------------------

    @staticmethod
    def gen_poll():
        return Request("poll", None, None)

    @staticmethod
    def gen_crash():
        return Request("crash", None, None)

    @staticmethod
    def gen_assign(keys, seek=False):
        return Request("assign", {"keys": list(keys),
                                  "seek-to-beginning": seek}, None)

    def gen_op(self, rng, client):
        now = time.monotonic()
        gap = 2.0 * CRASH_INTERVAL / max(1, self.opts.concurrency)
        if self.next_crash is None:
            self.next_crash = now + rng.uniform(0.0, gap)
        elif now >= self.next_crash:
            self.next_crash = now + rng.uniform(0.0, gap)
            return self.gen_crash()
        if rng.random() < ASSIGN_P:
            keys = [str(self.pool.rand_key(rng))]
            if rng.random() < UNSEEN_P:
                for k in sorted(self.sent_max, key=_key_order):
                    if (self.polled_max.get(k, -1) < self.sent_max[k]
                            and k not in keys):
                        keys.append(k)
            return self.gen_assign(keys)
        if rng.random() < 0.5:
            return self.gen_poll()
        k, v = self.pool.write(rng)
        k = str(k)
        return Request("send", {"key": k, "msg": v},
                       {"type": "send", "key": k, "msg": v})

    def final_ops(self, client):
        targets = dict(self.max_offsets)
        if not targets:
            return
        deadline = time.monotonic() + FINAL_POLL_LIMIT
        assign = self.gen_assign(sorted(targets, key=_key_order), seek=True)
        progress = {"targets": targets, "reassign": False}
        yield self.gen_crash()
        yield assign
        while progress["targets"] and time.monotonic() < deadline:
            if progress["reassign"]:
                progress["reassign"] = False
                yield assign
            yield Request("poll", None, {"progress": progress})
            if progress["targets"] and time.monotonic() < deadline:
                yield self.final_rng.uniform(0.0, 2.0 * FINAL_POLL_GAP)

    # -- client ------------------------------------------------------------

    async def perform(self, req, client, timeout):
        try:
            if req.f == "crash":
                return Outcome("info", None, None)
            if req.f == "assign":
                return await self._assign(req, client, timeout)
            if req.f == "poll":
                return await self._poll(req, client, timeout)
            return await client.call(dict(req.body), timeout)
        except Exception as exc:  # Jepsen: a client exception is :info
            return Outcome("info", req.value,
                           {"client-exception": repr(exc)})

    def complete(self, op, reply, client):
        expect_type(reply, "send_ok")
        offset = reply.get("offset")
        if not _is_int(offset):
            raise UnexpectedReply("send_ok offset %s is not an integer"
                                  % canon(offset)[:60])
        k = op["value"]["key"]
        if offset > self.sent_max.get(k, -1):
            self.sent_max[k] = offset
        self._known(k, offset)
        return {"key": k, "msg": op["value"]["msg"], "offset": offset}

    def _known(self, k, offset):
        if offset > self.max_offsets.get(k, -1):
            self.max_offsets[k] = offset

    async def _assign(self, req, client, timeout):
        keys = list(req.value["keys"])
        value = dict(req.value)
        if req.value.get("seek-to-beginning"):
            offsets = {k: 0 for k in keys}
        else:
            reply = await client.call({"type": "list_committed_offsets",
                                       "keys": keys}, timeout)
            if reply is None:
                return Outcome("fail", value, "net-timeout")
            if reply.get("type") == "error":
                return Outcome("fail", value, _error_fields(reply))
            committed = reply.get("offsets")
            bad = None
            if reply.get("type") != "list_committed_offsets_ok":
                bad = "expected list_committed_offsets_ok, got %r" % (
                    reply.get("type"),)
            elif not isinstance(committed, dict):
                bad = "offsets is not an object"
            else:
                for k in keys:
                    if k in committed and not _is_int(committed[k]):
                        bad = "committed offset of %s is %s" % (
                            k, canon(committed[k])[:40])
            if bad:
                return Outcome("fail", value, {"unexpected-reply": bad})
            old = client.state.get("offsets", {})
            offsets = {k: old[k] if k in old else committed.get(k, 0)
                       for k in keys}
        client.state["offsets"] = offsets
        value["offsets"] = dict(offsets)
        return Outcome("ok", value, None)

    async def _poll(self, req, client, timeout):
        progress = (req.body or {}).get("progress")
        outcome = await self._poll_commit(client, timeout)
        if progress is not None:
            if outcome.type == "ok":
                targets = progress["targets"]
                for k, pairs in outcome.value["msgs"].items():
                    if pairs and k in targets and \
                            max(p[0] for p in pairs) >= targets[k]:
                        del targets[k]
            elif outcome.type == "info":
                progress["reassign"] = True     # a fresh client follows
        return outcome

    async def _poll_commit(self, client, timeout):
        offsets = dict(client.state.get("offsets", {}))
        value = {"offsets": offsets}
        reply = await client.call({"type": "poll", "offsets": offsets},
                                  timeout)
        if reply is None:
            return Outcome("info", value, "net-timeout")
        if reply.get("type") == "error":
            return Outcome(_classify(reply, "poll", self.idempotent), value,
                           _error_fields(reply))
        if reply.get("type") != "poll_ok":
            return Outcome("info", value, {
                "unexpected-reply": "expected poll_ok, got %r"
                % (reply.get("type"),)})
        msgs = reply.get("msgs")
        bad = _valid_msgs(msgs)
        if bad:
            return Outcome("info", value, {"unexpected-reply": bad})
        value["msgs"] = msgs
        # Advance to one past the highest offset returned (merge with max,
        # as Maelstrom's client does, so a key it did not ask for is added).
        state = client.state.setdefault("offsets", {})
        commit = {}
        for k, pairs in msgs.items():
            nxt = max((p[0] for p in pairs), default=-1) + 1
            state[k] = max(state.get(k, nxt), nxt)
            if pairs:
                commit[k] = nxt - 1
        if commit:
            value["committed"] = commit
            reply = await client.call({"type": "commit_offsets",
                                       "offsets": commit}, timeout)
            if reply is None:
                return Outcome("info", value, "net-timeout")
            if reply.get("type") == "error":
                return Outcome(_classify(reply, "poll", self.idempotent),
                               value, _error_fields(reply))
            if reply.get("type") != "commit_offsets_ok":
                return Outcome("info", value, {
                    "unexpected-reply": "expected commit_offsets_ok, got %r"
                    % (reply.get("type"),)})
        for k, o in commit.items():
            if o > self.polled_max.get(k, -1):
                self.polled_max[k] = o
            self._known(k, o)
            if self.polled_max[k] >= self.sent_max.get(k, -1):
                self.sent_max.pop(k, None)      # caught up on this key
                self.polled_max.pop(k, None)
        return Outcome("ok", value, None)

    # -- checker -----------------------------------------------------------

    def check(self, history, test):
        return check_kafka(history)

    def summary(self, result):
        lag = result.get("worst-realtime-lag") or {}
        return "worst-realtime-lag=%.3fs" % lag.get("lag", 0.0)


def _key_order(k):
    return (0, int(k), k) if k.lstrip("-").isdigit() else (1, 0, k)
