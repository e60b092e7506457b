#!/bin/sh
# dsd's kvdb mode against etcd, side by side on this machine, with one load
# generator (tools/dsd-bench speaks both APIs) and the same durability:
# kvdb with --fsync=always (group commit: an fsync before each batch of
# replies), etcd single-node with its default WAL fsync before it answers.
# Each load gets a fresh server, alone on the machine with the generator,
# its data in the same directory on the same disk whichever it is (so no
# figure depends on what an earlier load left: etcd's reads, for one, slow
# down several times once its database holds a few hundred thousand
# revisions).  Prints each figure and the ratio dsd/etcd.  Not a test: it
# asserts nothing, it reports.
#
# Needs etcd 3.4, which this script does not install:
#	apt-get install etcd-server	(Debian 12; the service it enables
#					 is not needed: systemctl disable --now etcd)
#
# usage: bench/kvdb-vs-etcd.sh [--loads LOAD,...] [--json DIR]
#	    [--plot FILE.png] [SECONDS per run, default 10]
# --loads picks among set16x100, get16x100, set1x1 and get1x1 (default all
# four); --json keeps each run's dsd-bench --json lines in DIR as
# LOAD-TARGET.json; --plot draws every run's throughput and latency over
# time into FILE.png with bench/plot (which needs gnuplot-nox).
# BENCH_DIR sets where both data directories go (default: under /var/tmp,
# which is on disk where /tmp may be memory).
cd "$(dirname "$0")/.." || exit 1
. tests/lib.sh
. bench/lib.sh
LOADS="set16x100 get16x100 set1x1 get1x1"
JSON=
PLOT=
while [ $# -gt 0 ]; do
	case $1 in
	--loads)	LOADS=$(echo "$2" | tr ',' ' '); shift 2 ;;
	--json)		JSON=$2; shift 2 ;;
	--plot)		PLOT=$2; shift 2 ;;
	-*)		sed -n 's/^# usage: /usage: /p; /^#	    /s/^#//p' "$0" >&2
			exit 2 ;;
	*)		break ;;
	esac
done
SECS=${1:-10}
PREFILL=100000
for l in $LOADS; do
	case $l in
	set16x100|get16x100|set1x1|get1x1) ;;
	*) echo "unknown load '$l'" >&2; exit 2 ;;
	esac
done

[ -n "$ETCD" ] || {
	echo "etcd not found: apt-get install etcd-server" >&2
	exit 1
}
DIR=${BENCH_DIR:-$(mktemp -d /var/tmp/dsd-vs-etcd.XXXXXX)} || exit 1
mkdir -p "$DIR"
[ -n "$PLOT" ] && [ -z "$JSON" ] && JSON=$DIR/json
[ -n "$JSON" ] && { mkdir -p "$JSON" || exit 1; }
OUT=$DIR/results
: >"$OUT"
PID=

trap 'bench_stop; [ -z "$BENCH_DIR" ] && rm -rf "$DIR"' EXIT
trap 'exit 1' INT TERM

# start_server TARGET: a fresh server of that kind, its data in $DIR; sets
# ADDR and PID.
start_server() {
	rm -rf "$DIR/data"
	ADDR=127.0.0.1:$(free_port)
	if [ "$1" = kvdb ]; then
		"$DSD" --mode=kvdb --listen "$ADDR" --data-dir "$DIR/data" \
		    --fsync=always 2>"$DIR/server.log" &
	else
		peer=127.0.0.1:$(free_port)
		"$ETCD" --name bench --data-dir "$DIR/data" \
		    --listen-client-urls "http://$ADDR" \
		    --advertise-client-urls "http://$ADDR" \
		    --listen-peer-urls "http://$peer" \
		    --initial-advertise-peer-urls "http://$peer" \
		    --initial-cluster "bench=http://$peer" \
		    --log-level error 2>"$DIR/server.log" &
	fi
	PID=$!
	if ! wait_for 30 "$CLI" -a "$ADDR" health; then
		echo "$1 did not start:" >&2
		tail -n 20 "$DIR/server.log" >&2
		exit 1
	fi
}

# measure LABEL TARGET ARGS...: one dsd-bench run against a fresh server,
# so that no figure depends on what an earlier run left; its summary
# line, labelled, goes to the results.
measure() {
	label=$1
	target=$2
	shift 2
	start_server "$target"
	echo "  $target $label ($ADDR)" >&2
	BENCH_JSON=${JSON:+$JSON/$label-$target.json}
	line=$(bench_run "$target" "$ADDR" "$@")
	echo "$label $line rss_kib=$(ps -o rss= -p "$PID" | tr -d ' ')" \
	    >>"$OUT"
	bench_stop
}

# disk_syncs: how many small appends per second the disk makes durable,
# each with its own sync (dd's O_DSYNC writes, in the data directory's
# file system): the ceiling of one client's durable writes, which wait
# one sync each.
disk_syncs() {
	dd if=/dev/zero of="$DIR/sync-probe" bs=128 count=3000 oflag=dsync \
	    2>&1 >/dev/null | awk '/copied/ {
		for (i = 1; i <= NF; i++)
			if ($i ~ /^s,?$/) secs = $(i - 1)
		if (secs > 0) printf "%d\n", 3000 / secs
	}'
	rm -f "$DIR/sync-probe"
}

# The four loads of the issue, or those of --loads.
runs() {
	for l in $LOADS; do
		case $l in
		set16x100) measure $l "$1" -c 16 -s 100 --mix set=1 ;;
		get16x100) measure $l "$1" -c 16 -s 100 --mix get=1 \
		    --prefill "$PREFILL" ;;
		set1x1) measure $l "$1" -c 1 -s 1 --mix set=1 ;;
		get1x1) measure $l "$1" -c 1 -s 1 --mix get=1 --prefill 1000 ;;
		esac
	done
}

echo "machine: $(nproc) cores, $(uname -r); load before: $(cut -d' ' -f1-3 \
    /proc/loadavg); data in $DIR ($(df -T "$DIR" | awk 'NR == 2 { print $2 }'))"
echo "dsd kvdb, --fsync=always; etcd $("$ETCD" --version |
    sed -n 's/^etcd Version: //p'), single node, default fsync;" \
    "$SECS s per run"
SYNC1=$(disk_syncs)
echo "disk: ${SYNC1:-?} synced 128-byte appends/s (dd oflag=dsync)"
runs kvdb
runs etcd
SYNC2=$(disk_syncs)
echo "disk: ${SYNC2:-?} synced appends/s after the runs"
echo "disk syncs=${SYNC1:-0} after=${SYNC2:-0}" >>"$OUT"

echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
# The table: throughput for the loaded runs, p99 for 1x1 Get.
awk "$AWK_FIELD"'
$1 == "disk" {
	sync1 = field($0, "syncs")
	sync2 = field($0, "after")
	next
}
{
	t = field($0, "target")
	rps[$1, t] = field($0, "rps")
	p50[$1, t] = field($0, "p50_ms")
	p99[$1, t] = field($0, "p99_ms")
	err[$1, t] = field($0, "errors")
	rss[$1, t] = field($0, "rss_kib")
}
function row(name, what, k, unit,    d, e) {
	if (rps[k, "kvdb"] == "" && rps[k, "etcd"] == "")
		return
	if (what == "rps") { d = rps[k, "kvdb"]; e = rps[k, "etcd"] }
	else { d = p99[k, "kvdb"]; e = p99[k, "etcd"] }
	printf "%-44s %12s %12s %9s\n", name, d unit, e unit,
	    (e + 0 > 0 ? sprintf("%.2fx", d / e) : "-")
}
END {
	printf "%-44s %12s %12s %9s\n", "figure", "dsd kvdb", "etcd",
	    "dsd/etcd"
	row("durable Set/Put, 16 conns x 100 streams", "rps", "set16x100",
	    "/s")
	row("Get/serializable Range, 16 x 100", "rps", "get16x100", "/s")
	row("durable Set/Put, 1 x 1", "rps", "set1x1", "/s")
	row("Get/Range 1 x 1, p99 latency (lower wins)", "p99", "get1x1",
	    " ms")
	row("Get/Range 1 x 1", "rps", "get1x1", "/s")
	row("durable Set/Put 1 x 1, p99 latency", "p99", "set1x1", " ms")
	if (sync1 + sync2 > 0 && rps["set1x1", "kvdb"] != "")
		printf "\ndurable Set 1 x 1 as a share of the disk sync rate " \
		    "(%s/s before, %s/s after): kvdb %.0f%%, etcd %.0f%%\n",
		    sync1, sync2, 100 * rps["set1x1", "kvdb"] / ((sync1 + sync2) / 2),
		    100 * rps["set1x1", "etcd"] / ((sync1 + sync2) / 2)
	printf "\nevery run (latency in ms, server RSS at the end):\n"
	split("set16x100 get16x100 set1x1 get1x1", runs, " ")
	for (i = 1; i <= 4; i++)
		for (j = 1; j <= 2; j++) {
			t = j == 1 ? "kvdb" : "etcd"
			if (rps[runs[i], t] == "")
				continue
			printf "  %-10s %-5s %9s/s  p50 %s  p99 %s  " \
			    "errors %s  rss %s KiB\n", runs[i], t,
			    rps[runs[i], t], p50[runs[i], t], p99[runs[i], t],
			    err[runs[i], t], rss[runs[i], t]
		}
}' "$OUT"

# The runs over time, one colour per load and server.
if [ -n "$PLOT" ]; then
	set --
	for l in $LOADS; do
		for t in kvdb etcd; do
			[ -s "$JSON/$l-$t.json" ] && set -- "$@" "$t $l=$JSON/$l-$t.json"
		done
	done
	bench/plot -o "$PLOT" -t "dsd kvdb (--fsync=always) and etcd $("$ETCD" \
	    --version | sed -n 's/^etcd Version: //p') (one node), $SECS s per run, $(nproc) cores" "$@" &&
	    echo "plot: $PLOT"
fi
