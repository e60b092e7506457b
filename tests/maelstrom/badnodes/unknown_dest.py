#!/usr/bin/python3
"""Bad: gossips each id to n7, a node that does not exist."""
import itertools
import os
import sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _node import run  # noqa: E402

counter = itertools.count()


def generate(n, m):
    i = "%s-%d" % (n.id, next(counter))
    n.reply(m, {"type": "generate_ok", "id": i})
    n.send("n7", {"type": "gossip", "id": i})


run({"generate": generate})
