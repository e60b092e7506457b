"""unique-ids (section 5.2): every acknowledged id must be distinct."""

from ..checkers import client_ops
from ..services import canon
from .base import Request, Workload, expect_type


class UniqueIds(Workload):
    name = "unique-ids"
    has_final_phase = False
    closes_clients_on_timeout = False

    def gen_op(self, rng, client):
        return Request("generate", None, {"type": "generate"})

    def complete(self, op, reply, client):
        expect_type(reply, "generate_ok")
        return reply.get("id")

    def check(self, history, test):
        attempted = 0
        acked = []
        for e in client_ops(history):
            if e["f"] != "generate":
                continue
            if e["type"] == "invoke":
                attempted += 1
            elif e["type"] == "ok":
                acked.append(e["value"])
        counts = {}
        for v in acked:
            k = canon(v)
            counts[k] = counts.get(k, 0) + 1
        dups = sorted(((n, k) for k, n in counts.items() if n > 1),
                      reverse=True)
        res = {"valid": not dups,
               "attempted-count": attempted,
               "acknowledged-count": len(acked),
               "duplicated-count": len(dups),
               "duplicated": {k: n for n, k in dups[:8]},
               "range": _range(acked)}
        if dups:
            res["reason"] = ("%d ids acknowledged more than once (e.g. %s x%d)"
                             % (len(dups), dups[0][1][:60], dups[0][0]))
        return res


def _range(values):
    """[min, max] when the ids are all numbers or all strings, else None."""
    if not values:
        return None
    if all(isinstance(v, str) for v in values) or all(
            isinstance(v, (int, float)) and not isinstance(v, bool)
            for v in values):
        return [min(values), max(values)]
    return None
