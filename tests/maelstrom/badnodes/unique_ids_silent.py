#!/usr/bin/python3
"""Bad: correct ids, but never answers some generates.

Argument: "all" never answers any; "some" (default) skips every 4th.
"""
import itertools
import os
import sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _node import run  # noqa: E402

mode = sys.argv[1] if len(sys.argv) > 1 else "some"
seen = itertools.count(1)


def generate(n, m):
    k = next(seen)
    if mode == "all" or k % 4 == 0:
        return
    n.reply(m, {"type": "generate_ok", "id": "%s-%d" % (n.id, k)})


run({"generate": generate})
