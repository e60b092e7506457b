#!/usr/bin/python3
"""Bad: the fifth echo reply claims to come from another node."""
import itertools
import json
import os
import sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _node import run  # noqa: E402

seen = itertools.count(1)


def echo(n, m):
    body = {"type": "echo_ok", "echo": m["body"]["echo"],
            "in_reply_to": m["body"]["msg_id"]}
    src = "n9" if next(seen) == 5 else n.id
    n.emit(json.dumps({"src": src, "dest": m["src"], "body": body}))


run({"echo": echo})
