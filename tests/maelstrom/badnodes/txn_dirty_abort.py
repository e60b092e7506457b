#!/usr/bin/python3
"""A txn-rw-register node that applies a txn and then claims to abort it:
every 3rd txn that writes gets error 30 (txn-conflict, definite) although
its writes stay in the store.  Later txns read those writes: G1a, which
read-committed forbids and read-uncommitted allows."""
import itertools
import os
import sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _node import run  # noqa: E402

store = {}
writers = itertools.count(1)


def txn(n, m):
    out = []
    for f, k, v in m["body"]["txn"]:
        if f == "r":
            out.append(["r", k, store.get(k)])
        else:
            store[k] = v
            out.append(["w", k, v])
    if any(f == "w" for f, _, _ in out) and next(writers) % 3 == 0:
        n.reply(m, {"type": "error", "code": 30,
                    "text": "conflict (but the writes were kept)"})
        return
    n.reply(m, {"type": "txn_ok", "txn": out})


run({"txn": txn})
