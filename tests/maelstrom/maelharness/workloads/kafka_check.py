"""The kafka checker: our own, after jepsen.tests.kafka (section 5.5).

Error types (all make the run invalid except int-send-skip, as Maelstrom):

  inconsistent-offsets   one offset of a key holds two different messages
                         (sends and polls of every outcome are compared)
  duplicate              one message appears at several offsets of a key
  lost-write             a poll returned offset o of key k, but an
                         acknowledged send at a lower offset of k was never
                         returned by any poll
  unseen                 an acknowledged send that no poll ever returned,
                         even after the final polls
  poll-skip              a consumer's poll started past an offset known to
                         exist: past the one after the last offset this
                         process read of the key (Jepsen), or, for the first
                         poll of a key after assign, past the offset it asked
                         for (stricter than Jepsen)
  int-poll-skip          within one poll's run of a key, a gap over an offset
                         known to exist
  nonmonotonic-poll      a consumer's poll started at or before the last
                         offset this process read (or before the offset it
                         asked for)
  int-nonmonotonic-poll  offsets within one poll's run did not increase
  nonmonotonic-send      a process's successive sends to one key got
                         offsets that did not increase
  int-nonmonotonic-send  the same within one op (multi-send ops only)
  int-send-skip          sends within one op skipped an offset (allowed)
  G1a                    a poll returned a message whose send failed
  phantom-msg            a poll returned a message nobody sent to that key
  huge-offset            an offset above 2^53 (breaks Maelstrom's checker,
                         which allocates a vector up to the offset)

"Known to exist" means seen in an acknowledged send or in any poll.  A
consumer is a client process; its read positions are kept across polls,
trimmed to the assigned keys by each assign and dropped by one that seeks to
the beginning, and a crash starts a new process.  Polls of every outcome
that carry msgs count as reads (the client did advance past them); fail and
info sends count as writers (for G1a and phantom-msg) but not as known
offsets.

Also reported: worst-realtime-lag (Jepsen's conservative lower bound: how
long, at the time a poll was invoked, the highest offset this consumer had
read of a key had already not been the end of that key's log) and
info-txn-causes.

Values may also be written {"mops": [["send", k, m, offset-or-null],
["poll", {k: pairs}], ...]} for multi-micro-op ops; the workload never does,
hand-built histories may (int-nonmonotonic-send, int-send-skip).
"""

from bisect import bisect_left, bisect_right

from ..checkers import pairs
from ..services import canon

HUGE_OFFSET = 2 ** 53
ALLOWED = frozenset(["int-send-skip"])
EXAMPLES = 8


def _is_int(x):
    return isinstance(x, int) and not isinstance(x, bool)


def _mops(value):
    """(sends [(k, msg, offset or None)], polls [{k: pairs}]) of a value."""
    sends, polls = [], []
    if not isinstance(value, dict):
        return sends, polls
    if "mops" in value:
        for m in value["mops"]:
            if m and m[0] == "send":
                sends.append((m[1], m[2], m[3] if len(m) > 3 else None))
            elif m and m[0] == "poll" and isinstance(m[1], dict):
                polls.append(m[1])
        return sends, polls
    if "key" in value and "msg" in value:
        sends.append((value["key"], value["msg"], value.get("offset")))
    if isinstance(value.get("msgs"), dict):
        polls.append(value["msgs"])
    return sends, polls


class _Op:
    __slots__ = ("index", "process", "type", "f", "time", "invoke_time",
                 "final", "value", "sends", "polls", "error")

    def __init__(self, inv, comp):
        self.index = comp.get("index", inv.get("index")) if comp else \
            inv.get("index")
        self.process = inv["process"]
        self.type = comp["type"] if comp else "info"
        self.f = inv["f"]
        self.time = comp["time"] if comp else None
        self.invoke_time = inv.get("time", 0)
        self.final = bool(inv.get("final"))
        self.value = comp["value"] if comp else inv["value"]
        if self.value is None:
            self.value = inv["value"]
        self.error = comp.get("error") if comp else "no completion"
        self.sends, self.polls = _mops(self.value)

    def brief(self):
        return {"index": self.index, "process": self.process,
                "type": self.type, "f": self.f,
                "time": round((self.time or 0) / 1e9, 3)}


class _Key:
    """Everything known about one key."""
    __slots__ = ("log", "known", "msg_offsets", "polled_msgs",
                 "polled_offsets", "writers", "lag_times", "lag_max")

    def __init__(self):
        self.log = {}             # offset -> {canon msg: msg}
        self.known = []           # sorted offsets known to exist
        self.msg_offsets = {}     # canon msg -> set of offsets
        self.polled_msgs = set()  # canon msgs returned by some poll
        self.polled_offsets = set()
        self.writers = {}         # canon msg -> list of send _Ops
        self.lag_times = []       # completion times of ok ops ...
        self.lag_max = []         # ... and the prefix max of known offsets

    def add(self, offset, msg):
        c = canon(msg)
        self.log.setdefault(offset, {})[c] = msg
        self.msg_offsets.setdefault(c, set()).add(offset)

    def between(self, lo, hi):
        """Known offsets o with lo < o < hi."""
        a = bisect_right(self.known, lo)
        b = bisect_left(self.known, hi)
        return self.known[a:b]


def check_kafka(history):
    ops = [_Op(inv, comp) for inv, comp in pairs(history)]
    keys = {}
    errors = {}

    def key(k):
        kk = keys.get(k)
        if kk is None:
            kk = keys[k] = _Key()
        return kk

    def err(t, e):
        errors.setdefault(t, []).append(e)

    # Pass 1: writers, the log, polled messages, huge offsets.
    for op in ops:
        for k, msg, offset in op.sends:
            key(k).writers.setdefault(canon(msg), []).append(op)
            if op.type == "ok" and _is_int(offset):
                key(k).add(offset, msg)
                if abs(offset) > HUGE_OFFSET:
                    err("huge-offset", {"key": k, "offset": offset,
                                        "msg": msg, "op": op.brief()})
        for msgs in op.polls:
            for k, prs in msgs.items():
                kk = key(k)
                for o, msg in prs:
                    kk.add(o, msg)
                    kk.polled_msgs.add(canon(msg))
                    kk.polled_offsets.add(o)
                    if abs(o) > HUGE_OFFSET:
                        err("huge-offset", {"key": k, "offset": o,
                                            "msg": msg, "op": op.brief()})
    for k, kk in keys.items():
        kk.known = sorted(kk.log)
        for o in kk.known:
            if len(kk.log[o]) > 1:
                err("inconsistent-offsets", {
                    "key": k, "offset": o,
                    "msgs": sorted(kk.log[o].values(), key=canon)})
        for c, offs in kk.msg_offsets.items():
            if len(offs) > 1:
                err("duplicate", {"key": k, "msg": _first(kk, c),
                                  "offsets": sorted(offs)})

    # Pass 2: each consumer / producer in order.
    last_read = {}     # process -> {k: last offset read}
    last_send = {}     # process -> {k: last offset sent}
    for op in ops:
        p = op.process
        if op.f == "assign" and op.type == "ok" and isinstance(op.value,
                                                               dict):
            lr = last_read.get(p, {})
            if op.value.get("seek-to-beginning"):
                last_read[p] = {}
            else:
                ks = set(op.value.get("keys") or [])
                last_read[p] = {k: o for k, o in lr.items() if k in ks}
            continue
        requested = op.value.get("offsets") if isinstance(op.value,
                                                          dict) else None
        if not isinstance(requested, dict) or "mops" in op.value:
            requested = {}
        lr = last_read.setdefault(p, {})
        for msgs in op.polls:
            for k, prs in msgs.items():
                if not prs:
                    continue
                kk = keys[k]
                offs = [o for o, _ in prs]
                first = offs[0]
                if k in lr:
                    base, what = lr[k], "last read"
                    lo = base
                elif _is_int(requested.get(k)):
                    base, what = requested[k], "requested"
                    lo = base - 1
                else:
                    base = None
                if base is not None:
                    if first <= lo:
                        err("nonmonotonic-poll", {
                            "key": k, "process": p, what: base,
                            "then-polled": first, "op": op.brief()})
                    else:
                        skipped = kk.between(lo, first)
                        if skipped:
                            err("poll-skip", {
                                "key": k, "process": p, what: base,
                                "then-polled": first,
                                "skipped": skipped[:EXAMPLES],
                                "delta": len(skipped) + 1,
                                "op": op.brief()})
                for a, b in zip(offs, offs[1:]):
                    if b <= a:
                        err("int-nonmonotonic-poll", {
                            "key": k, "offsets": [a, b], "op": op.brief()})
                    else:
                        skipped = kk.between(a, b)
                        if skipped:
                            err("int-poll-skip", {
                                "key": k, "offsets": [a, b],
                                "skipped": skipped[:EXAMPLES],
                                "op": op.brief()})
                lr[k] = offs[-1]
            requested = {}      # only the op's first poll asked for these
        if op.type != "ok":
            continue
        ls = last_send.setdefault(p, {})
        in_op = {}
        for k, msg, o in op.sends:
            if not _is_int(o):
                continue
            if k in in_op:
                a = in_op[k]
                if o <= a:
                    err("int-nonmonotonic-send", {
                        "key": k, "offsets": [a, o], "op": op.brief()})
                elif keys[k].between(a, o):
                    err("int-send-skip", {
                        "key": k, "offsets": [a, o],
                        "skipped": keys[k].between(a, o)[:EXAMPLES],
                        "op": op.brief()})
            elif k in ls and o <= ls[k]:
                err("nonmonotonic-send", {
                    "key": k, "process": p, "offsets": [ls[k], o],
                    "msg": msg, "op": op.brief()})
            in_op[k] = o
        ls.update(in_op)

    # Pass 3: lost writes, unseen, aborted reads, phantoms.
    unseen_by_key = {}
    for k in sorted(keys, key=canon):
        kk = keys[k]
        top = max(kk.polled_offsets) if kk.polled_offsets else None
        for c, writers in kk.writers.items():
            acked = [(w, o) for w in writers if w.type == "ok"
                     for kk2, m, o in w.sends if kk2 == k and canon(m) == c]
            if c in kk.polled_msgs:
                if all(w.type == "fail" for w in writers):
                    err("G1a", {"key": k, "msg": _first(kk, c),
                                "writer": writers[0].brief(),
                                "writer-error": writers[0].error})
                continue
            for w, o in acked:
                if top is not None and _is_int(o) and o < top:
                    err("lost-write", {
                        "key": k, "offset": o, "msg": _first(kk, c),
                        "max-polled-offset": top, "writer": w.brief()})
                unseen_by_key.setdefault(k, []).append(_first(kk, c))
        for c in kk.polled_msgs:
            if c not in kk.writers:
                err("phantom-msg", {"key": k, "msg": _first(kk, c),
                                    "offsets": sorted(kk.msg_offsets[c])})
    if unseen_by_key:
        errors["unseen"] = [{"key": k, "count": len(v),
                             "msgs": sorted(v, key=canon)[:32]}
                            for k, v in unseen_by_key.items()]

    lag = _worst_lag(ops, keys)
    return _result(errors, ops, keys, lag)


def _first(kk, c):
    """The message whose canonical text is c."""
    for o in sorted(kk.msg_offsets.get(c, ())):
        return kk.log[o][c]
    import json
    return json.loads(c)


def _worst_lag(ops, keys):
    """Jepsen's realtime lag, maximised over every poll."""
    events = []
    for op in ops:
        if op.type != "ok" or op.time is None:
            continue
        top = {}
        for k, _, o in op.sends:
            if _is_int(o):
                top[k] = max(top.get(k, o), o)
        for msgs in op.polls:
            for k, prs in msgs.items():
                for o, _ in prs:
                    top[k] = max(top.get(k, o), o)
        for k, o in top.items():
            events.append((op.time, k, o))
    events.sort(key=lambda e: e[0])
    for t, k, o in events:
        kk = keys[k]
        m = max(kk.lag_max[-1], o) if kk.lag_max else o
        kk.lag_times.append(t)
        kk.lag_max.append(m)

    def expired(k, offset):
        """When some offset above offset was first known to exist."""
        kk = keys.get(k)
        if kk is None:
            return None
        i = bisect_right(kk.lag_max, offset)
        return kk.lag_times[i] if i < len(kk.lag_times) else None

    worst = {"time": 0.0, "lag": 0.0}
    pos = {}
    for op in ops:
        if op.type != "ok":
            continue
        p = op.process
        if op.f == "assign" and isinstance(op.value, dict):
            old = pos.get(p, {})
            pos[p] = {k: old.get(k, -1) for k in op.value.get("keys") or []}
            continue
        if not op.polls:
            continue
        mine = pos.setdefault(p, {})
        for msgs in op.polls:
            for k, prs in msgs.items():
                for o, _ in prs:
                    if o > mine.get(k, -1):
                        mine[k] = o
        for k, o in mine.items():
            t = expired(k, o)
            if t is None:
                continue
            lag = max(0, op.invoke_time - t)
            if lag / 1e9 > worst["lag"]:
                worst = {"time": round(op.invoke_time / 1e9, 3),
                         "process": p, "key": k, "lag": round(lag / 1e9, 3)}
    return worst


_DESCRIBE = {
    "inconsistent-offsets": lambda e: "key %s offset %s holds %s" % (
        canon(e["key"]), e["offset"], " and ".join(canon(m)
                                                  for m in e["msgs"])),
    "duplicate": lambda e: "key %s msg %s at offsets %s" % (
        canon(e["key"]), canon(e["msg"]), e["offsets"]),
    "lost-write": lambda e: (
        "key %s msg %s acknowledged at offset %s was never polled, though "
        "offset %s was" % (canon(e["key"]), canon(e["msg"]), e["offset"],
                           e["max-polled-offset"])),
    "unseen": lambda e: "key %s: %d acknowledged msgs never polled (%s)" % (
        canon(e["key"]), e["count"], ", ".join(canon(m)
                                               for m in e["msgs"][:4])),
    "poll-skip": lambda e: "%s on key %s polled %s after %s, skipping %s" % (
        e["process"], canon(e["key"]), e["then-polled"],
        "reading %s" % e["last read"] if "last read" in e
        else "asking for %s" % e["requested"], e["skipped"]),
    "nonmonotonic-poll": lambda e: "%s on key %s polled %s after %s" % (
        e["process"], canon(e["key"]), e["then-polled"],
        "reading %s" % e["last read"] if "last read" in e
        else "asking for %s" % e["requested"]),
    "int-poll-skip": lambda e: "key %s: one poll went %s -> %s over %s" % (
        canon(e["key"]), e["offsets"][0], e["offsets"][1], e["skipped"]),
    "int-nonmonotonic-poll": lambda e: "key %s: one poll went %s -> %s" % (
        canon(e["key"]), e["offsets"][0], e["offsets"][1]),
    "nonmonotonic-send": lambda e: "%s sent to key %s at offset %s, then "
    "at %s" % (e["process"], canon(e["key"]), e["offsets"][0],
               e["offsets"][1]),
    "int-nonmonotonic-send": lambda e: "key %s: one op sent at %s then %s" % (
        canon(e["key"]), e["offsets"][0], e["offsets"][1]),
    "G1a": lambda e: "key %s msg %s was polled but its send failed (%s)" % (
        canon(e["key"]), canon(e["msg"]), canon(e["writer-error"])[:60]),
    "phantom-msg": lambda e: "key %s msg %s was polled but never sent" % (
        canon(e["key"]), canon(e["msg"])),
    "huge-offset": lambda e: "key %s offset %s" % (canon(e["key"]),
                                                   e["offset"]),
}


def _result(errors, ops, keys, lag):
    types = sorted(errors)
    bad = [t for t in types if t not in ALLOWED]
    res = {"valid": not bad, "error-types": types, "bad-error-types": bad,
           "worst-realtime-lag": lag,
           "info-txn-causes": sorted({canon(op.error) for op in ops
                                      if op.type == "info"
                                      and op.f in ("send", "poll")}),
           "send-count": sum(1 for op in ops if op.f == "send"
                             and op.type == "ok"),
           "poll-count": sum(1 for op in ops if op.f == "poll"
                             and op.type == "ok"),
           "key-count": len(keys)}
    for t in types:
        errs = errors[t]
        if t == "unseen":
            res[t] = {"count": sum(e["count"] for e in errs),
                      "by-key": {e["key"]: e["count"] for e in errs},
                      "examples": errs[:EXAMPLES]}
        else:
            res[t] = {"count": len(errs), "examples": errs[:EXAMPLES]}
    if bad:
        counts = ", ".join("%s (%d)" % (t, res[t]["count"]) for t in bad)
        t = bad[0]
        res["reason"] = "bad error types %s; e.g. %s: %s" % (
            counts, t, _DESCRIBE[t](errors[t][0]))
    return res
