#!/bin/sh
# Challenge 3d/3e figures for dsd's broadcast mode, measured in the
# project's harness: 25 nodes, 100 ms latency, 100 ops/s, 20 s, for the
# default configuration and the low-latency one, each run RUNS times
# (default 5).  Prints every run and the median of each figure.  Not a
# test: it asserts nothing, it reports.
#
# usage: bench/broadcast.sh [RUNS] [extra harness options, e.g. --nemesis partition]
cd "$(dirname "$0")/.." || exit 1
RUNS=${1:-5}
[ $# -gt 0 ] && shift
PY=/usr/bin/python3
[ -x src/dsd ] || { echo "build first: tools/setup" >&2; exit 1; }

measure() {
	label=$1
	shift
	out=$(mktemp)
	i=0
	while [ "$i" -lt "$RUNS" ]; do
		i=$((i + 1))
		store=$(mktemp -d /tmp/dsd-bench-bc.XXXXXX)
		$PY tests/maelstrom/run -w broadcast --node-count 25 \
		    --time-limit 20 --rate 100 --latency 100 --store "$store" \
		    "$@" >/dev/null 2>&1
		$PY - "$store/results.json" <<'PYEOF' | tee -a "$out"
import json, sys
r = json.load(open(sys.argv[1]))
w, n = r["workload"], r["net"]
q = w.get("stable-latencies", {})
print("valid=%s servers=%.2f all=%.2f p50=%s p95=%s p99=%s max=%s lost=%s"
      % (r["valid"], n["servers"]["msgs-per-op"], n["all"]["msgs-per-op"],
         q.get("0.5"), q.get("0.95"), q.get("0.99"), q.get("1"),
         w.get("lost-count")))
PYEOF
		rm -rf "$store"
	done
	$PY - "$label" "$out" <<'PYEOF'
import re, statistics, sys
rows = [dict(kv.split("=") for kv in l.split()) for l in open(sys.argv[2])]
def med(k):
    return statistics.median(float(r[k]) for r in rows if r[k] != "None")
print("%s: median of %d runs: msgs-per-op servers %.2f, all %.2f; "
      "stable latency p50 %.0f ms, p95 %.0f, p99 %.0f, max %.0f; "
      "valid in %d/%d runs" % (sys.argv[1], len(rows), med("servers"),
      med("all"), med("p50"), med("p95"), med("p99"), med("max"),
      sum(r["valid"] == "True" for r in rows), len(rows)))
PYEOF
	rm -f "$out"
}

echo "== default configuration"
measure "default" "$@" -- src/dsd --mode=broadcast
echo "== low-latency configuration (--batch-clock=fixed --batch-interval=105)"
measure "low-latency" "$@" -- src/dsd --mode=broadcast --batch-clock=fixed --batch-interval=105
