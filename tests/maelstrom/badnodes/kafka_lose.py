#!/usr/bin/python3
"""A kafka node that loses acknowledged messages: on every 5th send it
drops the message before the new one from its log (so the newest offset of
a key is always there and the final polls finish).  Polls then go straight
from the offset before the lost one to the one after it: lost-write, unseen
and skips."""
import itertools
import os
import sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _node import run  # noqa: E402

logs = {}        # key -> {offset: msg}
next_offset = {}
committed = {}
sends = itertools.count(1)


def send(n, m):
    b = m["body"]
    k = b["key"]
    o = next_offset.get(k, 0)
    next_offset[k] = o + 1
    log = logs.setdefault(k, {})
    log[o] = b["msg"]
    if next(sends) % 5 == 0:
        log.pop(o - 1, None)
    n.reply(m, {"type": "send_ok", "offset": o})


def poll(n, m):
    msgs = {}
    for k, start in m["body"]["offsets"].items():
        log = logs.get(k, {})
        got = [[o, log[o]] for o in sorted(log) if o >= start]
        if got:
            msgs[k] = got
    n.reply(m, {"type": "poll_ok", "msgs": msgs})


def commit_offsets(n, m):
    for k, o in m["body"]["offsets"].items():
        committed[k] = max(committed.get(k, -1), o)
    n.reply(m, {"type": "commit_offsets_ok"})


def list_committed_offsets(n, m):
    n.reply(m, {"type": "list_committed_offsets_ok",
                "offsets": {k: committed[k] for k in m["body"]["keys"]
                            if k in committed}})


run({"send": send, "poll": poll, "commit_offsets": commit_offsets,
     "list_committed_offsets": list_committed_offsets})
