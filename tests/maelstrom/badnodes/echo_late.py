#!/usr/bin/python3
"""Bad: answers the first echo 6 s late, after its client was closed."""
import itertools
import threading
import os
import sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _node import run  # noqa: E402

seen = itertools.count(1)


def echo(n, m):
    body = {"type": "echo_ok", "echo": m["body"]["echo"]}
    if next(seen) == 1:
        threading.Timer(6.0, n.reply, (m, body)).start()
    else:
        n.reply(m, body)


run({"echo": echo})
