"""g-counter (section 5.4, challenge 4) and pn-counter.

{"type":"add","delta":d} -> add_ok, {"type":"read"} -> read_ok with value.
The generator is Maelstrom's pn-counter one: a 50/50 mix of add, with delta
(rand-int 10) - 5, i.e. -5..4, and read.  g-counter filters out the
negative adds, so its deltas are 0..4 and (as with Jepsen's gen/filter over
gen/mix) about a third of its ops are adds.  After the heal and the 10 s
wait every client does one final read.

Checker (maelstrom.workload.pn-counter): only final ok reads are judged.
Each must lie in the acceptable set: the sum of the ok adds plus the deltas
of any subset of the info (uncertain) adds, computed exactly and reported as
merged closed integer ranges.  Reads during the run are not judged (the
stats checker still requires some read to succeed).
"""

from .base import Request, UnexpectedReply, Workload, expect_type


def merge_ranges(ranges):
    """Sort closed integer ranges and merge overlapping or adjacent ones."""
    out = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            if hi > out[-1][1]:
                out[-1][1] = hi
        else:
            out.append([lo, hi])
    return out


def acceptable_ranges(definite, uncertain):
    """The set {definite + sum(S) : S a subset of uncertain} as merged
    closed ranges [[lo, hi], ...] (Maelstrom's TreeRangeSet, step by step:
    for each info delta, add the current set shifted by that delta)."""
    ranges = [[definite, definite]]
    for d in uncertain:
        if d == 0:
            continue
        ranges = merge_ranges(ranges + [[lo + d, hi + d] for lo, hi in ranges])
    return ranges


def in_ranges(v, ranges):
    return any(lo <= v <= hi for lo, hi in ranges)


def _is_int(v):
    return type(v) is int


class PNCounter(Workload):
    name = "pn-counter"
    has_final_phase = True
    closes_clients_on_timeout = True
    allow_negative = True

    def gen_op(self, rng, client):
        while True:
            if rng.randrange(2) == 0:
                d = rng.randrange(10) - 5
                if d < 0 and not self.allow_negative:
                    continue      # gen/filter: draw again from the mix
                return Request("add", d, {"type": "add", "delta": d})
            return Request("read", None, {"type": "read"})

    def complete(self, op, reply, client):
        if op["f"] == "add":
            expect_type(reply, "add_ok")
            return op["value"]
        expect_type(reply, "read_ok")
        v = reply.get("value")
        if isinstance(v, float) and v.is_integer():
            v = int(v)          # Maelstrom coerces with (long value)
        if not _is_int(v):
            raise UnexpectedReply("read_ok value is not an integer: %r"
                                  % (v,))
        return v

    def final_ops(self, client):
        return [Request("read", None, {"type": "read"})]

    def check(self, history, test):
        definite = 0
        ok_adds = 0
        uncertain = []
        finals = []
        for e in history:
            if e.get("process") == "nemesis":
                continue
            f, typ = e.get("f"), e["type"]
            if f == "add":
                if typ == "ok":
                    definite += e["value"]
                    ok_adds += 1
                elif typ == "info":
                    uncertain.append(e["value"])
            elif e.get("final") and typ == "ok":
                finals.append(e)
        acceptable = acceptable_ranges(definite, uncertain)
        errors = [{"process": e["process"], "time": e["time"],
                   "value": e["value"]}
                  for e in finals
                  if not _is_int(e["value"])
                  or not in_ranges(e["value"], acceptable)]
        res = {"valid": not errors,
               "final-reads": [e["value"] for e in finals],
               "acceptable": acceptable,
               "errors": errors,
               "ok-add-count": ok_adds,
               "info-add-count": len(uncertain),
               "definite-sum": definite}
        if errors:
            res["reason"] = ("%d of %d final reads outside the acceptable set "
                             "%s: final reads %s"
                             % (len(errors), len(finals),
                                _ranges_text(acceptable),
                                _list_text(res["final-reads"])))
        return res

    def summary(self, result):
        fr = result.get("final-reads")
        acc = result.get("acceptable")
        if fr is None or acc is None:
            return ""
        return "final-reads=%s acceptable=%s" % (_list_text(fr),
                                                 _ranges_text(acc))


class GCounter(PNCounter):
    name = "g-counter"
    allow_negative = False


def _list_text(values, n=10):
    text = ",".join(str(v) for v in values[:n])
    if len(values) > n:
        text += ",..."
    return "[%s]" % text


def _ranges_text(ranges, n=4):
    text = ",".join("%d..%d" % (lo, hi) for lo, hi in ranges[:n])
    if len(ranges) > n:
        text += ",...(%d ranges)" % len(ranges)
    return "{%s}" % text
