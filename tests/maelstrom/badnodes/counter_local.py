#!/usr/bin/python3
"""A counter that never talks to other nodes: each node counts only the
adds it received, so final reads differ between nodes (no convergence)."""
import os
import sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _node import run  # noqa: E402

total = [0]


def add(n, m):
    total[0] += m["body"]["delta"]
    n.reply(m, {"type": "add_ok"})


run({"add": add,
     "read": lambda n, m: n.reply(m, {"type": "read_ok", "value": total[0]})})
