#!/bin/sh
# Time to start after a crash, with and without the log-size snapshot.
# For each setting and load length: kvdb on a scratch directory on disk
# (not tmpfs) with no timed snapshots, 10,000 keys of 1 KiB prefilled,
# then TestAndSet of them at 16 x 100 for the load's seconds, then
# kill -9, then a restart timed from exec to its first SERVING health
# answer.  The log since the last snapshot and the restart's time are
# printed; with --snapshot-log-size they should not grow with the load.
#
#   bench/recovery.sh                 loads of 15 s and 60 s (about 3 min)
#   LOADS="10 30 90" bench/recovery.sh
cd "$(dirname "$0")/.." || exit 1
. bench/lib.sh
LOADS=${LOADS:-15 60}
DIR=$(mktemp -d -p /var/tmp dsd-bench-recovery.XXXXXX) || exit 1
PID=
trap '[ -n "$PID" ] && kill -9 "$PID" 2>/dev/null; rm -rf "$DIR"' EXIT
PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ADDR=127.0.0.1:$PORT

now() { date +%s.%N; }

# start LIMIT: kvdb on $DIR/data in the background (PID); waits until
# SERVING and sets ELAPSED to the seconds that took.
start() {
	t0=$(now)
	"$DSD" --mode=kvdb --listen="$ADDR" --data-dir="$DIR/data" \
	    --fsync=everysec --snapshot-interval=0 \
	    --snapshot-log-size="$1" 2>>"$DIR/dsd.log" &
	PID=$!
	i=0
	until "$CLI" -a "$ADDR" -t 200 health 2>/dev/null | grep -q SERVING; do
		i=$((i + 1))
		if [ "$i" -gt 3000 ] || ! kill -0 "$PID" 2>/dev/null; then
			echo "kvdb did not start; its log:" >&2
			tail -n 20 "$DIR/dsd.log" >&2
			exit 1
		fi
		sleep 0.01
	done
	ELAPSED=$(echo "$(now) $t0" | awk '{ printf "%.2f", $1 - $2 }')
}

logbytes() {
	cat "$DIR"/data/wal-*.log 2>/dev/null | tr -d '\0' | wc -c
}

echo "kvdb restart after kill -9: 10000 keys x 1 KiB, TestAndSet at 16 x 100"
printf '%-22s %6s %10s %12s %12s %10s\n' snapshot-log-size load ops/s \
    log-MiB snapshot-MiB restart-s
for limit in 0 64; do
	for secs in $LOADS; do
		rm -rf "$DIR/data"
		start "$limit"
		SECS=$secs
		line=$(bench_run kvdb "$ADDR" -c 16 -s 100 --mix tas=100 \
		    --prefill 10000 --value-size 1024 2>/dev/null)
		rps=$(echo "$line" | awk "$AWK_FIELD"'{ print field($0, "rps") }')
		kill -9 "$PID"
		wait "$PID" 2>/dev/null
		PID=
		# The log as recovery will find it: written bytes, not the
		# reserved zeros after them (an estimate: zeros inside
		# records count too little, which is negligible here).
		lb=$(logbytes)
		sb=$(stat -c %s "$DIR/data/snapshot" 2>/dev/null || echo 0)
		start "$limit"
		rs=$ELAPSED
		kill "$PID"
		wait "$PID" 2>/dev/null
		PID=
		if [ "$limit" -eq 0 ]; then name="0 (none)"; else name="$limit MiB"; fi
		printf '%-22s %5ss %10s %12.1f %12.1f %10s\n' "$name" "$secs" \
		    "$rps" "$(echo "$lb" | awk '{ print $1 / 1048576 }')" \
		    "$(echo "$sb" | awk '{ print $1 / 1048576 }')" "$rs"
	done
done
