#!/usr/bin/python3
"""Answers topology with the wrong reply type: setup fails (exit 255)."""
import os
import sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _node import run  # noqa: E402

run({"topology": lambda n, m: n.reply(m, {"type": "topology_okay"}),
     "read": lambda n, m: n.reply(m, {"type": "read_ok", "messages": []})})
