#!/bin/sh
# The cluster lab's runs for tests/run-all: kvdb-replicated clusters of 3
# and 5 nodes, each node in its own network namespace (on loopback behind
# proxies where ip netns is refused), under partitions, kill -9 and
# SIGSTOP, with Jepsen-style clients; each run's checks print ok / not ok,
# and the last line is "N passed, M failed".  About five minutes on two
# cores.  Exit 77 (with a SKIP: line) when no network mode can run here.
#
#   tests/lab/run.sh                     every CI run
#   tests/lab/run.sh --quick             two short runs (for src/dsd-san)
#   tests/lab/run.sh --only kill         the runs whose name has "kill"
#   DSD=src/dsd-san tests/lab/run.sh     another binary
#   LAB_NO_NETNS=1 tests/lab/run.sh     as where ip netns is refused
#   tests/lab/lab.py run --help          one run, every knob
cd "$(dirname "$0")/../.." || exit 1
exec /usr/bin/python3 tests/lab/lab.py suite "$@"
