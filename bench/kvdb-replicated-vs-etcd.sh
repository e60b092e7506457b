#!/bin/sh
# dsd's kvdb-replicated against etcd, both as three-member clusters on this
# machine's loopback, side by side, driven by one load generator
# (tools/dsd-bench speaks both APIs, and spreads its connections over the
# three members of either), with the same durability: an fsync on a
# majority before a write is acknowledged.  Every load gets fresh
# clusters.  Also measured in the same run: the single-node kvdb's 1 x 1
# Set (the replicated one's target is within 1.5x of it), fail-over after
# kill -9 of the leader (bench/failover.py, the same measure for both),
# memory per key on each replica against the single-node kvdb, and the
# longest loop pause of a kvdb-replicated snapshot, from its own log.
# Prints each figure, then a table with ratios and the issue's targets.
# Not a test: it asserts nothing, it reports.
#
# Needs etcd 3.4, which this script does not install:
#	apt-get install etcd-server etcd-client
#
# usage: bench/kvdb-replicated-vs-etcd.sh [SECONDS per run, default 10]
# BENCH_DIR: where the data directories go (default under /var/tmp, on
# disk where /tmp may be memory).  FAILOVER_TRIALS: default 10.
# MEMORY_KEYS: keys loaded for the memory figure (default 1000000).
cd "$(dirname "$0")/.." || exit 1
. tests/lib.sh
. bench/lib.sh
SECS=${1:-10}
PY=/usr/bin/python3
PREFILL=100000
TRIALS=${FAILOVER_TRIALS:-10}
MEMKEYS=${MEMORY_KEYS:-1000000}

[ -n "$ETCD" ] && command -v etcdctl >/dev/null || {
	echo "etcd not found: apt-get install etcd-server etcd-client" >&2
	exit 1
}
DIR=${BENCH_DIR:-$(mktemp -d /var/tmp/dsd-repl-vs-etcd.XXXXXX)} || exit 1
mkdir -p "$DIR"
OUT=$DIR/results
: >"$OUT"
PIDS=

stop() {
	for p in $PIDS; do
		kill "$p" 2>/dev/null
	done
	for p in $PIDS; do
		wait "$p" 2>/dev/null
	done
	PIDS=
}
trap 'stop; [ -z "$BENCH_DIR" ] && rm -rf "$DIR"' EXIT
trap 'exit 1' INT TERM

# start KIND [ARGS...]: fresh servers of that kind, their data in $DIR:
# "repl" (three kvdb-replicated nodes, ARGS added to each), "etcd" (three
# members), "kvdb" (one node).  Sets ADDRS (client addresses, comma
# separated), FIRST (one of them) and PIDS.
start() {
	kind=$1
	shift
	rm -rf "$DIR/data"
	mkdir -p "$DIR/data"
	ADDRS=
	case $kind in
	kvdb)
		ADDRS=127.0.0.1:$(free_port)
		"$DSD" --mode=kvdb --listen "$ADDRS" --data-dir "$DIR/data/k" \
		    --fsync=always 2>"$DIR/data/k.log" &
		PIDS=$!
		;;
	repl)
		spec=
		for i in 1 2 3; do
			eval "c$i=127.0.0.1:$(free_port)"
			eval "r$i=127.0.0.1:$(free_port)"
			eval "spec=\${spec:+\$spec,}$i=\$r$i/\$c$i"
			eval "ADDRS=\${ADDRS:+\$ADDRS,}\$c$i"
		done
		for i in 1 2 3; do
			"$DSD" --mode=kvdb-replicated --node-id=$i \
			    --cluster="$spec" --data-dir "$DIR/data/n$i" -v "$@" \
			    2>"$DIR/data/n$i.log" &
			PIDS="$PIDS $!"
		done
		;;
	etcd)
		init=
		for i in 1 2 3; do
			eval "c$i=127.0.0.1:$(free_port)"
			eval "p$i=127.0.0.1:$(free_port)"
			eval "init=\${init:+\$init,}m$i=http://\$p$i"
			eval "ADDRS=\${ADDRS:+\$ADDRS,}\$c$i"
		done
		for i in 1 2 3; do
			eval "c=\$c$i p=\$p$i"
			"$ETCD" --name "m$i" --data-dir "$DIR/data/m$i" \
			    --listen-client-urls "http://$c" \
			    --advertise-client-urls "http://$c" \
			    --listen-peer-urls "http://$p" \
			    --initial-advertise-peer-urls "http://$p" \
			    --initial-cluster "$init" \
			    --initial-cluster-state new \
			    --initial-cluster-token "bench-$$-$c1" \
			    --log-level error 2>"$DIR/data/m$i.log" &
			PIDS="$PIDS $!"
		done
		;;
	esac
	FIRST=${ADDRS%%,*}
	for a in $(echo "$ADDRS" | tr , ' '); do
		if ! wait_for 30 "$CLI" -a "$a" health; then
			echo "$kind did not start:" >&2
			tail -n 20 "$DIR"/data/*.log >&2
			exit 1
		fi
	done
	# A write through each member: the cluster has a leader and serves.
	if [ "$kind" != etcd ] && ! wait_for 30 "$CLI" -a "$ADDRS" \
	    set 999999999999 ready; then
		echo "$kind does not take writes" >&2
		exit 1
	fi
}

# The longest snapshot pause the nodes logged, in ms of wall time and of
# the loop's CPU, and how many snapshots.
pauses() {
	cat "$DIR"/data/n*.log 2>/dev/null | sed -n \
	    's/.*keys frozen in \([0-9.]*\) ms (\([0-9.]*\) ms of CPU).*/\1 \2/p' |
	    awk '{ n++; if ($1 > w) w = $1; if ($2 > c) c = $2 }
		END { printf "%s %s %d\n", w + 0, c + 0, n }'
}

# measure LABEL KIND ADDRESSES(all|one) [START-ARGS] -- BENCH-ARGS: one
# dsd-bench run against fresh servers; its summary line, labelled, goes
# to the results.
measure() {
	label=$1
	kind=$2
	which=$3
	shift 3
	sargs=
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		sargs="$sargs $1"
		shift
	done
	shift
	# shellcheck disable=SC2086
	start "$kind" $sargs
	target=kvdb
	[ "$kind" = etcd ] && target=etcd
	a=$ADDRS
	[ "$which" = one ] && a=$FIRST
	echo "  $kind $label ($a)" >&2
	line=$(bench_run "$target" "$a" "$@")
	set -- $(pauses)
	echo "$kind.$label $line pause_ms=${1:-0} pause_cpu_ms=${2:-0}" \
	    "snapshots=${3:-0}" >>"$OUT"
	[ "$kind" = repl ] && [ "${3:-0}" -gt 0 ] &&
	    echo "    snapshots: $3, longest loop pause $1 ms ($2 ms of CPU)" >&2
	stop
}

# memory KIND: RSS per key of each server after loading MEMKEYS keys.
memory() {
	start "$1"
	target=kvdb
	before=
	for p in $PIDS; do
		before="$before $(ps -o rss= -p "$p" | tr -d ' ')"
	done
	"$BENCH" -q --target "$target" -a "$ADDRS" -c 4 -s 100 -n 1 \
	    --mix get=1 --prefill "$MEMKEYS" >/dev/null 2>"$DIR/run.err"
	sleep 2
	n=0
	for p in $PIDS; do
		n=$((n + 1))
		b=$(echo "$before" | cut -d' ' -f$((n + 1)))
		a=$(ps -o rss= -p "$p" | tr -d ' ')
		echo "$1.memory node=$n rss_kib=$a before_kib=$b keys=$MEMKEYS" \
		    >>"$OUT"
		echo "  $1 node $n: RSS $b KiB -> $a KiB with $MEMKEYS keys" >&2
	done
	stop
}

echo "machine: $(nproc) cores, $(uname -r); load before: $(cut -d' ' -f1-3 \
    /proc/loadavg); data in $DIR ($(df -T "$DIR" | awk 'NR == 2 { print $2 }'))"
echo "dsd kvdb-replicated (3 nodes) and kvdb (1 node, --fsync=always);" \
    "etcd $("$ETCD" --version | sed -n 's/^etcd Version: //p') (3 members," \
    "default fsync); loopback; $SECS s per run"

measure set16x100 repl all -- -c 16 -s 100 --mix set=1
measure set16x100 etcd all -- -c 16 -s 100 --mix set=1
measure lget16x100 repl all -- -c 16 -s 100 --mix get=1 --prefill "$PREFILL"
measure lget16x100 etcd all -- -c 16 -s 100 --mix get=1 \
    --prefill "$PREFILL" --etcd-read linearizable
measure sget16x100 repl all --read=serializable -- -c 16 -s 100 --mix get=1 \
    --prefill "$PREFILL"
measure sget16x100 etcd all -- -c 16 -s 100 --mix get=1 \
    --prefill "$PREFILL" --etcd-read serializable
measure set1x1 repl one -- -c 1 -s 1 --mix set=1
measure set1x1 kvdb one -- -c 1 -s 1 --mix set=1
measure set1x1 etcd one -- -c 1 -s 1 --mix set=1
memory repl
memory kvdb
$PY bench/failover.py dsd "$TRIALS" "$DIR/failover" >>"$OUT"
$PY bench/failover.py etcd "$TRIALS" "$DIR/failover" >>"$OUT"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"

awk "$AWK_FIELD"'
{ key = $1; rps[key] = field($0, "rps"); p99[key] = field($0, "p99_ms")
  if (field($0, "pause_ms") + 0 > pause) pause = field($0, "pause_ms") + 0
  if (field($0, "pause_cpu_ms") + 0 > pcpu) pcpu = field($0, "pause_cpu_ms") + 0
  snaps += field($0, "snapshots") }
$1 == "repl.memory" { rmem += field($0, "rss_kib") - field($0, "before_kib")
  rn++; keys = field($0, "keys") }
$1 == "kvdb.memory" { kmem = field($0, "rss_kib") - field($0, "before_kib") }
$1 == "failover" { fo[$2] = sprintf("median %s s, max %s s (%s trials)",
  field($0, "median_s"), field($0, "max_s"), field($0, "trials"))
  fmed[$2] = field($0, "median_s") }
function row(name, a, b, target) {
	printf "| %s | %s | %s | %s | %s |\n", name, a, b,
	    (b + 0 > 0 ? sprintf("%.2fx", a / b) : "-"), target
}
END {
	print ""
	print "| figure | dsd | other | ratio | target |"
	print "|---|---|---|---|---|"
	row("durable Set 16x100 (calls/s): replicated vs etcd Put",
	    rps["repl.set16x100"], rps["etcd.set16x100"], "3x")
	row("linearizable Get 16x100: replicated vs etcd linearizable Range",
	    rps["repl.lget16x100"], rps["etcd.lget16x100"], "3x")
	row("serializable Get 16x100: replicated vs etcd serializable Range",
	    rps["repl.sget16x100"], rps["etcd.sget16x100"], "10x")
	row("durable Set 1x1: replicated vs single-node kvdb",
	    rps["repl.set1x1"], rps["kvdb.set1x1"], "at least 1/1.5 = 0.67x")
	row("durable Set 1x1: replicated vs etcd Put",
	    rps["repl.set1x1"], rps["etcd.set1x1"], "-")
	if (rn > 0 && keys > 0 && kmem > 0)
		row("memory per key (bytes): replica (mean of 3) vs kvdb",
		    sprintf("%.1f", rmem / rn * 1024 / keys),
		    sprintf("%.1f", kmem * 1024 / keys), "at most 1.5x")
	printf "| fail-over after kill -9 of the leader | %s | etcd: %s | %s | median under 1.5 s |\n",
	    fo["dsd"], fo["etcd"], (fmed["etcd"] > 0 ? sprintf("%.2fx", fmed["dsd"] / fmed["etcd"]) : "-")
	printf "| longest loop pause of a snapshot (over %d snapshots) | %s ms (%s ms of CPU) | | | under 20 ms |\n",
	    snaps, pause, pcpu
}' "$OUT"
