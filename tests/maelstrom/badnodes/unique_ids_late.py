#!/usr/bin/python3
"""Correct ids, but the first generate is answered 1.5 s late.

unique-ids clients are reused after a timeout, so the late reply is only
ignored: the run must stay valid (with one info op).
"""
import itertools
import threading
import os
import sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _node import run  # noqa: E402

counter = itertools.count()


def generate(n, m):
    k = next(counter)
    body = {"type": "generate_ok", "id": "%s-%d" % (n.id, k)}
    if k == 0:
        threading.Timer(1.5, n.reply, (m, body)).start()
    else:
        n.reply(m, body)


run({"generate": generate})
