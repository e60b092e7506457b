#!/bin/sh
# kvdb in clear text against kvdb over TLS (server certificate only; TLS 1.3
# as the tools negotiate it), side by side on this machine with
# tools/dsd-bench, at 16 connections x 100 calls in flight and at 1 x 1,
# get and set half each.  The server runs --fsync=no so that the figures
# show what TLS costs the transport rather than the disk.  Each load gets a
# fresh server.  The certificates are made here with openssl(1), in a
# temporary directory removed at the end.  Prints ops/s of each and the
# ratio TLS/clear.  Not a test: it asserts nothing, it reports.
#
# usage: bench/tls.sh [SECONDS per run, default 10]
cd "$(dirname "$0")/.." || exit 1
. tests/lib.sh
. bench/lib.sh
SECS=${1:-10}

DIR=$(mktemp -d /tmp/dsd-bench-tls.XXXXXX) || exit 1
PID=
trap 'bench_stop; rm -rf "$DIR"' EXIT
trap 'exit 1' INT TERM

# A CA and a server certificate for 127.0.0.1.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$DIR/ca.key" -out "$DIR/ca.pem" -days 1 -subj /CN=bench-ca \
    2>/dev/null &&
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$DIR/srv.key" -out "$DIR/srv.csr" -subj /CN=bench 2>/dev/null &&
printf 'subjectAltName=IP:127.0.0.1\n' >"$DIR/ext" &&
openssl x509 -req -in "$DIR/srv.csr" -CA "$DIR/ca.pem" -CAkey "$DIR/ca.key" \
    -set_serial 1 -days 1 -extfile "$DIR/ext" -out "$DIR/srv.pem" \
    2>/dev/null || { echo "openssl failed" >&2; exit 1; }

# measure tls|clear ARGS...: ops/s of one run against a fresh server.
measure() {
	kind=$1
	shift
	rm -rf "$DIR/data"
	ADDR=127.0.0.1:$(free_port)
	srvtls= clitls=
	if [ "$kind" = tls ]; then
		srvtls="--tls-cert=$DIR/srv.pem --tls-key=$DIR/srv.key"
		clitls="--tls-ca=$DIR/ca.pem"
	fi
	# shellcheck disable=SC2086
	"$DSD" --mode=kvdb --listen "$ADDR" --data-dir "$DIR/data" \
	    --fsync=no $srvtls 2>"$DIR/server.log" &
	PID=$!
	# shellcheck disable=SC2086
	if ! wait_for 30 "$CLI" -a "$ADDR" $clitls health; then
		echo "kvdb ($kind) did not start:" >&2
		tail -n 20 "$DIR/server.log" >&2
		exit 1
	fi
	# shellcheck disable=SC2086
	line=$(bench_run kvdb "$ADDR" $clitls "$@" 2>/dev/null)
	bench_stop
	echo "$line" | awk "$AWK_FIELD"'{ printf "%s %s\n", field($0, "rps"),
	    field($0, "p50_ms") }'
}

echo "machine: $(nproc) cores, $(uname -r), $(openssl version);" \
    "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "kvdb --fsync=no, --mix set=50,get=50, $SECS s per run"
printf '%-8s %14s %14s %8s %12s %12s\n' load "clear ops/s" "TLS ops/s" \
    TLS/clr "clear p50" "TLS p50"
for load in "16x100:-c 16 -s 100" "1x1:-c 1 -s 1"; do
	name=${load%%:*}
	args=${load#*:}
	# shellcheck disable=SC2086
	set -- $(measure clear $args) $(measure tls $args)
	awk -v n="$name" -v c="$1" -v cp="$2" -v t="$3" -v tp="$4" 'BEGIN {
		printf "%-8s %14d %14d %8.2f %9s ms %9s ms\n", n, c, t,
		    (c > 0 ? t / c : 0), cp, tp }'
done
