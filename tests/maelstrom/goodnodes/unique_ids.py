#!/usr/bin/python3
"""A correct unique-ids node: node id plus a local counter."""
import itertools
import os
import sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "badnodes"))
from _node import run  # noqa: E402

counter = itertools.count()
run({"generate": lambda n, m: n.reply(
    m, {"type": "generate_ok", "id": "%s-%d" % (n.id, next(counter))})})
