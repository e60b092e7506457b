#!/usr/bin/python3
"""Broadcast that is correct but slow: only gossips to its neighbours in the
suggested topology, on a TICK-second timer (default 2), sending everything it
knows.  A value moves at most one hop per tick, so stable latencies run to
seconds: valid, but far outside the 3d bars."""
import os
import sys
import threading
import time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _node import run  # noqa: E402

TICK = float(sys.argv[1]) if len(sys.argv) > 1 else 2.0

lock = threading.Lock()
values = set()
neighbours = []


def ticker(n):
    while True:
        time.sleep(TICK)
        with lock:
            send = sorted(values)
            peers = list(neighbours)
        if send:
            for p in peers:
                n.send(p, {"type": "gossip", "messages": send})


def topology(n, m):
    with lock:
        neighbours[:] = m["body"]["topology"].get(n.id, [])
    n.reply(m, {"type": "topology_ok"})


def broadcast(n, m):
    with lock:
        values.add(m["body"]["message"])
    n.reply(m, {"type": "broadcast_ok"})


def gossip(n, m):
    with lock:
        values.update(m["body"]["messages"])


def read(n, m):
    with lock:
        msgs = sorted(values)
    n.reply(m, {"type": "read_ok", "messages": msgs})


run({"init": lambda n, m: threading.Thread(target=ticker, args=(n,),
                                           daemon=True).start(),
     "topology": topology, "broadcast": broadcast, "gossip": gossip,
     "read": read})
