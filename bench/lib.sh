# What the comparison scripts share; source it from the top of the tree.

# The built programs they drive, and etcd's server if there is one.
DSD=$PWD/src/dsd
BENCH=$PWD/tools/dsd-bench
CLI=$PWD/tools/dsd-cli
ETCD=$(command -v etcd)
[ -x "$DSD" ] && [ -x "$BENCH" ] && [ -x "$CLI" ] || {
	echo "build first: tools/setup" >&2
	exit 1
}

# An awk function for their results files, lines of "LABEL name=value
# ...": field(line, name) is the value of name, or "".  Put it in front
# of an awk program: awk "$AWK_FIELD"'...'.
AWK_FIELD='
function field(line, name,    n, i, kv) {
	n = split(line, kv, " ")
	for (i = 2; i <= n; i++)
		if (index(kv[i], name "=") == 1)
			return substr(kv[i], length(name) + 2)
	return ""
}
'

# A Python program for bench_run: the summary of a dsd-bench --json file
# (argv[1]) as one "name=value ..." line on stdout, the fields of
# dsd-bench's text summary line, and its figures for a person on stderr;
# exit 1 if the file has no summary.
PY_SUMMARY='
import json, sys
s = None
for line in open(sys.argv[1], encoding="utf-8"):
    if line.strip():
        o = json.loads(line)
        if o.get("type") == "summary":
            s = o
if s is None:
    sys.exit(1)
lat, err = s["latency"], s["errors"]
by = err["by_status"]
print("target=%s ok=%d secs=%.3f rps=%.0f p50_ms=%.3f p99_ms=%.3f "
      "p999_ms=%.3f max_ms=%.3f errors=%d unknown=%d deadline=%d "
      "unavailable=%d conns_lost=%d" % (s["target"], s["answered"],
      s["secs"], s["throughput"], lat["p50_ms"], lat["p99_ms"],
      lat["p999_ms"], lat["max_ms"], err["total"], by.get("UNKNOWN", 0),
      by.get("DEADLINE_EXCEEDED", 0), by.get("UNAVAILABLE", 0),
      s["connections"]["lost"]))
print("    throughput:  %.0f calls/s" % s["throughput"], file=sys.stderr)
print("    latency:     p50 %.3f  p99 %.3f  p99.9 %.3f  max %.3f ms" %
      (lat["p50_ms"], lat["p99_ms"], lat["p999_ms"], lat["max_ms"]),
      file=sys.stderr)
print("    errors:      %s" % (json.dumps(by) if err["total"] else "none"),
      file=sys.stderr)
'

# bench_run TARGET ADDRS ARGS...: one dsd-bench --json run of $SECS
# seconds, its JSON lines in $BENCH_JSON if set, else in $DIR/run.json;
# its summary line on stdout (with ok=0 if it failed, and why on stderr),
# its figures on stderr.
bench_run() {
	_target=$1
	_addrs=$2
	shift 2
	_json=${BENCH_JSON:-$DIR/run.json}
	"$BENCH" -q --json --target "$_target" -a "$_addrs" -d "$SECS" "$@" \
	    >"$_json" 2>"$DIR/run.err"
	if ! _line=$(/usr/bin/python3 -c "$PY_SUMMARY" "$_json"); then
		echo "  dsd-bench failed:" >&2
		cat "$DIR/run.err" >&2
		_line="target=$_target ok=0 rps=0 p50_ms=0 p99_ms=0"
		_line="$_line errors=failed"
	fi
	echo "$_line"
}

# bench_stop: stop the server a script started in the background as $PID,
# if any, and wait for it.
bench_stop() {
	bench_kill "$PID"
	PID=
}

# bench_kill PID: stop a process the script started in the background, if
# PID is not empty, and wait for it.
bench_kill() {
	if [ -n "$1" ]; then
		kill "$1" 2>/dev/null
		wait "$1" 2>/dev/null
	fi
}
