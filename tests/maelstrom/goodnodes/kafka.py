#!/usr/bin/python3
"""A correct single-node kafka node (challenge 5a): one in-memory log per
key with dense offsets from 0, and committed offsets per key."""
import os
import sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "badnodes"))
from _node import run  # noqa: E402

logs = {}        # key -> [msg, ...]; the offset is the index
committed = {}   # key -> highest committed offset


def send(n, m):
    b = m["body"]
    log = logs.setdefault(b["key"], [])
    log.append(b["msg"])
    n.reply(m, {"type": "send_ok", "offset": len(log) - 1})


def poll(n, m):
    msgs = {}
    for k, start in m["body"]["offsets"].items():
        log = logs.get(k, [])
        start = max(start, 0)
        if start < len(log):
            msgs[k] = [[i, log[i]] for i in range(start, len(log))]
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
