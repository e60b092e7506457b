"""Maelstrom's built-in services: lin-kv, seq-kv, lww-kv, lin-tso (section 3).

Each service has handle(src, body) -> reply body or None.  The caller
(Service endpoint glue in runner.py) adds in_reply_to and routes the reply
back to src with the node latency.  Replies have no msg_id of their own.

Keys and values are compared by JSON value equality: they are stored under
a canonical JSON dump, so 1, 1.0, true and "1" are four different keys.
"""

import json
import random

ERR_NOT_SUPPORTED = 10
ERR_MALFORMED = 12
ERR_KEY_DOES_NOT_EXIST = 20
ERR_PRECONDITION_FAILED = 22

_canon_enc = json.JSONEncoder(sort_keys=True, separators=(",", ":"),
                              ensure_ascii=False)


def canon(value):
    """Canonical JSON text of value, for equality and hashing."""
    return _canon_enc.encode(value)


def error(code, text):
    return {"type": "error", "code": code, "text": text}


def _kv_eval(state, body, create_ok):
    """Evaluate a KV request on state {canon(key): value}.

    Returns (new_state or None if unchanged, reply).  state is not modified.
    create_ok says whether cas honours create_if_not_exists.
    """
    t = body.get("type")
    if "key" not in body:
        return None, error(ERR_MALFORMED, "missing key")
    k = canon(body["key"])
    if t == "read":
        if k not in state:
            return None, error(ERR_KEY_DOES_NOT_EXIST, "key does not exist")
        return None, {"type": "read_ok", "value": state[k]}
    if t == "write":
        if "value" not in body:
            return None, error(ERR_MALFORMED, "missing value")
        new = dict(state)
        new[k] = body["value"]
        return new, {"type": "write_ok"}
    if t == "cas":
        if "from" not in body or "to" not in body:
            return None, error(ERR_MALFORMED, "missing from/to")
        if k not in state:
            if create_ok and body.get("create_if_not_exists") is True:
                new = dict(state)
                new[k] = body["to"]
                return new, {"type": "cas_ok"}
            return None, error(ERR_KEY_DOES_NOT_EXIST, "key does not exist")
        if canon(state[k]) != canon(body["from"]):
            return None, error(ERR_PRECONDITION_FAILED,
                               "expected %s, but had %s"
                               % (canon(body["from"]), canon(state[k])))
        new = dict(state)
        new[k] = body["to"]
        return new, {"type": "cas_ok"}
    return None, error(ERR_NOT_SUPPORTED, "unsupported request type %r" % t)


class LinKV:
    """Linearizable KV: one map, requests applied in arrival order."""

    name = "lin-kv"

    def __init__(self, rng=None):
        self.state = {}

    def handle(self, src, body):
        new, reply = _kv_eval(self.state, body, create_ok=True)
        if new is not None:
            self.state = new
        return reply


class SeqKV:
    """Sequentially consistent KV.

    Keeps the last `history` versions.  A request is first evaluated on a
    random version between the one src last saw and the newest; if that
    changes nothing (read, failed cas) the result stands and src's view moves
    to that version.  Otherwise it is re-evaluated on the newest version; a
    change there becomes a new version, and src's view moves to the newest.
    """

    name = "seq-kv"

    def __init__(self, rng=None, history=32):
        self.rng = rng or random.Random()
        self.keep = history
        self.versions = [{}]      # versions[i] is version number base + i
        self.base = 0
        self.seen = {}            # src -> version number last seen

    def newest(self):
        return self.base + len(self.versions) - 1

    def handle(self, src, body):
        newest = self.newest()
        lo = max(self.seen.get(src, 0), self.base)
        v = self.rng.randint(lo, newest)
        new, reply = _kv_eval(self.versions[v - self.base], body, True)
        if new is None:
            self.seen[src] = v
            return reply
        new, reply = _kv_eval(self.versions[-1], body, True)
        if new is not None:
            self.versions.append(new)
            if len(self.versions) > self.keep:
                drop = len(self.versions) - self.keep
                del self.versions[:drop]
                self.base += drop
        self.seen[src] = self.newest()
        return reply


class LwwKV:
    """Last-write-wins KV over two replicas with Lamport timestamps.

    Before each request one random replica is merged into another (per key,
    the higher timestamp wins); the request then goes to a random replica.
    cas ignores create_if_not_exists.
    """

    name = "lww-kv"

    def __init__(self, rng=None, replicas=2):
        self.rng = rng or random.Random()
        self.replicas = [{} for _ in range(replicas)]  # canon key -> (ts, v)
        self.clock = 0

    def _merge(self):
        a, b = self.rng.sample(range(len(self.replicas)), 2)
        src, dst = self.replicas[a], self.replicas[b]
        for k, tv in src.items():
            cur = dst.get(k)
            if cur is None or tv[0] > cur[0]:
                dst[k] = tv

    def handle(self, src, body):
        if len(self.replicas) > 1:
            self._merge()
        rep = self.replicas[self.rng.randrange(len(self.replicas))]
        plain = {k: tv[1] for k, tv in rep.items()}
        new, reply = _kv_eval(plain, body, create_ok=False)
        if new is not None:
            self.clock += 1
            k = canon(body["key"])
            rep[k] = (self.clock, new[k])
        return reply


class LinTSO:
    """Linearizable timestamp oracle: ts -> ts_ok counting up from 0."""

    name = "lin-tso"

    def __init__(self, rng=None):
        self.next = 0

    def handle(self, src, body):
        if body.get("type") != "ts":
            return error(ERR_NOT_SUPPORTED,
                         "unsupported request type %r" % body.get("type"))
        ts = self.next
        self.next += 1
        return {"type": "ts_ok", "ts": ts}


SERVICES = {c.name: c for c in (LinKV, SeqKV, LwwKV, LinTSO)}


def make_services(rng):
    """Return {name: service instance}, each with its own derived rng."""
    return {name: cls(random.Random(rng.random()))
            for name, cls in SERVICES.items()}
