#!/usr/bin/python3
"""A stand-in for a kvdb-replicated cluster, for tests/kvdb/cli.sh.

It serves dsd.kvdb.v1.KV with kvdb's semantics from memory and, like
kvdb-replicated, remembers per client id (metadata dsd-client-id) the last
seq (dsd-seq) and its reply, answering a repeated seq with the first reply
(--no-dedup turns that off, to show that check then fails).  It can inject
faults into KV calls (--faults RATE): UNAVAILABLE before applying, UNKNOWN
after applying (a reply lost), and an answer later than the client's
deadline.  It serves a canned dsd.kvdb.v1.Admin.  Each --front PORT is a
TCP relay to the server, like another node of a cluster; SIGUSR1 kills the
first live one abruptly (its connections reset, its port closed), as
kill -9 does a node.

It checks what the clients send and writes the counts as JSON to --stats
when it is ready, on SIGUSR2 and on SIGTERM:
  calls, missing_md (a KV call without both items), bad_md (not decimal,
  or an id of 0), ids (distinct client ids), seq_gaps (a seq neither the
  last one again nor the next), stale (a seq below the last), overlap (a
  call for a client id while another seq of it was in progress), retries
  (a seq seen again), dedup_hits (answered from memory), injected_*,
  lost_unanswered (calls whose reply was lost, by UNKNOWN or lateness,
  and whose id and seq no retry has brought back), max_inflight, recent
  (the last 20 calls: method, id, seq), admin (calls per method and id).

Admin: MemberList answers three members (1 the leader); MemberAdd and
MemberRemove fail their first call for an id of 1001 with UNKNOWN and for
1014 with UNAVAILABLE; the first Status call fails with UNKNOWN.

usage: fake-kv.py --port PORT [--front PORT]... --stats FILE
                  [--faults RATE] [--no-dedup] [--seed N]
"""
import argparse
import collections
import concurrent.futures
import json
import os
import random
import selectors
import signal
import socket
import struct
import sys
import threading
import time

import grpc

import kvclient
from kvclient import f_bytes, parse

SUCCESS, ERROR, ERROR_NE, ERROR_WV = 0, 1, 2, 3


# -- protobuf by hand: kvclient's, with proto3's zeros left out -----------

def f_int(field, n):
    return kvclient.f_int(field, n) if n else b""


def f_str(field, s):
    return f_bytes(field, s.encode()) if s else b""


def reply(status, value=None):
    out = f_int(1, status)
    if value is not None:
        version, ts, data = value
        out += f_bytes(2, f_int(1, version) + f_int(2, ts) +
                       (f_bytes(3, data) if data else b""))
    return out


# -- the store and its sessions ----------------------------------------------

class Fake:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.lock = threading.Lock()
        self.store = {}
        self.sessions = {}          # id -> (seq, reply)
        self.id_locks = collections.defaultdict(threading.Lock)
        self.active = collections.defaultdict(list)   # id -> seqs in call
        self.inflight = 0
        self.admin_calls = collections.Counter()
        self.status_calls = 0
        self.s = collections.Counter()
        self.s["max_inflight"] = 0
        self.ids = set()
        self.lost = set()           # (id, seq) whose reply was lost
        self.recent = collections.deque(maxlen=20)

    def stats(self):
        with self.lock:
            d = dict(self.s)
            d["ids"] = len(self.ids)
            d["lost_unanswered"] = len(self.lost)
            d["recent"] = list(self.recent)
            d["admin"] = dict(self.admin_calls)
            return d

    def apply(self, method, req):
        m = parse(req)
        key = int.from_bytes(m.get(1, b""), "big", signed=True)
        cur = self.store.get(key)
        if method == "Get":
            return reply(SUCCESS, cur) if cur else reply(ERROR)
        if method == "Set":
            if cur:
                return reply(ERROR, cur)
            self.store[key] = (1, m.get(2, 0), m.get(3, b""))
            return reply(SUCCESS)
        if method == "Del":
            if not cur:
                return reply(ERROR)
            del self.store[key]
            return reply(SUCCESS, cur)
        if method == "DelVersion":
            if not cur:
                return reply(ERROR_NE)
            if cur[0] != m.get(2, 0):
                return reply(ERROR_WV, cur)
            del self.store[key]
            return reply(SUCCESS, cur)
        if method == "TestAndSet":
            if not cur:
                return reply(ERROR_NE)
            if cur[0] != m.get(4, 0):
                return reply(ERROR_WV, cur)
            self.store[key] = (cur[0] + 1, m.get(2, 0), m.get(3, b""))
            return reply(SUCCESS, cur)
        raise ValueError(method)

    def kv(self, method):
        def handler(req, context):
            md = dict(context.invocation_metadata())
            cid, seq = md.get("dsd-client-id"), md.get("dsd-seq")
            with self.lock:
                self.s["calls"] += 1
                self.inflight += 1
                self.s["max_inflight"] = max(self.s["max_inflight"],
                                             self.inflight)
                if cid is None or seq is None:
                    self.s["missing_md"] += 1
                    cid = seq = None
                elif not (cid.isdigit() and seq.isdigit()) or \
                        int(cid) == 0 or int(cid) >= 1 << 64 or \
                        int(seq) == 0:
                    self.s["bad_md"] += 1
                    cid = seq = None
                else:
                    cid, seq = int(cid), int(seq)
                    self.ids.add(cid)
                    if any(s != seq for s in self.active[cid]):
                        self.s["overlap"] += 1
                    self.active[cid].append(seq)
                self.recent.append([method, cid, seq])
                fault = self.rng.random()
            try:
                return self.serve(method, req, context, cid, seq, fault)
            finally:
                with self.lock:
                    self.inflight -= 1
                    if cid is not None:
                        self.active[cid].remove(seq)
        return handler

    def serve(self, method, req, context, cid, seq, fault):
        rate = self.args.faults
        if fault < rate / 3:
            with self.lock:
                self.s["injected_unavailable"] += 1
            context.abort(grpc.StatusCode.UNAVAILABLE,
                          "injected: not applied")
        # One lock per client id: a retry that arrives while its first
        # attempt is still being served waits for it, and gets its reply.
        lock = self.id_locks[cid] if cid is not None else threading.Lock()
        with lock:
            with self.lock:
                last = self.sessions.get(cid) if cid is not None else None
                if last is not None:
                    if seq == last[0]:
                        self.s["retries"] += 1
                    elif seq < last[0]:
                        self.s["stale"] += 1
                    elif seq != last[0] + 1:
                        self.s["seq_gaps"] += 1
                elif cid is not None and seq != 1:
                    self.s["seq_gaps"] += 1
                if last is not None and seq == last[0] and \
                        not self.args.no_dedup:
                    self.s["dedup_hits"] += 1
                    self.lost.discard((cid, seq))
                    return last[1]
                out = self.apply(method, req)
                if cid is not None:
                    self.sessions[cid] = (seq, out)
            if fault < rate and cid is not None:
                with self.lock:
                    self.lost.add((cid, seq))
            if fault < 2 * rate / 3:
                with self.lock:
                    self.s["injected_unknown"] += 1
                context.abort(grpc.StatusCode.UNKNOWN,
                              "injected: applied, reply lost")
            if fault < rate:
                with self.lock:
                    self.s["injected_late"] += 1
                time.sleep(self.args.late)
            return out

    # -- Admin ---------------------------------------------------------------

    MEMBERS = [(1, "127.0.0.1:9001", "127.0.0.1:7001", 0),
               (2, "127.0.0.1:9002", "127.0.0.1:7002", 1),
               (3, "", "", 2)]

    def members(self, extra=None, without=None):
        out = b""
        for mid, raft, client, role in self.MEMBERS + (extra or []):
            if mid != without:
                out += f_bytes(1, f_int(1, mid) + f_str(2, raft) +
                               f_str(3, client) + f_int(4, role))
        return out + f_int(2, 1)

    def admin_first_fails(self, method, mid, context):
        with self.lock:
            key = "%s %d" % (method, mid)
            self.admin_calls[key] += 1
            first = self.admin_calls[key] == 1
        if first and mid == 1001:
            context.abort(grpc.StatusCode.UNKNOWN, "injected: maybe applied")
        if first and mid == 1014:
            context.abort(grpc.StatusCode.UNAVAILABLE,
                          "injected: not applied")

    def member_list(self, req, context):
        with self.lock:
            self.admin_calls["MemberList"] += 1
        return self.members()

    def member_add(self, req, context):
        m = parse(req)
        self.admin_first_fails("MemberAdd", m.get(1, 0), context)
        return self.members(extra=[(m.get(1, 0), m.get(2, b"").decode(),
                                    m.get(3, b"").decode(), 0)])

    def member_remove(self, req, context):
        m = parse(req)
        self.admin_first_fails("MemberRemove", m.get(1, 0), context)
        return self.members(without=m.get(1, 0))

    def status(self, req, context):
        with self.lock:
            self.admin_calls["Status"] += 1
            self.status_calls += 1
            first = self.status_calls == 1
            keys = len(self.store)
            sessions = len(self.sessions)
        if first:
            context.abort(grpc.StatusCode.UNKNOWN, "injected: first status")
        digest = parse(req).get(1, 0)
        return (f_int(1, 2) + f_str(2, "follower") + f_int(3, 1) +
                f_int(4, 7) + f_int(5, 120) + f_int(6, 119) + f_int(7, 121) +
                f_int(8, keys) + f_int(9, sessions) +
                (f_int(10, 1) + f_int(11, 0xdeadbeef) if digest else b"") +
                f_str(12, "127.0.0.1:9002") + f_str(13, "127.0.0.1:7002"))


# -- fronts: TCP relays that can die like a killed node ----------------------

class Fronts(threading.Thread):
    def __init__(self, ports, backend):
        super().__init__(daemon=True)
        self.backend = backend
        self.sel = selectors.DefaultSelector()
        self.listeners = []
        for p in ports:
            ls = socket.socket()
            ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            ls.bind(("127.0.0.1", p))
            ls.listen(64)
            ls.setblocking(False)
            self.sel.register(ls, selectors.EVENT_READ, ("listen", len(
                self.listeners)))
            self.listeners.append(ls)
        self.pairs = []             # [front index, client, server]
        self.wake_r, self.wake_w = os.pipe()
        self.sel.register(self.wake_r, selectors.EVENT_READ, ("wake", None))

    def kill_next(self):
        os.write(self.wake_w, b"k")

    def close_pair(self, pair, reset):
        for s in pair[1:]:
            try:
                self.sel.unregister(s)
            except (KeyError, ValueError):
                pass
            if reset:
                # Linger 0: close sends RST, as the kernel does for the
                # sockets of a killed process with data unread.
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                             struct.pack("ii", 1, 0))
            s.close()
        if pair in self.pairs:
            self.pairs.remove(pair)

    def kill(self):
        for i, ls in enumerate(self.listeners):
            if ls is None:
                continue
            self.sel.unregister(ls)
            ls.close()
            self.listeners[i] = None
            for pair in [p for p in self.pairs if p[0] == i]:
                self.close_pair(pair, True)
            return

    def run(self):
        while True:
            for key, _ in self.sel.select():
                kind, arg = key.data
                if kind == "wake":
                    os.read(self.wake_r, 64)
                    self.kill()
                elif kind == "listen":
                    c, _ = key.fileobj.accept()
                    b = socket.create_connection(("127.0.0.1", self.backend))
                    for s in (c, b):
                        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY,
                                     1)
                    pair = [arg, c, b]
                    self.pairs.append(pair)
                    self.sel.register(c, selectors.EVENT_READ, ("c", pair))
                    self.sel.register(b, selectors.EVENT_READ, ("b", pair))
                else:
                    pair = arg
                    src, dst = (pair[1], pair[2]) if kind == "c" else \
                        (pair[2], pair[1])
                    try:
                        data = src.recv(65536)
                        if data:
                            dst.sendall(data)
                            continue
                    except OSError:
                        pass
                    self.close_pair(pair, False)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--front", type=int, action="append", default=[])
    ap.add_argument("--stats", required=True)
    ap.add_argument("--faults", type=float, default=0.0)
    ap.add_argument("--late", type=float, default=0.6)
    ap.add_argument("--no-dedup", action="store_true")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    fake = Fake(args)

    server = grpc.server(
        concurrent.futures.ThreadPoolExecutor(max_workers=64),
        options=[("grpc.max_receive_message_length", 8 << 20)])
    rpc = grpc.unary_unary_rpc_method_handler
    server.add_generic_rpc_handlers((
        grpc.method_handlers_generic_handler("dsd.kvdb.v1.KV", {
            m: rpc(fake.kv(m)) for m in
            ("Set", "Get", "Del", "DelVersion", "TestAndSet")}),
        grpc.method_handlers_generic_handler("dsd.kvdb.v1.Admin", {
            "MemberList": rpc(fake.member_list),
            "MemberAdd": rpc(fake.member_add),
            "MemberRemove": rpc(fake.member_remove),
            "Status": rpc(fake.status)}),
    ))
    if server.add_insecure_port("127.0.0.1:%d" % args.port) == 0:
        sys.exit("fake-kv: cannot listen on %d" % args.port)
    server.start()
    fronts = Fronts(args.front, args.port)
    fronts.start()

    def dump():
        tmp = args.stats + ".tmp"
        with open(tmp, "w") as f:
            json.dump(fake.stats(), f)
        os.rename(tmp, args.stats)

    done = threading.Event()
    signal.signal(signal.SIGUSR1, lambda *a: fronts.kill_next())
    signal.signal(signal.SIGUSR2, lambda *a: dump())
    signal.signal(signal.SIGTERM, lambda *a: done.set())
    dump()
    while not done.wait(0.2):
        pass
    dump()
    server.stop(None)


if __name__ == "__main__":
    main()
