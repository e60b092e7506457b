#!/usr/bin/python3
"""Bad: prints a line that is not JSON on stdout after ten echoes."""
import itertools
import os
import sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _node import run  # noqa: E402

seen = itertools.count(1)


def echo(n, m):
    if next(seen) == 10:
        n.emit("echo handler: got request %s" % m["body"].get("msg_id"))
    n.reply(m, {"type": "echo_ok", "echo": m["body"]["echo"]})


run({"echo": echo})
