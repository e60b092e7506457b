#!/usr/bin/python3
"""Broadcast that spreads values correctly but lists the first value it
learnt twice in every read: a duplicate in a read is invalid."""
import os
import sys
import threading
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _node import run  # noqa: E402

lock = threading.Lock()
values = []             # in the order learnt


def learn(v):
    with lock:
        if v in values:
            return False
        values.append(v)
        return True


def broadcast(n, m):
    v = m["body"]["message"]
    new = learn(v)
    n.reply(m, {"type": "broadcast_ok"})
    if new:
        for p in n.node_ids:
            if p != n.id:
                n.send(p, {"type": "gossip", "message": v})


def read(n, m):
    with lock:
        msgs = values + values[:1]
    n.reply(m, {"type": "read_ok", "messages": msgs})


run({"broadcast": broadcast, "read": read,
     "gossip": lambda n, m: learn(m["body"]["message"]),
     "topology": lambda n, m: n.reply(m, {"type": "topology_ok"})})
