#!/usr/bin/python3
"""Correct but slow: ids from a counter in the lin-kv service.

Each generate does cas(counter, g, g+1) with create_if_not_exists; on 22 it
reads the counter and retries.  Exercises service routing, latency, cas,
errors 20/22 and create_if_not_exists.
"""
import os
import sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "badnodes"))
from _node import run  # noqa: E402

guess = [0]


def generate(n, m):
    def attempt():
        g = guess[0]
        n.rpc("lin-kv", {"type": "cas", "key": "ctr", "from": g, "to": g + 1,
                         "create_if_not_exists": True}, lambda r: done(r, g))

    def done(r, g):
        if r["type"] == "cas_ok":
            guess[0] = g + 1
            n.reply(m, {"type": "generate_ok", "id": g + 1})
        elif r.get("code") == 22:
            n.rpc("lin-kv", {"type": "read", "key": "ctr"}, reread)
        else:
            n.reply(m, {"type": "error", "code": 13, "text": repr(r)})

    def reread(r):
        if r["type"] == "read_ok":
            guess[0] = r["value"]
        attempt()

    attempt()


run({"generate": generate})
