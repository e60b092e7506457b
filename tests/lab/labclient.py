"""The kvdb and Admin protobufs by hand, and a small gRPC client for the lab.

The messages are a few fields wide (src/kv/kvdb.proto, src/kv/admin.proto),
so they are encoded by hand with the helpers of tests/kvdb/kvclient.py,
over grpcio's raw unary_unary calls; nothing but Debian's python3-grpcio is
needed.
"""

import os
import sys

import grpc

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "kvdb"))
from kvclient import f_bytes, f_int, key_bytes, parse  # noqa: E402

STATUSES = ("SUCCESS", "ERROR", "ERROR_NE", "ERROR_WV")

# The UNAVAILABLE answers dsd itself gives (modes/kvdb-replicated.c): each
# says the write was certainly not applied.  An UNAVAILABLE with another
# message comes from the client library (a connection cut, perhaps after
# the request was sent) and proves nothing.
SERVER_UNAVAILABLE = (
    "no leader could be reached in time",
    "not the leader",
    "the server is stopping",
    "server stopped",
)
# The client library's words for a call that never left: no connection.
NOT_SENT = (
    "failed to connect to all addresses",
    "DNS resolution failed",
)


def f_bool(field, b):
    return f_int(field, 1) if b else b""


def decode_reply(raw):
    """A KV Reply as the history's result: {"status", "value"}."""
    m = parse(raw)
    st = m.get(1, 0)
    value = None
    if 2 in m:
        v = parse(m[2])
        value = {"version": v.get(1, 0), "timestamp": v.get(2, 0),
                 "data": v.get(3, b"").decode("ascii", "replace")}
    return {"status": STATUSES[st] if 0 <= st < 4 else "?%d" % st,
            "value": value}


def encode_request(f, key, arg):
    """The request message of operation f on integer key with history arg."""
    kb = f_bytes(1, key_bytes(key))
    if f in ("get", "del"):
        return kb
    if f == "set":
        return kb + f_int(2, arg["timestamp"]) + f_bytes(
            3, arg["data"].encode())
    if f == "delversion":
        return kb + f_int(2, arg["version"])
    if f == "testandset":
        return kb + f_int(2, arg["timestamp"]) + f_bytes(
            3, arg["data"].encode()) + f_int(4, arg["version"])
    raise ValueError(f)


METHODS = {"set": "Set", "get": "Get", "del": "Del",
           "delversion": "DelVersion", "testandset": "TestAndSet"}


def classify_error(e):
    """An RpcError as the history's outcome: "fail" (certainly not applied)
    or "info" (unknown), with a short reason."""
    code = e.code() if hasattr(e, "code") else None
    details = (e.details() if hasattr(e, "details") else "") or ""
    name = code.name if code is not None else "?"
    if code == grpc.StatusCode.UNAVAILABLE:
        if any(details.startswith(s) for s in SERVER_UNAVAILABLE):
            return "fail", name, details
        if any(s in details for s in NOT_SENT):
            return "fail", name, details
        return "info", name, details
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return "fail", name, details
    return "info", name, details


class Node:
    """One gRPC channel to one node: KV calls, Admin/Status, health."""

    def __init__(self, addr):
        self.addr = addr
        # No retries by the library: one call is one attempt, as the
        # history says.  Reconnect soon after a node comes back: with the
        # defaults, grpcio 1.51 waits 5 s after a refused connection
        # (re-resolution and backoff), which would count against the
        # cluster in the recovery figures (both settings are needed).
        self.ch = grpc.insecure_channel(addr, options=[
            ("grpc.enable_retries", 0),
            ("grpc.dns_min_time_between_resolutions_ms", 100),
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.min_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 500),
        ])
        self._m = {}

    def _method(self, path):
        m = self._m.get(path)
        if m is None:
            m = self._m[path] = self.ch.unary_unary(
                path, request_serializer=None, response_deserializer=None)
        return m

    def kv(self, f, key, arg, timeout, metadata=None):
        """One KV call; returns the result dict or raises grpc.RpcError."""
        raw = self._method("/dsd.kvdb.v1.KV/" + METHODS[f])(
            encode_request(f, key, arg), timeout=timeout, metadata=metadata)
        return decode_reply(raw)

    def status(self, digest=False, timeout=2.0):
        m = parse(self._method("/dsd.kvdb.v1.Admin/Status")(
            f_bool(1, digest), timeout=timeout))
        s = m.get(2, b"")
        return {
            "id": m.get(1, 0),
            "state": s.decode() if isinstance(s, bytes) else str(s),
            "leader_id": m.get(3, 0), "term": m.get(4, 0),
            "commit_index": m.get(5, 0), "applied_index": m.get(6, 0),
            "last_index": m.get(7, 0), "keys": m.get(8, 0),
            "sessions": m.get(9, 0), "has_digest": bool(m.get(10, 0)),
            "digest": m.get(11, 0) & ((1 << 64) - 1),
        }

    def health(self, timeout=2.0):
        """True if grpc.health.v1.Health/Check says SERVING."""
        m = parse(self._method("/grpc.health.v1.Health/Check")(
            b"", timeout=timeout))
        return m.get(1) == 1

    def close(self):
        self.ch.close()
