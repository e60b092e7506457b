#!/usr/bin/python3
"""Bad: every third echo comes back with a different payload."""
import itertools
import os
import sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _node import run  # noqa: E402

seen = itertools.count(1)


def echo(n, m):
    payload = m["body"]["echo"]
    if next(seen) % 3 == 0:
        payload = payload + " (sic)"
    n.reply(m, {"type": "echo_ok", "echo": payload})


run({"echo": echo})
