"""Simulated network: one heap-based scheduler, per-destination FIFO, partitions.

Every message in the network is an envelope dict {"id", "src", "dest", "body"}.
Endpoints register a delivery callback under their id and a kind:
"node" (n*), "service" (lin-kv, ...) or "client" (c*).

Rules (maelstrom.md section 4):
  * node<->node and node<->service messages get the configured latency;
    anything to or from a client gets none;
  * delivery to each destination is in send order: a message is due at
    max(now + latency, due time of the previous message to that destination);
  * a partition is a grudge {dest: set of srcs whose messages dest drops};
    it applies only between two nodes and is checked at delivery time.

One timer (loop.call_at) drives the heap, so there is no task per message.
"""

import heapq
import random

KIND_NODE = "node"
KIND_SERVICE = "service"
KIND_CLIENT = "client"

# Small slack when popping due messages: asyncio may fire a timer a hair
# early and we would rather deliver than re-arm for a few microseconds.
_EPSILON = 0.0002


class NetStats:
    """Send/receive counters per traffic class, as Maelstrom's :net checker."""

    __slots__ = ("send", "recv", "dropped")

    def __init__(self):
        self.send = {"clients": 0, "servers": 0}
        self.recv = {"clients": 0, "servers": 0}
        self.dropped = 0

    def summary(self, op_count):
        """Return the :net result block given the number of invoked ops."""
        def block(send, recv, with_per_op):
            d = {"send-count": send, "recv-count": recv, "msg-count": send}
            if with_per_op:
                d["msgs-per-op"] = (send / op_count) if op_count else 0.0
            return d
        s, r = self.send, self.recv
        return {
            "all": block(s["clients"] + s["servers"],
                         r["clients"] + r["servers"], True),
            "clients": block(s["clients"], r["clients"], False),
            "servers": block(s["servers"], r["servers"], True),
            "dropped-count": self.dropped,
        }


class Network:
    """Routes envelopes between registered endpoints with latency."""

    def __init__(self, loop, latency_ms=0.0, dist="constant", rng=None):
        self.loop = loop
        self.latency = max(0.0, float(latency_ms)) / 1000.0
        self.dist = dist
        self.rng = rng or random.Random()
        self.endpoints = {}          # id -> callable(envelope)
        self.kinds = {}              # id -> kind
        self.heap = []               # (due, seq, dest, envelope, is_client)
        self.seq = 0
        self.last_due = {}           # dest -> due time of its last queued msg
        self.pending = {}            # dest -> messages queued for it
        self.timer = None
        self.timer_at = None
        self.grudge = {}             # dest -> frozenset of srcs it drops
        self.next_msg_id = 0
        self.stats = NetStats()
        self.on_error = None         # callable(text) for delivery exceptions
        self.closed = False

    # -- endpoints -------------------------------------------------------

    def register(self, ident, kind, deliver):
        """Add endpoint ident of the given kind; deliver(envelope) receives."""
        self.endpoints[ident] = deliver
        self.kinds[ident] = kind

    def unregister(self, ident):
        """Remove ident; queued messages for it are dropped on delivery."""
        self.endpoints.pop(ident, None)
        self.kinds.pop(ident, None)

    def has(self, ident):
        return ident in self.endpoints

    def kind(self, ident):
        return self.kinds.get(ident)

    # -- partitions ------------------------------------------------------

    def set_grudge(self, grudge):
        """Install a partition: {dest: iterable of srcs to drop}."""
        self.grudge = {d: frozenset(s) for d, s in grudge.items() if s}

    def heal(self):
        self.grudge = {}

    # -- sending ---------------------------------------------------------

    def _sample_latency(self):
        lat = self.latency
        if lat <= 0.0:
            return 0.0
        if self.dist == "uniform":
            return self.rng.uniform(0.0, 2.0 * lat)
        if self.dist == "exponential":
            return self.rng.expovariate(1.0 / lat)
        return lat

    def send(self, src, dest, body):
        """Queue body from src to dest; the caller has checked dest exists."""
        if self.closed:
            return None
        self.next_msg_id += 1
        env = {"id": self.next_msg_id, "src": src, "dest": dest, "body": body}
        kinds = self.kinds
        is_client = (kinds.get(src) == KIND_CLIENT
                     or kinds.get(dest) == KIND_CLIENT)
        cls = "clients" if is_client else "servers"
        self.stats.send[cls] += 1
        now = self.loop.time()
        due = now if is_client else now + self._sample_latency()
        last = self.last_due.get(dest)
        if last is not None and last > due:
            due = last
        self.last_due[dest] = due
        if due <= now and not self.pending.get(dest):
            # Nothing ahead of it for this destination: deliver right now.
            self._deliver(dest, env, cls)
            return env
        self.seq += 1
        heapq.heappush(self.heap, (due, self.seq, dest, env, cls))
        self.pending[dest] = self.pending.get(dest, 0) + 1
        if self.timer_at is None or due < self.timer_at:
            self._arm(due)
        return env

    def _arm(self, when):
        if self.timer is not None:
            self.timer.cancel()
        self.timer_at = when
        self.timer = self.loop.call_at(when, self._fire)

    def _fire(self):
        self.timer = None
        self.timer_at = None
        heap = self.heap
        pending = self.pending
        limit = self.loop.time() + _EPSILON
        while heap and heap[0][0] <= limit:
            _, _, dest, env, cls = heapq.heappop(heap)
            pending[dest] -= 1
            if self.closed:
                continue
            self._deliver(dest, env, cls)
        if heap and not self.closed:
            self._arm(heap[0][0])

    def _deliver(self, dest, env, cls):
        deliver = self.endpoints.get(dest)
        if deliver is None:
            # A client closed while the message was in flight.
            self.stats.dropped += 1
            return
        src = env["src"]
        if self.grudge:
            cut = self.grudge.get(dest)
            if cut and src in cut:
                self.stats.dropped += 1
                return
        self.stats.recv[cls] += 1
        try:
            deliver(env)
        except Exception as exc:  # an endpoint bug must not stop the clock
            if self.on_error:
                self.on_error("delivery to %s failed: %r" % (dest, exc))

    def close(self):
        """Stop delivering; pending messages are discarded."""
        self.closed = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
            self.timer_at = None

    def in_flight(self):
        return len(self.heap)

