#!/usr/bin/python3
"""Load generator, not a test subject: a correct echo node that, for every
echo, sends a gossip RPC to every other node (which answers it).  With 25
nodes that is 48 node<->node messages per op.  At exit (SIGKILL) nothing is
printed, so it logs the gossip round-trip times to stderr every 200 RPCs,
which should sit near 2 x --latency if the harness keeps up.
"""
import os
import sys
import time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "badnodes"))
from _node import run  # noqa: E402

rtts = []


def echo(n, m):
    n.reply(m, {"type": "echo_ok", "echo": m["body"]["echo"]})
    t0 = time.monotonic()
    for peer in n.node_ids:
        if peer != n.id:
            n.rpc(peer, {"type": "gossip"}, lambda r, t0=t0: done(n, t0))


def done(n, t0):
    rtts.append(time.monotonic() - t0)
    if len(rtts) >= 200:
        s = sorted(rtts)
        n.log("gossip rtt ms: median %.1f p95 %.1f max %.1f"
              % (1000 * s[len(s) // 2], 1000 * s[int(len(s) * .95)],
                 1000 * s[-1]))
        del rtts[:]


run({"echo": echo,
     "gossip": lambda n, m: n.reply(m, {"type": "gossip_ok"})})
