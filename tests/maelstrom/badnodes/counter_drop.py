#!/usr/bin/python3
"""A gossiping counter (per-node increment/decrement totals, merged by max)
that acknowledges every add but silently drops every 20th non-zero one:
final reads come out short."""
import os
import sys
import threading
import time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _node import run  # noqa: E402

lock = threading.Lock()
totals = {}             # node -> [sum of positive deltas, of negative]
nonzero = [0]


def add(n, m):
    d = m["body"]["delta"]
    with lock:
        if d != 0:
            nonzero[0] += 1
        if d != 0 and nonzero[0] % 20 != 0:
            t = totals.setdefault(n.id, [0, 0])
            t[0 if d > 0 else 1] += abs(d)
    n.reply(m, {"type": "add_ok"})


def read(n, m):
    with lock:
        v = sum(p - q for p, q in totals.values())
    n.reply(m, {"type": "read_ok", "value": v})


def merge(n, m):
    with lock:
        for node, (p, q) in m["body"]["totals"].items():
            t = totals.setdefault(node, [0, 0])
            t[0], t[1] = max(t[0], p), max(t[1], q)


def gossiper(n):
    while True:
        time.sleep(0.2)
        with lock:
            snap = {k: list(v) for k, v in totals.items()}
        for p in n.node_ids:
            if p != n.id:
                n.send(p, {"type": "totals", "totals": snap})


run({"init": lambda n, m: threading.Thread(target=gossiper, args=(n,),
                                           daemon=True).start(),
     "add": add, "read": read, "totals": merge})
