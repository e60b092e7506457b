"""txn-rw-register (section 5.6, challenges 6a-6c): transactions of reads
and writes over integer keys.

Generator as Elle's rw-register (via keypool.py): 1..--max-txn-length
micro-ops, each a read or a write with equal odds, over a rotating pool of
--key-count keys; values written to a key are 1, 2, ... up to
--max-writes-per-key, so unique per key.  Clients are reused after
timeouts.  An abort (error 30, or any definite error) makes the txn fail.

History values: the txn as micro-ops [[f, k, v], ...]; invoke holds the
request (reads null), ok holds the reply (reads filled in).  A reply whose
micro-ops do not match the request (different length, f, key, or a changed
write) is not understood: the op becomes info.

--consistency-models takes exactly one model, read-uncommitted or
read-committed (Maelstrom splits the option on "\\s+,\\s+", so "a,b" is one
unknown model); default read-committed, the strongest one this checker
knows.  The checker is in txn_check.py.
"""

import argparse

from ..services import canon
from .base import Request, UnexpectedReply, Workload, expect_type
from .keypool import KeyPool, add_pool_options, positive_int
from .txn_check import MODELS, check_txn


def _model(text):
    if text not in MODELS:
        raise argparse.ArgumentTypeError(
            "give one consistency model, one of %s (got %r)"
            % (", ".join(sorted(MODELS)), text))
    return text


class TxnRwRegister(Workload):
    name = "txn-rw-register"
    has_final_phase = False
    closes_clients_on_timeout = False

    @classmethod
    def add_arguments(cls, parser):
        add_pool_options(parser)
        parser.add_argument("--max-txn-length", type=positive_int, default=4,
                            help="txn-rw-register: micro-ops per txn, at "
                                 "most (default 4)")
        parser.add_argument("--consistency-models", type=_model,
                            default="read-committed",
                            help="txn-rw-register: read-uncommitted or "
                                 "read-committed (one model; default "
                                 "read-committed)")

    def __init__(self, opts):
        super().__init__(opts)
        self.pool = KeyPool(opts.key_count, opts.max_writes_per_key)

    def gen_op(self, rng, client):
        txn = []
        for _ in range(rng.randint(1, self.opts.max_txn_length)):
            if rng.random() < 0.5:
                txn.append(["r", self.pool.rand_key(rng), None])
            else:
                k, v = self.pool.write(rng)
                txn.append(["w", k, v])
        return Request("txn", txn, {"type": "txn",
                                    "txn": [list(m) for m in txn]})

    def complete(self, op, reply, client):
        expect_type(reply, "txn_ok")
        sent = op["value"]
        got = reply.get("txn")
        if not isinstance(got, list) or len(got) != len(sent):
            raise UnexpectedReply("txn_ok txn is not %d micro-ops: %s"
                                  % (len(sent), canon(got)[:80]))
        out = []
        for i, (want, m) in enumerate(zip(sent, got)):
            if not (isinstance(m, list) and len(m) == 3 and m[0] == want[0]
                    and canon(m[1]) == canon(want[1])):
                raise UnexpectedReply("micro-op %d is %s, expected %s" % (
                    i, canon(m)[:60], canon([want[0], want[1], "..."])))
            if m[0] == "w" and canon(m[2]) != canon(want[2]):
                raise UnexpectedReply("micro-op %d changed the write to %s"
                                      % (i, canon(m)[:60]))
            out.append([m[0], m[1], m[2]])
        return out

    def check(self, history, test):
        return check_txn(history, self.opts.consistency_models)
