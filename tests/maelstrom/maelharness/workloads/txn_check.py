"""The txn-rw-register checker: our own, in the spirit of Elle's rw-register
analysis, which relies on every written value being unique per key.

Anomalies found (with one or a few examples each):

  garbage-read      an ok txn read a value nobody wrote to that key
  future-read       an ok txn read a value only it wrote, before writing it
  duplicate-writes  two writes (in one txn or two) of the same value to the
                    same key: the history breaks the uniqueness assumption
  cyclic-versions   the version order inferred for a key has a cycle
  G0                a cycle of ww edges between txns (write cycle)
  G1a               an ok txn read a value written only by failed txns
  G1b               an ok txn read a value its writer (another txn) later
                    overwrote within the same txn (intermediate read)
  G1c               a cycle of ww and wr edges with at least one wr edge
  internal          an ok txn read a key it had read or written before and
                    saw something other than its own latest write or read
  empty-transaction-graph   no txn completed ok

Version order per key, inferred as Elle's write-follows-read does: when a
txn's access to k just before one of its writes v2 is a read of v1 (not
null), v1 precedes v2; a txn's own successive writes are ordered too.
Txn graph, over ok and info txns (an info txn's writes come from its
invocation, its reads are unknown): ww T1 -> T2 when T2 read T1's v1 of k
and then wrote k; wr T1 -> T2 when T2 read a value T1 wrote.  Cycles come
from Tarjan's SCCs, then a breadth-first search for one concrete cycle per
component.

Models (as Maelstrom passes them to Elle, one at a time):
  read-uncommitted forbids G0, cyclic-versions, duplicate-writes,
                   garbage-read, future-read, empty-transaction-graph
  read-committed   also forbids G1a, G1b, G1c
internal is reported but allowed by both, as in Elle's model table.
"""

from collections import deque

from ..checkers import pairs
from ..services import canon

_RU = frozenset(["G0", "cyclic-versions", "duplicate-writes", "garbage-read",
                 "future-read", "empty-transaction-graph"])
MODELS = {"read-uncommitted": _RU,
          "read-committed": _RU | {"G1a", "G1b", "G1c"}}
EXAMPLES = 3


class _Txn:
    __slots__ = ("id", "index", "process", "type", "mops", "final",
                 "intermediate")

    def __init__(self, tid, inv, comp):
        self.id = tid
        self.type = comp["type"] if comp else "info"
        self.index = comp.get("index") if comp else inv.get("index")
        self.process = inv["process"]
        v = comp["value"] if comp and self.type == "ok" else inv["value"]
        self.mops = [m for m in (v if isinstance(v, list) else [])
                     if isinstance(m, (list, tuple)) and len(m) == 3
                     and m[0] in ("r", "w")]
        self.final = {}           # canon key -> canon value of last write
        self.intermediate = set()  # (canon key, canon value) overwritten
        for f, k, val in self.mops:
            if f == "w":
                ck = canon(k)
                if ck in self.final:
                    self.intermediate.add((ck, self.final[ck]))
                self.final[ck] = canon(val)

    def brief(self):
        return {"index": self.index, "process": self.process,
                "type": self.type, "txn": [list(m) for m in self.mops]}

    def name(self):
        return "%s's %s txn (index %s)" % (self.process, self.type,
                                           self.index)


def check_txn(history, model="read-committed"):
    forbidden = MODELS[model]
    txns = [_Txn(i, inv, comp) for i, (inv, comp) in
            enumerate(p for p in pairs(history) if p[0]["f"] == "txn")]
    anomalies = {}

    def add(t, e):
        anomalies.setdefault(t, []).append(e)

    writes = {}                     # (ck, cv) -> [(txn id, mop index)]
    for t in txns:
        for i, (f, k, v) in enumerate(t.mops):
            if f == "w":
                writes.setdefault((canon(k), canon(v)), []).append((t.id, i))
    for (ck, cv), ws in writes.items():
        if len(ws) > 1:
            t0 = txns[ws[0][0]]
            k, v = next((k, v) for f, k, v in t0.mops
                        if f == "w" and canon(k) == ck and canon(v) == cv)
            add("duplicate-writes", {"key": k, "value": v, "txns": [
                txns[tid].brief() for tid in sorted({w[0] for w in ws})]})

    in_graph = [t.type in ("ok", "info") for t in txns]
    ww = {}                          # u -> {v: explanation}
    wr = {}
    versions = {}                    # ck -> {cv: set(cv)}; also key names
    key_name = {}

    def edge(adj, u, v, expl):
        if u != v and in_graph[u] and in_graph[v]:
            adj.setdefault(u, {}).setdefault(v, expl)

    for t in txns:
        if t.type == "fail":
            continue
        local = {}                   # ck -> (kind, cv, value, mop index)
        for i, (f, k, v) in enumerate(t.mops):
            ck = canon(k)
            key_name[ck] = k
            cv = canon(v)
            prev = local.get(ck)
            if f == "w":
                if prev is not None and prev[2] is not None:
                    versions.setdefault(ck, {}).setdefault(
                        prev[1], set()).add(cv)
                    if prev[0] == "r":
                        for wid, _ in writes.get((ck, prev[1]), ()):
                            edge(ww, wid, t.id, {"key": k,
                                                 "value": prev[2],
                                                 "then": v})
                local[ck] = ("w", cv, v, i)
                continue
            if t.type != "ok":
                continue             # an info txn's reads are unknown
            if prev is not None and prev[1] != cv:
                add("internal", {"txn": t.brief(), "key": k,
                                 "expected": prev[2], "read": v,
                                 "mop-index": i})
            local[ck] = ("r", cv, v, i)
            if v is None:
                continue
            ws = writes.get((ck, cv), [])
            others = [w for w in ws if w[0] != t.id]
            if not ws:
                add("garbage-read", {"txn": t.brief(), "key": k,
                                     "value": v})
                continue
            if not others:
                if all(mi > i for _, mi in ws):
                    add("future-read", {"txn": t.brief(), "key": k,
                                        "value": v})
                continue
            writers = [txns[w[0]] for w in others]
            if all(w.type == "fail" for w in writers):
                add("G1a", {"reader": t.brief(), "key": k, "value": v,
                            "writer": writers[0].brief()})
            for w in writers:
                if (ck, cv) in w.intermediate:
                    add("G1b", {"reader": t.brief(), "key": k, "value": v,
                                "writer": w.brief()})
                edge(wr, w.id, t.id, {"key": k, "value": v})

    for ck in sorted(versions):
        for comp in _sccs(list(versions[ck]), lambda x, g=versions[ck]:
                          g.get(x, ())):
            add("cyclic-versions", {"key": key_name[ck],
                                    "values": sorted(comp)})

    nodes = [t.id for t in txns if in_graph[t.id]]
    for comp in _sccs(nodes, lambda u: ww.get(u, {})):
        u = min(comp)
        v = next(x for x in ww[u] if x in comp)
        add("G0", _explain(txns, u, v, comp, [("ww", ww)]))
    both = [("ww", ww), ("wr", wr)]
    for comp in _sccs(nodes, lambda u: list(ww.get(u, {})) +
                      list(wr.get(u, {}))):
        e = next(((u, v) for u in sorted(comp) for v in wr.get(u, {})
                  if v in comp), None)
        if e is not None:
            add("G1c", _explain(txns, e[0], e[1], comp, both,
                                first=("wr", wr)))

    if not any(t.type == "ok" for t in txns):
        add("empty-transaction-graph", {"txn-count": len(txns)})
    res = _result(anomalies, model, forbidden, txns)
    res["edge-counts"] = {"ww": sum(len(x) for x in ww.values()),
                          "wr": sum(len(x) for x in wr.values())}
    return res


def _sccs(nodes, succ):
    """Strongly connected components with more than one node (iterative
    Tarjan); succ(u) yields u's successors."""
    index = {}
    low = {}
    on = set()
    stack = []
    out = []
    counter = 0
    for root in nodes:
        if root in index:
            continue
        work = [(root, iter(succ(root)))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            u, it = work[-1]
            for v in it:
                if v not in index:
                    index[v] = low[v] = counter
                    counter += 1
                    stack.append(v)
                    on.add(v)
                    work.append((v, iter(succ(v))))
                    break
                if v in on and index[v] < low[u]:
                    low[u] = index[v]
            else:
                work.pop()
                if work:
                    p = work[-1][0]
                    if low[u] < low[p]:
                        low[p] = low[u]
                if low[u] == index[u]:
                    comp = set()
                    while True:
                        x = stack.pop()
                        on.discard(x)
                        comp.add(x)
                        if x == u:
                            break
                    if len(comp) > 1:
                        out.append(comp)
    return out


def _explain(txns, u, v, comp, rels, first=None):
    """A concrete cycle u -> v -> ... -> u inside comp, over rels
    [(name, adj)], as steps naming each edge's kind, key and value."""
    prev = {v: None}
    q = deque([v])
    while q and u not in prev:
        x = q.popleft()
        for name, adj in rels:
            for y in adj.get(x, {}):
                if y in comp and y not in prev:
                    prev[y] = x
                    q.append(y)
    path = [u]
    x = u
    while x != v:
        x = prev[x]
        path.append(x)
    path.reverse()                 # v ... u
    cycle = [u] + path             # u v ... u
    steps = []
    for i, (a, b) in enumerate(zip(cycle, cycle[1:])):
        order = ([first] if first and i == 0 else []) + rels
        for name, adj in order:
            if b in adj.get(a, {}):
                steps.append(dict(adj[a][b], type=name,
                                  **{"from": txns[a].index,
                                     "to": txns[b].index}))
                break
    return {"cycle": [txns[x].brief() for x in cycle[:-1]], "steps": steps}


def _describe(t, e):
    if t in ("G0", "G1c"):
        return " -> ".join("%s %s=%s" % (s["type"], canon(s["key"]),
                                          canon(s["value"]))
                           for s in e["steps"]) + " (txn indices %s)" % (
            [s["from"] for s in e["steps"]],)
    if t == "G1a":
        return "%s read key %s = %s, written only by %s" % (
            _name(e["reader"]), canon(e["key"]), canon(e["value"]),
            _name(e["writer"]))
    if t == "G1b":
        return "%s read key %s = %s, an intermediate write of %s" % (
            _name(e["reader"]), canon(e["key"]), canon(e["value"]),
            _name(e["writer"]))
    if t in ("garbage-read", "future-read"):
        return "%s read key %s = %s" % (_name(e["txn"]), canon(e["key"]),
                                       canon(e["value"]))
    if t == "internal":
        return "%s read key %s = %s, expected %s" % (
            _name(e["txn"]), canon(e["key"]), canon(e["read"]),
            canon(e["expected"]))
    if t == "duplicate-writes":
        return "key %s value %s written %d times" % (
            canon(e["key"]), canon(e["value"]), len(e["txns"]))
    if t == "cyclic-versions":
        return "key %s values %s" % (canon(e["key"]), ", ".join(e["values"]))
    if t == "empty-transaction-graph":
        return "no txn completed ok (%d attempted)" % e["txn-count"]
    return canon(e)[:100]


def _name(b):
    return "%s's %s txn (index %s)" % (b["process"], b["type"], b["index"])


def _result(anomalies, model, forbidden, txns):
    types = sorted(anomalies)
    bad = [t for t in types if t in forbidden]
    res = {"valid": not bad, "consistency-model": model,
           "anomaly-types": types, "bad-anomaly-types": bad,
           "anomaly-counts": {t: len(anomalies[t]) for t in types},
           "anomalies": {t: anomalies[t][:EXAMPLES] for t in types},
           "not": sorted(m for m, f in MODELS.items()
                         if any(t in f for t in types)),
           "ok-count": sum(1 for t in txns if t.type == "ok"),
           "fail-count": sum(1 for t in txns if t.type == "fail"),
           "info-count": sum(1 for t in txns if t.type == "info")}
    if bad:
        counts = ", ".join("%s (%d)" % (t, len(anomalies[t])) for t in bad)
        t = bad[0]
        res["reason"] = "%s forbids %s; e.g. %s: %s" % (
            model, counts, t, _describe(t, anomalies[t][0]))
    return res
