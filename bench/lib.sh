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

# bench_run TARGET ADDRS ARGS...: one dsd-bench run of $SECS seconds
# (files in $DIR); its summary line on stdout (with ok=0 if it failed,
# and why on stderr), its figures on stderr.
bench_run() {
	_target=$1
	_addrs=$2
	shift 2
	"$BENCH" -q --target "$_target" -a "$_addrs" -d "$SECS" "$@" \
	    >"$DIR/run.out" 2>"$DIR/run.err"
	_line=$(sed -n 's/^summary: //p' "$DIR/run.out")
	if [ -z "$_line" ]; then
		echo "  dsd-bench failed:" >&2
		cat "$DIR/run.err" >&2
		_line="target=$_target ok=0 rps=0 p50_ms=0 p99_ms=0"
		_line="$_line errors=failed"
	fi
	grep -E '^(throughput|latency|errors):' "$DIR/run.out" |
	    sed 's/^/    /' >&2
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
