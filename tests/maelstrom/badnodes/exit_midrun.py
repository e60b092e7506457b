#!/usr/bin/python3
"""Bad: node n1 exits with status 3 one second after init."""
import threading
import os
import sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _node import run  # noqa: E402


def init(n, m):
    if n.id == "n1":
        threading.Timer(1.0, os._exit, (3,)).start()


run({"init": init,
     "echo": lambda n, m: n.reply(m, {"type": "echo_ok",
                                      "echo": m["body"]["echo"]})})
