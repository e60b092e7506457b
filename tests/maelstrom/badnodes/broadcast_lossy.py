#!/usr/bin/python3
"""Broadcast that acknowledges every value but forgets every 10th one a
client sends it (never stores or forwards it): those values are lost."""
import os
import sys
import threading
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _node import run  # noqa: E402

lock = threading.Lock()
values = set()
received = [0]


def broadcast(n, m):
    v = m["body"]["message"]
    with lock:
        received[0] += 1
        forget = received[0] % 10 == 0
        if not forget:
            values.add(v)
    n.reply(m, {"type": "broadcast_ok"})
    if not forget:
        for p in n.node_ids:
            if p != n.id:
                n.send(p, {"type": "gossip", "message": v})


def gossip(n, m):
    with lock:
        values.add(m["body"]["message"])


def read(n, m):
    with lock:
        msgs = sorted(values)
    n.reply(m, {"type": "read_ok", "messages": msgs})


run({"broadcast": broadcast, "gossip": gossip, "read": read,
     "topology": lambda n, m: n.reply(m, {"type": "topology_ok"})})
