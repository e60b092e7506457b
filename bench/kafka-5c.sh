#!/bin/sh
# Challenge 5c in the project's harness, three times: prints each run's
# summary line, then the median servers msgs-per-op, availability and op
# latency quantiles (ms, from invoke to completion in history.jsonl, since
# the kafka results carry no latency figures of their own).  Not run by
# tests/run-all; run it from anywhere after building src/dsd.
#   bench/kafka-5c.sh [extra dsd flags, e.g. --replicate-interval=20]
cd "$(dirname "$0")/.." || exit 1
PY=/usr/bin/python3
RUNS=${RUNS:-3}
stores=
i=1
while [ "$i" -le "$RUNS" ]; do
	out=$($PY tests/maelstrom/run -w kafka --node-count 2 \
	    --concurrency 2n --time-limit 20 --rate 1000 \
	    -- src/dsd --mode=kafka "$@" 2>/dev/null | tail -n 1)
	echo "run $i: $out"
	store=$(echo "$out" | sed -n 's/.* store=\([^ ]*\).*/\1/p')
	[ -n "$store" ] && stores="$stores $store"
	i=$((i + 1))
done
[ -n "$stores" ] || { echo "no run produced results" >&2; exit 1; }
$PY - $stores <<'PYEOF'
import json, statistics, sys

def quantile(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")

rows = []
for store in sys.argv[1:]:
    res = json.load(open(store + "/results.json"))
    stats = res["stats"]
    lat = {}
    start = {}
    for line in open(store + "/history.jsonl"):
        e = json.loads(line)
        p = e.get("process")
        if p == "nemesis" or e.get("final"):
            continue
        if e["type"] == "invoke":
            start[p] = e["time"]
        elif p in start:
            lat.setdefault(e["f"], []).append(
                (e["time"] - start.pop(p)) / 1e6)
    rows.append({
        "valid": res.get("valid"),
        "mpo": res["net"]["servers"]["msgs-per-op"],
        "avail": stats["ok-count"] / stats["count"] if stats["count"] else 0,
        "ops": stats["count"],
        "lat": lat})

print("runs: %d, valid: %s" % (len(rows), [r["valid"] for r in rows]))
print("median msgs-per-op (servers): %.3f" %
      statistics.median(r["mpo"] for r in rows))
print("median availability: %.4f" %
      statistics.median(r["avail"] for r in rows))
print("median ops: %d" % statistics.median(r["ops"] for r in rows))
qs = (0.5, 0.95, 0.99, 1.0)
for f in ("send", "poll", "assign"):
    line = []
    for q in qs:
        line.append("%g=%.1f" % (q, statistics.median(
            quantile(r["lat"].get(f, []), q) for r in rows)))
    print("latency ms, %s (median of runs): %s" % (f, " ".join(line)))
allq = []
for q in qs:
    allq.append("%g=%.1f" % (q, statistics.median(
        quantile([x for v in r["lat"].values() for x in v], q)
        for r in rows)))
print("latency ms, all ops (median of runs): %s" % " ".join(allq))
PYEOF
