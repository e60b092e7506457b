#!/bin/sh
# Long runs of the cluster lab (tests/lab/lab.py): three minutes of each
# nemesis (partitions of halves, of the leader, a majority ring and a
# bridge on five nodes, kill -9 of the leader, of random nodes and of all,
# SIGSTOP of the leader, a follower removed and added back), each checked
# as in CI, then one line of figures per run: operations and their ok /
# fail / info counts, throughput, the write recovery after each fault's
# end (median and worst, through any node and through every node), the
# time to converge, and the checker's time.
#
#   bench/lab-soak.sh                    about 25 minutes on two cores
#   bench/lab-soak.sh --time-scale 0.3   a shorter soak
#   bench/lab-soak.sh --only kill        some runs
#   DSD=src/dsd-san bench/lab-soak.sh    the ASan+UBSan binary
# Must run as root (network namespaces); elsewhere every run is on
# loopback with proxies in between.
cd "$(dirname "$0")/.." || exit 1
exec /usr/bin/python3 tests/lab/lab.py suite --soak "$@"
