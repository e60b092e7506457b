"""broadcast (section 5.3): Jepsen's set-full checker over broadcast/read.

Setup sends every node the same {"type":"topology","topology":{...}} map
(--topology, default grid).  The generator mixes broadcast and read 50/50;
broadcast values are the integers 0, 1, 2, ... each sent once.  After the
heal and the 10 s wait every client does one final read.

The checker is Jepsen's checker/set-full (linearizable? false) with
:broadcast treated as :add, exactly as its source computes it; see set_full.
"""

import math

from ..services import canon
from .base import Request, UnexpectedReply, Workload, expect_type


# -- topologies (maelstrom.workload.broadcast) ------------------------------

def grid_topology(nodes):
    """Maelstrom's roughly-square grid: side = ceil(sqrt(n)), node (i, j)
    is nodes[i*side + j]; neighbours in the order down, up, right, left."""
    n = len(nodes)
    side = int(math.ceil(math.sqrt(n)))

    def at(i, j):
        if i > -1 and -1 < j < side:
            idx = i * side + j
            if idx < n:
                return nodes[idx]
        return None
    topo = {}
    for i in range(side):
        for j in range(side):
            me = at(i, j)
            if me is None:
                continue
            topo[me] = [x for x in (at(i + 1, j), at(i - 1, j),
                                    at(i, j + 1), at(i, j - 1))
                        if x is not None]
    return topo


def line_topology(nodes):
    """Each node next to the one before and the one after it."""
    return {x: [nodes[k] for k in (i - 1, i + 1) if 0 <= k < len(nodes)]
            for i, x in enumerate(nodes)}


def total_topology(nodes):
    """Everyone is everyone's neighbour."""
    return {x: [y for y in nodes if y != x] for x in nodes}


def tree_topology(nodes, b):
    """A tree with branching factor b, in heap order: node i's parent is
    (i-1)//b and its children are b*i+1 .. b*i+b.  Links go both ways."""
    n = len(nodes)
    topo = {}
    for i, x in enumerate(nodes):
        nb = [nodes[(i - 1) // b]] if i > 0 else []
        nb += [nodes[c] for c in range(b * i + 1, b * i + b + 1) if c < n]
        topo[x] = nb
    return topo


TOPOLOGIES = {
    "grid": grid_topology,
    "line": line_topology,
    "total": total_topology,
    "tree": lambda nodes: tree_topology(nodes, 2),
    "tree2": lambda nodes: tree_topology(nodes, 2),
    "tree3": lambda nodes: tree_topology(nodes, 3),
    "tree4": lambda nodes: tree_topology(nodes, 4),
}


# -- set-full ---------------------------------------------------------------

QUANTILES = (("0", 0.0), ("0.5", 0.5), ("0.95", 0.95), ("0.99", 0.99),
             ("1", 1.0))


def element_key(v):
    """Set-membership key with Clojure/JSON equality: 1, 1.0, true and "1"
    are four different elements (Python would call 1, 1.0 and True equal)."""
    return v if type(v) is int else ("json", canon(v))


def frequency_distribution(values):
    """Jepsen's frequency-distribution at 0, 0.5, 0.95, 0.99, 1: element
    min(n-1, floor(n*q)) of the sorted values; None if there are none."""
    s = sorted(values)
    n = len(s)
    if not n:
        return None
    return {name: s[min(n - 1, int(math.floor(n * q)))]
            for name, q in QUANTILES}


def _ref(e, idx):
    """A compact, JSON-friendly description of an event for the results."""
    d = {"index": idx, "time": e["time"], "process": e["process"],
         "type": e["type"], "f": e["f"]}
    if e.get("final"):
        d["final"] = True
    return d


class _Elem:
    """One element's state: known, last-present, last-absent, each either
    None or (history index, event)."""

    __slots__ = ("value", "known", "last_present", "last_absent")

    def __init__(self, value):
        self.value = value
        self.known = None
        self.last_present = None
        self.last_absent = None


def _nanos_to_ms(ns):
    """util/nanos->ms then long: truncate toward zero (ns >= 0 here)."""
    return int(ns / 1e6)


def set_full(history, add_f="add", read_f="read"):
    """Jepsen's set-full checker (linearizable? false).

    Per element, from its add's invoke on:
      known        the first, in history order, of the add's ok completion
                   and the completion of the first ok read containing it
      last-present the invocation (highest history index so far) of an ok
                   read that contained it
      last-absent  likewise for ok reads that did not contain it
    stable   iff last-present and
                 index(last-absent or -1) < index(last-present)
    lost     iff known and last-absent and
                 index(last-present or -1) < index(last-absent) and
                 index(known) < index(last-absent)
    never-read otherwise.
    stable-latency = max(0, (time(last-absent)+1, or 0) - time(known)) ms,
    lost-latency likewise from last-present.  Reads only update elements
    whose add was invoked before the read completed; read values that were
    never added are ignored (reported here as unexpected, for information).
    A value appearing more than once in one read makes the result invalid.
    """
    elements = {}
    dups = {}
    open_inv = {}
    added = set()
    read_keys = {}
    for idx, e in enumerate(history):
        p = e.get("process")
        if p == "nemesis":
            continue
        typ = e["type"]
        if typ == "invoke":
            open_inv[p] = (idx, e)
            inv = None
        else:
            inv = open_inv.pop(p, None)
        f = e.get("f")
        if f == add_f:
            k = element_key(e["value"])
            if typ == "invoke":
                elements[k] = _Elem(e["value"])
                added.add(k)
            elif typ == "ok":
                el = elements.get(k)
                if el is not None and el.known is None:
                    el.known = (idx, e)
        elif f == read_f and typ == "ok" and inv is not None:
            vals = e["value"] if isinstance(e["value"], list) else []
            counts = {}
            for v in vals:
                k = element_key(v)
                counts[k] = counts.get(k, 0) + 1
                if k not in read_keys:
                    read_keys[k] = v
            for k, c in counts.items():
                if c > 1 and c > dups.get(k, 0):
                    dups[k] = c
            ii = inv[0]
            for k, el in elements.items():
                if k in counts:
                    if el.known is None:
                        el.known = (idx, e)
                    lp = el.last_present
                    if lp is None or lp[0] < ii:
                        el.last_present = inv
                else:
                    la = el.last_absent
                    if la is None or la[0] < ii:
                        el.last_absent = inv

    stable, lost, never, stale = [], [], [], []
    stable_lat, lost_lat = [], []
    for k in sorted(elements, key=_sort_key):
        el = elements[k]
        known, lp, la = el.known, el.last_present, el.last_absent
        la_i = la[0] if la is not None else -1
        lp_i = lp[0] if lp is not None else -1
        is_stable = lp is not None and la_i < lp_i
        is_lost = (known is not None and la is not None and lp_i < la_i
                   and known[0] < la_i)
        if is_stable:
            t = (la[1]["time"] + 1) if la is not None else 0
            lat = _nanos_to_ms(max(0, t - known[1]["time"]))
            stable_lat.append(lat)
            stable.append(el)
            if lat > 0:
                stale.append((el, lat))
        elif is_lost:
            t = (lp[1]["time"] + 1) if lp is not None else 0
            lost_lat.append(_nanos_to_ms(max(0, t - known[1]["time"])))
            lost.append(el)
        else:
            never.append(el)
    # Jepsen: (->> stale (sort-by :stable-latency) reverse (take 8))
    worst = list(reversed(sorted(stale, key=lambda s: s[1])))[:8]
    worst_stale = [{"element": el.value, "outcome": "stable",
                    "stable-latency": lat,
                    "known": _ref(el.known[1], el.known[0]),
                    "last-absent": (_ref(el.last_absent[1], el.last_absent[0])
                                    if el.last_absent else None)}
                   for el, lat in worst]

    if lost:
        valid = False
    elif not stable:
        valid = "unknown"
    else:
        valid = True
    if dups:
        valid = False
    unexpected = sorted((v for k, v in read_keys.items() if k not in added),
                        key=lambda v: _sort_key(element_key(v)))
    res = {
        "valid": valid,
        "attempt-count": len(elements),
        "stable-count": len(stable),
        "lost-count": len(lost),
        "lost": [el.value for el in lost],
        "never-read-count": len(never),
        "never-read": [el.value for el in never],
        "stale-count": len(stale),
        "stale": [el.value for el, _ in stale],
        "worst-stale": worst_stale,
        "duplicated-count": len(dups),
        "duplicated": {canon(read_keys[k]): c
                       for k, c in sorted(dups.items(),
                                          key=lambda kc: _sort_key(kc[0]))},
        # Not part of set-full (which ignores them); for information only.
        "unexpected-count": len(unexpected),
        "unexpected": unexpected[:16],
    }
    sl = frequency_distribution(stable_lat)
    if sl is not None:
        res["stable-latencies"] = sl
    ll = frequency_distribution(lost_lat)
    if ll is not None:
        res["lost-latencies"] = ll
    reasons = []
    if lost:
        reasons.append("%d of %d values lost (acknowledged or seen, then "
                       "missing from every later read), e.g. %s"
                       % (len(lost), len(elements),
                          _sample([el.value for el in lost])))
    if dups:
        k, c = next(iter(sorted(dups.items(),
                                key=lambda kc: _sort_key(kc[0]))))
        reasons.append("%d values appeared more than once in a single read "
                       "(e.g. %s x%d)" % (len(dups), canon(read_keys[k])[:40],
                                          c))
    if not reasons and valid == "unknown":
        reasons.append("no value is stable (%d attempted, %d never read): "
                       "no ok read ever saw a broadcast value"
                       % (len(elements), len(never)))
    if reasons:
        res["reason"] = "; ".join(reasons)
    return res


def _sort_key(k):
    """Order element keys: integers first, numerically, then the rest."""
    return (0, k, "") if type(k) is int else (1, 0, k[1])


def _sample(values, n=8):
    text = ", ".join(canon(v) for v in values[:n])
    if len(values) > n:
        text += ", ..."
    return "[%s]" % text


# -- the workload -----------------------------------------------------------

class Broadcast(Workload):
    name = "broadcast"
    has_final_phase = True
    closes_clients_on_timeout = True
    idempotent = frozenset(("read",))

    @classmethod
    def add_arguments(cls, parser):
        parser.add_argument("--topology", default="grid",
                            choices=sorted(TOPOLOGIES),
                            help="broadcast: topology sent to the nodes "
                                 "(default grid)")

    def __init__(self, opts):
        super().__init__(opts)
        self.next_value = 0

    def setup_requests(self, node_ids, rng):
        topo = TOPOLOGIES[getattr(self.opts, "topology", "grid")](node_ids)
        return [(n, {"type": "topology", "topology": topo})
                for n in node_ids]

    def gen_op(self, rng, client):
        if rng.randrange(2) == 0:
            v = self.next_value
            self.next_value += 1
            return Request("broadcast", v, {"type": "broadcast", "message": v})
        return Request("read", None, {"type": "read"})

    def complete(self, op, reply, client):
        if op["f"] == "broadcast":
            expect_type(reply, "broadcast_ok")
            return op["value"]
        expect_type(reply, "read_ok")
        msgs = reply.get("messages")
        if not isinstance(msgs, list):
            raise UnexpectedReply("read_ok without a messages array")
        return msgs

    def final_ops(self, client):
        return [Request("read", None, {"type": "read"})]

    def check(self, history, test):
        return set_full(history, add_f="broadcast", read_f="read")

    def summary(self, result):
        sl = result.get("stable-latencies")
        if sl:
            lat = "stable-latency-p50=%d p100=%d" % (sl["0.5"], sl["1"])
        else:
            lat = "stable-latency-p50=- p100=-"
        return "%s lost=%s never-read=%s" % (
            lat, result.get("lost-count", "?"),
            result.get("never-read-count", "?"))
