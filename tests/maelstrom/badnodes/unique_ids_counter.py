#!/usr/bin/python3
"""Bad: a per-node counter without the node id, so nodes collide."""
import itertools
import os
import sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _node import run  # noqa: E402

counter = itertools.count()
run({"generate": lambda n, m: n.reply(
    m, {"type": "generate_ok", "id": next(counter)})})
