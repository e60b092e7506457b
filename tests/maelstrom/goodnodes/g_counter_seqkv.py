#!/usr/bin/python3
"""A correct counter (g-counter, challenge 4, and pn-counter) kept in seq-kv.

add: cas("counter", g, g+delta) with create_if_not_exists, where g is the
last value seen; on a 22 (stale guess) refresh g and retry.  read and
refresh: first write a node-private key, which moves this node's seq-kv view
to the newest version, then read "counter" (absent means 0).  No state in
the node besides a guess, so partitions between nodes do not matter.
"""
import itertools
import os
import sys
import threading
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "badnodes"))
from _node import run  # noqa: E402

KV = "seq-kv"
KEY = "counter"
lock = threading.Lock()
guess = [0]
ticks = itertools.count()


def fresh_read(n, done):
    """Call done(value) with a value at least as new as this call."""
    def after_write(r):
        n.rpc(KV, {"type": "read", "key": KEY}, after_read)

    def after_read(r):
        if r["type"] == "read_ok":
            v = r["value"]
        elif r.get("code") == 20:
            v = 0
        else:
            return fresh_read(n, done)
        with lock:
            guess[0] = v
        done(v)
    n.rpc(KV, {"type": "write", "key": "sync-" + n.id,
               "value": next(ticks)}, after_write)


def add(n, m):
    d = m["body"]["delta"]
    if d == 0:
        return n.reply(m, {"type": "add_ok"})

    def attempt(g):
        n.rpc(KV, {"type": "cas", "key": KEY, "from": g, "to": g + d,
                   "create_if_not_exists": True},
              lambda r: done(r, g))

    def done(r, g):
        if r["type"] == "cas_ok":
            with lock:
                guess[0] = g + d
            n.reply(m, {"type": "add_ok"})
        elif r.get("code") in (20, 22):
            fresh_read(n, attempt)
        else:
            n.reply(m, {"type": "error", "code": 13, "text": repr(r)})

    with lock:
        g = guess[0]
    attempt(g)


def read(n, m):
    fresh_read(n, lambda v: n.reply(m, {"type": "read_ok", "value": v}))


run({"add": add, "read": read})
