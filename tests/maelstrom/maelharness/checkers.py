"""Checkers shared by every workload: stats, availability, net.

A history is a list of dicts, one per event:
  {"index", "time" (ns since start), "process" (client id or "nemesis"),
   "type" ("invoke" | "ok" | "fail" | "info"), "f", "value",
   optional "error", optional "final": true}
Every checker returns a dict with "valid" (True, False or "unknown") and,
when not valid, a one-line "reason".
"""

UNKNOWN = "unknown"


def client_ops(history):
    """Events from clients (not the nemesis)."""
    return [e for e in history if e.get("process") != "nemesis"]


def pairs(history):
    """Yield (invoke, completion or None) per client op, in invoke order.

    Clients are synchronous and ids are never reused, so a completion belongs
    to the last invoke of the same process.
    """
    open_ = {}
    out = []
    for e in history:
        p = e.get("process")
        if p == "nemesis":
            continue
        if e["type"] == "invoke":
            slot = [e, None]
            open_[p] = slot
            out.append(slot)
        else:
            slot = open_.pop(p, None)
            if slot is not None:
                slot[1] = e
    return [(a, b) for a, b in out]


def merge_valid(values):
    """Jepsen's merge: any False is False, else any unknown is unknown."""
    values = list(values)
    if any(v is False for v in values):
        return False
    if any(v is not True for v in values):
        return UNKNOWN
    return True


def stats(history, exempt=()):
    """Counts per f; invalid if some f (not exempt) never returned ok."""
    by_f = {}
    total = {"count": 0, "ok-count": 0, "fail-count": 0, "info-count": 0}
    for e in client_ops(history):
        t = e["type"]
        if t == "invoke":
            continue
        d = by_f.setdefault(e["f"], {"count": 0, "ok-count": 0,
                                     "fail-count": 0, "info-count": 0})
        for x in (d, total):
            x["count"] += 1
            x[t + "-count"] += 1
    for f, d in by_f.items():
        d["valid"] = d["ok-count"] > 0 or f in exempt
    bad = sorted(f for f, d in by_f.items() if not d["valid"])
    res = dict(total)
    res["by-f"] = by_f
    res["valid"] = not bad
    if bad:
        res["reason"] = "; ".join(
            "%s never returned ok (%d fail, %d info)"
            % (f, by_f[f]["fail-count"], by_f[f]["info-count"]) for f in bad)
    return res


def availability(history, required):
    """required is "total" or a fraction; ok fraction of invoked ops."""
    ops = client_ops(history)
    invoked = sum(1 for e in ops if e["type"] == "invoke")
    ok = sum(1 for e in ops if e["type"] == "ok")
    frac = (ok / invoked) if invoked else 1.0
    if required == "total":
        valid = ok == invoked
        need = "1 (total)"
    else:
        valid = frac >= float(required)
        need = "%g" % float(required)
    res = {"valid": valid, "ok-fraction": frac, "ok-count": ok,
           "invoke-count": invoked, "required": required}
    if not valid:
        res["reason"] = ("ok fraction %.3f (%d of %d ops) below required %s"
                         % (frac, ok, invoked, need))
    return res


def net(netstats, op_count, faults):
    """Net stats; invalid if a node broke the protocol (section 1.4)."""
    res = netstats.summary(op_count)
    res["faults"] = faults
    res["valid"] = not faults
    if faults:
        res["reason"] = faults[0]["reason"]
        if len(faults) > 1:
            res["reason"] += " (and %d more faults)" % (len(faults) - 1)
    return res
