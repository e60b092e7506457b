#!/bin/sh
# What --metrics-listen costs kvdb's request path: kvdb with the page on
# against kvdb without it, with tools/dsd-bench at 16 connections x 100
# calls in flight, set and get half each over 10000 prefilled keys.  The
# server runs --fsync=no so that the figures show the counting and the
# timing of calls rather than the disk.  With the page on it is scraped
# once a second all along (Prometheus's default is every 15 s), so the
# rendering is in the cost too.
#
# The runs alternate, off then on, then on then off, ROUNDS times, each
# against a fresh server and data directory: a machine loaded by
# something else, unevenly, loads both sides alike.  Throughput on a
# shared machine swings with the other load, so each run also reports the
# server's own CPU time per call (user + system from /proc/PID/stat over
# the run, prefill and scrapes included, divided by the calls answered),
# which the other load disturbs much less.  Prints every run, the median
# of each side and the ratios on/off, and the size and time of one
# scrape.  Not a test: it asserts nothing, it reports.
#
# usage: bench/metrics.sh [SECONDS per run, default 15] [ROUNDS, default 3]
cd "$(dirname "$0")/.." || exit 1
. tests/lib.sh
. bench/lib.sh
SECS=${1:-15}
ROUNDS=${2:-3}

DIR=$(mktemp -d /tmp/dsd-bench-metrics.XXXXXX) || exit 1
PID=
SCRAPER=
trap 'scraper_stop; bench_stop; rm -rf "$DIR"' EXIT
trap 'exit 1' INT TERM

scraper_stop() {
	bench_kill "$SCRAPER"
	SCRAPER=
}

# cpu_ticks PID: its user + system CPU time, in clock ticks.
cpu_ticks() {
	sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}

# measure on|off: "rps p50_ms p99_ms cpu_us_per_call" of one run against
# a fresh server.
measure() {
	kind=$1
	rm -rf "$DIR/data"
	ADDR=127.0.0.1:$(free_port)
	MADDR=
	metrics=
	if [ "$kind" = on ]; then
		MADDR=127.0.0.1:$(free_port)
		metrics="--metrics-listen=$MADDR"
	fi
	# shellcheck disable=SC2086
	"$DSD" --mode=kvdb --listen "$ADDR" --data-dir "$DIR/data" \
	    --fsync=no $metrics 2>"$DIR/server.log" &
	PID=$!
	if ! wait_for 30 "$CLI" -a "$ADDR" health; then
		echo "kvdb (metrics $kind) did not start:" >&2
		tail -n 20 "$DIR/server.log" >&2
		exit 1
	fi
	if [ -n "$MADDR" ]; then
		(while :; do
			curl -s -o /dev/null "http://$MADDR/metrics"
			sleep 1
		done) &
		SCRAPER=$!
	fi
	t0=$(cpu_ticks "$PID")
	line=$(bench_run kvdb "$ADDR" -c 16 -s 100 --mix set=50,get=50 \
	    --prefill 10000 2>/dev/null)
	t1=$(cpu_ticks "$PID")
	if [ -n "$MADDR" ]; then
		scraper_stop
		curl -s -o "$DIR/page" -w '%{time_total} %{size_download}\n' \
		    "http://$MADDR/metrics" >"$DIR/scrape"
	fi
	bench_stop
	echo "$line" | awk -v t="$((t1 - t0))" -v hz="$(getconf CLK_TCK)" \
	    "$AWK_FIELD"'{ n = field($0, "ok") + 10000
		printf "%s %s %s %.3f\n", field($0, "rps"), field($0, "p50_ms"),
		field($0, "p99_ms"), (n > 0 ? t / hz * 1e6 / n : 0) }'
}

# median: the median of the numbers on standard input.
median() {
	sort -n | awk '{ v[NR] = $1 } END {
		if (NR == 0) print 0
		else if (NR % 2) print v[(NR + 1) / 2]
		else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

echo "machine: $(nproc) cores, $(uname -r); load before:" \
    "$(cut -d' ' -f1-3 /proc/loadavg)"
echo "kvdb --fsync=no, dsd-bench -c 16 -s 100 --mix set=50,get=50" \
    "--prefill 10000, $SECS s per run, $ROUNDS rounds"
printf '%-6s %-8s %12s %10s %10s %12s\n' round metrics ops/s "p50 ms" \
    "p99 ms" "CPU us/call"
: >"$DIR/off"
: >"$DIR/on"
: >"$DIR/off.cpu"
: >"$DIR/on.cpu"
i=1
while [ "$i" -le "$ROUNDS" ]; do
	if [ $((i % 2)) -eq 1 ]; then order="off on"; else order="on off"; fi
	for kind in $order; do
		# shellcheck disable=SC2046
		set -- $(measure "$kind")
		printf '%-6s %-8s %12d %10s %10s %12s\n' "$i" "$kind" "$1" "$2" \
		    "$3" "$4"
		echo "$1" >>"$DIR/$kind"
		echo "$4" >>"$DIR/$kind.cpu"
	done
	i=$((i + 1))
done
off=$(median <"$DIR/off")
on=$(median <"$DIR/on")
awk -v off="$off" -v on="$on" 'BEGIN {
	printf "median ops/s: off %d, on %d; on/off %.4f (%+.2f%%)\n", off, on,
	    (off > 0 ? on / off : 0), (off > 0 ? (on / off - 1) * 100 : 0) }'
off=$(median <"$DIR/off.cpu")
on=$(median <"$DIR/on.cpu")
awk -v off="$off" -v on="$on" 'BEGIN {
	printf "median server CPU per call: off %.3f us, on %.3f us; " \
	    "on/off %.4f (%+.2f%%)\n", off, on, (off > 0 ? on / off : 0),
	    (off > 0 ? (on / off - 1) * 100 : 0) }'
read -r t size <"$DIR/scrape"
echo "one scrape after a run: $size bytes in $t s;" \
    "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
