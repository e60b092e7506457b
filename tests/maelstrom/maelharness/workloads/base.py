"""The interface every workload module implements.

To add a workload, write workloads/<name>.py with a subclass of Workload and
list it in workloads/__init__.py.  The runner calls, in this order:

  Workload.add_arguments(parser)   class method: extra CLI options, if any
                                   (called for every workload, so names must
                                   not clash; use defaults)
  w = Workload(opts)               opts is the argparse namespace
  w.setup_requests(node_ids, rng)  -> [(node_id, body)] sent once, before the
                                   generator, each from its own setup client
                                   (broadcast's topology); replies must not be
                                   errors, else the run fails with "setup-failed"
  w.gen_op(rng, client)            -> Request(f, value, body) or None (nothing
                                   to do now); body is the request without
                                   msg_id; value is recorded on the invoke
  await w.perform(req, client, timeout)
                                   -> carries out one op: by default sends
                                   req.body and returns the reply body (None
                                   on timeout).  Override for ops made of
                                   several requests or none (kafka's poll +
                                   commit_offsets, :crash); return an
                                   Outcome(type, value, error) to set the
                                   completion directly (complete is skipped)
  w.complete(op, reply, client)    -> value recorded on the ok completion;
                                   raise UnexpectedReply(text) for a reply the
                                   client cannot understand (op becomes info)
                                   op is the invoke event (dict, see checkers)
  w.final_ops(client)              -> [Request, ...] each client performs in
                                   order after the heal and 10 s wait (only
                                   if has_final_phase); events get final=true;
                                   may be a generator, advanced after each op
                                   completes; a number in the sequence is a
                                   pause of that many seconds
  w.check(history, test)           -> dict with "valid" (True/False/"unknown")
                                   and "reason" when not valid; test is a dict
                                   of the run's options
  w.summary(result)                -> extra "k=v ..." text for the one-line
                                   summary, from check's result ("" default)

Class attributes:
  name                       the -w name
  has_final_phase            heal, wait 10 s, final_ops (broadcast, g-counter,
                             kafka)
  closes_clients_on_timeout  on an info completion the client id is closed and
                             a new client takes its place (echo, broadcast,
                             g-counter, kafka); otherwise it is reused
                             (unique-ids, lin-kv, txn-rw-register)
  idempotent                 set of f whose errors are always fail
  stats_exempt               set of f the stats checker ignores (kafka crash)

client has .id, .node (the node it is bound to) and .state, a dict for the
workload's per-client bookkeeping; a replacement client starts with {}.
"""

from collections import namedtuple

Request = namedtuple("Request", "f value body")

# A completion decided by Workload.perform: type "ok" | "fail" | "info",
# the value to record, and the error (None for none).
Outcome = namedtuple("Outcome", "type value error")


class UnexpectedReply(Exception):
    """The reply is not an error but not what the request expects either."""


class Workload:
    name = None
    has_final_phase = False
    closes_clients_on_timeout = True
    idempotent = frozenset()
    stats_exempt = frozenset()

    @classmethod
    def add_arguments(cls, parser):
        pass

    def __init__(self, opts):
        self.opts = opts

    def request_timeout(self):
        """Client request timeout in seconds."""
        return self.opts.timeout / 1000.0

    def setup_requests(self, node_ids, rng):
        return []

    async def perform(self, req, client, timeout):
        return await client.call(dict(req.body), timeout)

    def gen_op(self, rng, client):
        raise NotImplementedError

    def complete(self, op, reply, client):
        raise NotImplementedError

    def final_ops(self, client):
        return []

    def check(self, history, test):
        raise NotImplementedError

    def summary(self, result):
        return ""


def expect_type(reply, t):
    """Raise UnexpectedReply unless reply's type is t."""
    if reply.get("type") != t:
        raise UnexpectedReply("expected %s, got %r" % (t, reply.get("type")))
