# Helpers for the shell tests; source it.  Each test script prints
# "ok - name" or "not ok - name" per check and exits non-zero on a failure.

: "${DSD:=$(cd "$(dirname "$0")/.." && pwd)/src/dsd}"
TESTS_FAILED=0
TESTS_RUN=0

ok() {
	TESTS_RUN=$((TESTS_RUN + 1))
	echo "ok - $*"
}

not_ok() {
	TESTS_RUN=$((TESTS_RUN + 1))
	TESTS_FAILED=$((TESTS_FAILED + 1))
	echo "not ok - $*"
}

# check NAME CMD...: run CMD, pass if it exits 0.
check() {
	name=$1
	shift
	if "$@" >/dev/null 2>&1; then ok "$name"; else not_ok "$name"; fi
}

# expect_status N NAME CMD...: pass if CMD exits with status N.
expect_status() {
	want=$1
	name=$2
	shift 2
	"$@" >/dev/null 2>&1
	got=$?
	if [ "$got" -eq "$want" ]; then
		ok "$name"
	else
		not_ok "$name (exit $got, wanted $want)"
	fi
}

# A TCP port on loopback that nothing listens on right now.
free_port() {
	/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_for SECONDS CMD...: retry CMD every 0.1 s until it succeeds.
wait_for() {
	deadline=$(( $(date +%s) + $1 ))
	shift
	until "$@" >/dev/null 2>&1; do
		[ "$(date +%s)" -ge "$deadline" ] && return 1
		sleep 0.1
	done
}

finish() {
	echo "$((TESTS_RUN - TESTS_FAILED)) passed, $TESTS_FAILED failed"
	[ "$TESTS_FAILED" -eq 0 ]
}
