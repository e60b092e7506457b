#!/usr/bin/python3
"""A correct single-node txn-rw-register node (challenge 6a): each txn runs
atomically against one in-memory map, so it is serializable."""
import os
import sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "badnodes"))
from _node import run  # noqa: E402

store = {}


def txn(n, m):
    out = []
    for f, k, v in m["body"]["txn"]:
        if f == "r":
            out.append(["r", k, store.get(k)])
        else:
            store[k] = v
            out.append(["w", k, v])
    n.reply(m, {"type": "txn_ok", "txn": out})


run({"txn": txn})
