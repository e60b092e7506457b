"""A rotating pool of integer keys with unique written values per key.

Shared by kafka and txn-rw-register.  Modelled on the generator Elle uses
for both (key rotation, exponential key choice, writes numbered per key):

* key_count keys are active at any time, initially 0 .. key_count-1;
* keys are picked with an exponential distribution over the pool, with
  Elle's formula: position i is 2^i times as likely as position 0 (so the
  last position gets about half the picks);
* the values written to a key are 1, 2, 3, ... (unique per key); once a key
  has had max_writes values it is retired and replaced in the pool by a key
  never used before (one more than the largest active key).
"""

import math


def add_option_once(parser, name, **kw):
    """parser.add_argument(name, **kw) unless another workload already did
    (kafka and txn-rw-register share --key-count and --max-writes-per-key)."""
    if name not in parser._option_string_actions:
        parser.add_argument(name, **kw)


def positive_int(text):
    import argparse
    try:
        v = int(text)
    except ValueError:
        v = 0
    if v < 1:
        raise argparse.ArgumentTypeError("must be a positive integer, got %r"
                                         % text)
    return v


def add_pool_options(parser):
    add_option_once(parser, "--key-count", type=positive_int, default=10,
                    help="kafka, txn-rw-register: keys in active rotation "
                         "(default 10)")
    add_option_once(parser, "--max-writes-per-key", type=positive_int,
                    default=16,
                    help="kafka, txn-rw-register: writes per key before it "
                         "is retired (default 16)")


class KeyPool:
    BASE = 2.0

    def __init__(self, key_count, max_writes):
        self.active = list(range(key_count))
        self.max_writes = max_writes
        self.next_value = {}
        self.scale = ((self.BASE ** key_count - 1) * self.BASE
                      / (self.BASE - 1))

    def rand_key(self, rng):
        """An active key, exponentially distributed over the pool."""
        x = rng.random() * self.scale + self.BASE
        i = int(math.floor(math.log(x) / math.log(self.BASE) - 1))
        return self.active[min(max(i, 0), len(self.active) - 1)]

    def write(self, rng, key=None):
        """(key, value) for a new write: key picked at random unless given;
        a key that has used up its writes is replaced by a fresh one."""
        while True:
            k = self.rand_key(rng) if key is None else key
            v = self.next_value.get(k, 1)
            if v <= self.max_writes:
                self.next_value[k] = v + 1
                return k, v
            self.active[self.active.index(k)] = max(self.active) + 1
            key = None
