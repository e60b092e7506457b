#!/usr/bin/python3
"""A correct echo node."""
import os
import sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "badnodes"))
from _node import run  # noqa: E402

run({"echo": lambda n, m: n.reply(m, {"type": "echo_ok",
                                      "echo": m["body"]["echo"]})})
