#!/usr/bin/python3
"""Bad: answers every request with a definite error (11)."""
import os
import sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _node import run  # noqa: E402

err = {"type": "error", "code": 11, "text": "temporarily unavailable"}
run({"echo": lambda n, m: n.reply(m, err),
     "generate": lambda n, m: n.reply(m, err)})
