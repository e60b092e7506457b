#!/usr/bin/python3
"""A correct broadcast node (3a-3c, and fast enough for the 3d bars).

A value a client broadcasts here is sent straight to every other node and
resent, batched per peer, every RETRY seconds until that peer acknowledges
it.  Peers only store what they receive (the origin reaches everyone
itself), so a value takes one hop.  Ignores the suggested topology.

  broadcast.py [RETRY]      default 1.0 s
"""
import os
import sys
import threading
import time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "badnodes"))
from _node import run  # noqa: E402

RETRY = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0

lock = threading.Lock()
values = set()
unacked = {}            # peer -> {value: time last sent}


def send_batch(n, peer, vals):
    vals = list(vals)

    def acked(reply):
        if reply.get("type") == "gossip_ok":
            with lock:
                u = unacked.get(peer, {})
                for v in vals:
                    u.pop(v, None)
    n.rpc(peer, {"type": "gossip", "messages": vals}, acked)


def broadcast(n, m):
    v = m["body"]["message"]
    now = time.monotonic()
    with lock:
        new = v not in values
        values.add(v)
        peers = [p for p in n.node_ids if p != n.id] if new else []
        for p in peers:
            unacked.setdefault(p, {})[v] = now
    n.reply(m, {"type": "broadcast_ok"})
    for p in peers:
        send_batch(n, p, [v])


def gossip(n, m):
    with lock:
        values.update(m["body"]["messages"])
    n.reply(m, {"type": "gossip_ok"})


def read(n, m):
    with lock:
        msgs = sorted(values)
    n.reply(m, {"type": "read_ok", "messages": msgs})


def retrier(n):
    while True:
        time.sleep(RETRY / 4)
        now = time.monotonic()
        due = {}
        with lock:
            for p, u in unacked.items():
                vs = [v for v, t in u.items() if now - t >= RETRY]
                for v in vs:
                    u[v] = now
                if vs:
                    due[p] = vs
        for p, vs in due.items():
            send_batch(n, p, vs)


def start(n, m):
    threading.Thread(target=retrier, args=(n,), daemon=True).start()


run({"init": start, "broadcast": broadcast, "gossip": gossip, "read": read,
     "topology": lambda n, m: n.reply(m, {"type": "topology_ok"})})
