"""Tiny Maelstrom node skeleton shared by the test nodes (stdlib only).

A node script defines handlers {type: fn(node, msg)} and calls run(handlers).
node.reply(msg, body) answers; node.send(dest, body) sends anything;
node.rpc(dest, body, callback) sends a request and calls callback(reply body).
Writes are locked so timer threads can reply too.
"""
import json
import sys
import threading


class Node:
    def __init__(self):
        self.id = None
        self.node_ids = []
        self.next_msg_id = 0
        self.lock = threading.Lock()
        self.callbacks = {}

    def emit(self, line):
        with self.lock:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    def send(self, dest, body):
        self.emit(json.dumps({"src": self.id, "dest": dest, "body": body}))

    def reply(self, msg, body):
        body = dict(body)
        body["in_reply_to"] = msg["body"].get("msg_id")
        self.send(msg["src"], body)

    def rpc(self, dest, body, callback):
        with self.lock:
            self.next_msg_id += 1
            mid = self.next_msg_id
            self.callbacks[mid] = callback
        body = dict(body, msg_id=mid)
        self.send(dest, body)

    def log(self, text):
        sys.stderr.write(text + "\n")
        sys.stderr.flush()


def run(handlers):
    node = Node()
    for line in sys.stdin:
        msg = json.loads(line)
        body = msg["body"]
        t = body.get("type")
        if t == "init":
            node.id = body["node_id"]
            node.node_ids = body["node_ids"]
            node.reply(msg, {"type": "init_ok"})
            if "init" in handlers:
                handlers["init"](node, msg)
            continue
        cb = node.callbacks.pop(body.get("in_reply_to"), None)
        if cb is not None:
            cb(body)
            continue
        h = handlers.get(t)
        if h is not None:
            h(node, msg)
        else:
            node.reply(msg, {"type": "error", "code": 10,
                             "text": "unsupported: %s" % t})
