"""echo (section 5.1): the reply must carry back exactly what was sent."""

from ..checkers import pairs
from ..services import canon
from .base import Request, Workload, expect_type

_MISSING = {"missing": "no echo field in reply"}


class Echo(Workload):
    name = "echo"
    has_final_phase = False
    closes_clients_on_timeout = True

    def gen_op(self, rng, client):
        payload = "Please echo %d" % rng.randrange(128)
        return Request("echo", payload, {"type": "echo", "echo": payload})

    def complete(self, op, reply, client):
        expect_type(reply, "echo_ok")
        return reply.get("echo", _MISSING)

    def check(self, history, test):
        ok = 0
        bad = []
        for inv, comp in pairs(history):
            if comp is None or comp["type"] != "ok":
                continue
            ok += 1
            if canon(comp["value"]) != canon(inv["value"]):
                bad.append({"process": inv["process"], "time": comp["time"],
                            "sent": inv["value"], "received": comp["value"]})
        res = {"valid": not bad, "ok-count": ok, "mismatch-count": len(bad),
               "mismatches": bad[:5]}
        if bad:
            res["reason"] = ("%d of %d ok replies echoed something else "
                             "(e.g. sent %s, got %s)"
                             % (len(bad), ok, canon(bad[0]["sent"]),
                                canon(bad[0]["received"])[:80]))
        return res
