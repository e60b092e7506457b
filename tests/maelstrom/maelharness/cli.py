"""Command line, shaped like `maelstrom test` (exit 254 on bad options)."""

import argparse
import asyncio
import os
import random
import sys
import tempfile
import traceback

from . import perf
from .runner import EXIT_CRASH, Runner
from .workloads import WORKLOADS

EXIT_BAD_OPTS = 254

USAGE = ("run -w WORKLOAD [options] -- NODE-COMMAND [ARGS...]\n"
         "       run -w WORKLOAD [options] --bin BIN [-- ARGS...]")


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.print_usage(sys.stderr)
        print("%s: error: %s" % (self.prog, message), file=sys.stderr)
        sys.exit(EXIT_BAD_OPTS)


def _positive_int(text):
    v = int(text)
    if v < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return v


def _nonneg_float(text):
    v = float(text)
    if v < 0 or v != v:
        raise argparse.ArgumentTypeError("must be a number >= 0")
    return v


def _positive_float(text):
    v = float(text)
    if not v > 0:
        raise argparse.ArgumentTypeError("must be a number > 0")
    return v


def _concurrency(text):
    """An integer, or Nn meaning N per node (resolved later)."""
    t = text.strip()
    try:
        if t.endswith("n"):
            v = int(t[:-1] or "1")
            if v < 1:
                raise ValueError
            return ("per-node", v)
        v = int(t)
        if v < 1:
            raise ValueError
        return ("total", v)
    except ValueError:
        raise argparse.ArgumentTypeError("expected an integer or Nn, got %r"
                                         % text)


def _availability(text):
    if text == "total":
        return "total"
    try:
        v = float(text)
    except ValueError:
        v = -1
    if not 0 <= v <= 1:
        raise argparse.ArgumentTypeError("expected total or a fraction in "
                                         "[0,1], got %r" % text)
    return v


def _nemesis(text):
    parts = [p for p in text.replace(" ", "").split(",") if p]
    for p in parts:
        if p not in ("partition", "none"):
            raise argparse.ArgumentTypeError(
                "unsupported nemesis %r (only partition)" % p)
    return "partition" if "partition" in parts else "none"


def build_parser():
    p = _Parser(prog="run", usage=USAGE, allow_abbrev=False,
                description="Maelstrom-compatible test harness for dsd.")
    p.add_argument("-w", "--workload", required=True,
                   choices=sorted(WORKLOADS))
    p.add_argument("--bin", help="node binary (else the first word after --)")
    p.add_argument("--node-count", type=_positive_int, default=1)
    p.add_argument("--time-limit", type=_nonneg_float, default=10.0,
                   help="seconds of load (default 10)")
    p.add_argument("--rate", type=_positive_float, default=5.0,
                   help="total requests/s across the cluster (default 5)")
    p.add_argument("--concurrency", type=_concurrency, default=("per-node", 1),
                   help="number of clients, or Nn for N per node (default 1n)")
    p.add_argument("--latency", type=_nonneg_float, default=0.0,
                   help="node<->node and node<->service latency, ms")
    p.add_argument("--latency-dist", default="constant",
                   choices=["constant", "uniform", "exponential"])
    p.add_argument("--nemesis", type=_nemesis, default="none")
    p.add_argument("--nemesis-interval", type=_positive_float, default=10.0,
                   help="seconds between nemesis ops on average (default 10)")
    p.add_argument("--availability", type=_availability, default=None,
                   help="total, or the minimum fraction of ops that are ok")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--store", default=None,
                   help="directory for history and results (default: new "
                        "temp dir under /tmp)")
    p.add_argument("--log-stderr", action="store_true",
                   help="copy node stderr to ours as well as node-logs/")
    p.add_argument("--timeout", type=_positive_int, default=5000,
                   help="client request timeout, ms (default 5000)")
    perf.add_arguments(p)
    for w in WORKLOADS.values():
        w.add_arguments(p)
    return p


def parse(argv):
    """Return (opts, node command); exits 254 on bad options."""
    if "--" in argv:
        i = argv.index("--")
        ours, rest = argv[:i], argv[i + 1:]
    else:
        ours, rest = argv, []
    parser = build_parser()
    opts = parser.parse_args(ours)
    cmd = ([opts.bin] + rest) if opts.bin else rest
    if not cmd:
        parser.error("no node command: give it after -- (or use --bin)")
    if "/" in cmd[0]:
        # Maelstrom resolves --bin itself; nodes run with cwd /tmp.
        cmd[0] = os.path.abspath(cmd[0])
    kind, n = opts.concurrency
    opts.concurrency = n * opts.node_count if kind == "per-node" else n
    if opts.seed is None:
        opts.seed = random.SystemRandom().randrange(2 ** 31)
    return opts, cmd


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    opts, cmd = parse(argv)
    try:
        if opts.store:
            store = os.path.abspath(opts.store)
            os.makedirs(store, exist_ok=True)
        else:
            store = tempfile.mkdtemp(prefix="maelstrom-%s-" % opts.workload,
                                     dir="/tmp")
        print("store: %s (seed %d)" % (store, opts.seed), file=sys.stderr,
              flush=True)
        runner = Runner(opts, WORKLOADS[opts.workload], cmd, store)
        status = asyncio.run(runner.run())
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("interrupted; nodes killed", file=sys.stderr)
        return EXIT_CRASH
    except Exception:
        traceback.print_exc()
        print("harness error (see traceback above)", file=sys.stderr)
        return EXIT_CRASH
    print(runner.summary, flush=True)
    return status
