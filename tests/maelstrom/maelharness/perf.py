"""Run-level performance bars (not part of Maelstrom): --max-median-latency,
--max-latency and --max-msgs-per-op.

Maelstrom only reports these figures; the Gossip Glomers pages set the bars
(3d: msgs-per-op < 30, median stable latency < 400 ms, maximum < 600 ms).
With a bar given, the run is invalid unless the measured value is strictly
below it, as the challenge pages state their bars.  All bars default to off.

  --max-median-latency MS   workload stable-latencies 0.5
  --max-latency MS          workload stable-latencies 1
  --max-msgs-per-op F       net servers msgs-per-op (node<->node and
                            node<->service messages per client op)
"""

import argparse

UNKNOWN = "unknown"


def _bar(text):
    try:
        v = float(text)
    except ValueError:
        v = -1.0
    if not v >= 0:
        raise argparse.ArgumentTypeError("must be a number >= 0, got %r"
                                         % text)
    return v


def add_arguments(parser):
    parser.add_argument("--max-median-latency", type=_bar, default=None,
                        metavar="MS", help="invalid unless the median stable "
                        "latency is below MS (broadcast)")
    parser.add_argument("--max-latency", type=_bar, default=None,
                        metavar="MS", help="invalid unless the maximum "
                        "stable latency is below MS (broadcast)")
    parser.add_argument("--max-msgs-per-op", type=_bar, default=None,
                        metavar="F", help="invalid unless servers "
                        "msgs-per-op is below F")


def check(opts, results):
    """Return the perf result block, or None when no bar is set."""
    bars = [("median stable latency", "--max-median-latency",
             getattr(opts, "max_median_latency", None), "latency", "0.5",
             "ms"),
            ("max stable latency", "--max-latency",
             getattr(opts, "max_latency", None), "latency", "1", "ms"),
            ("servers msgs-per-op", "--max-msgs-per-op",
             getattr(opts, "max_msgs_per_op", None), "msgs", None, "")]
    if all(b[2] is None for b in bars):
        return None
    wl = results.get("workload") or {}
    sl = wl.get("stable-latencies")
    mpo = (results.get("net") or {}).get("servers", {}).get("msgs-per-op")
    res = {"valid": True, "bars": {}, "measured": {}}
    failed, missing = [], []
    for label, flag, bar, kind, q, unit in bars:
        if bar is None:
            continue
        res["bars"][flag[2:]] = bar
        if kind == "latency":
            value = sl.get(q) if isinstance(sl, dict) else None
        else:
            value = mpo
        res["measured"][flag[2:]] = value
        if value is None:
            missing.append("no %s to compare with %s" % (label, flag))
        elif not value < bar:
            failed.append("%s %s is not below %s %g" % (
                label, ("%d ms" % value) if unit else ("%.2f" % value),
                flag, bar))
    if failed:
        res["valid"] = False
    elif missing:
        res["valid"] = UNKNOWN
    if failed or missing:
        res["reason"] = "; ".join(failed + missing)
    return res
