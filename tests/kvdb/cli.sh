#!/bin/sh
# dsd-cli against a real kvdb server: one-shot commands with their output
# and exit statuses, key and data forms, the server-down message, the
# prompt reconnecting after a restart, and the check batteries: one run,
# ten at once sharing a contention key, and a run whose server is killed.
# Retries: a server stopped for a second (SIGSTOP) is waited for, or not
# with --retry-time=0; a dead first address is passed over; the Admin
# commands fail cleanly against single-node kvdb.  Then, against
# tests/kvdb/fake-kv.py, which deduplicates by session as kvdb-replicated
# does and can inject faults: the session metadata sent, one client id
# per call slot of check, retries answered from the server's memory, check
# failing when the server does not deduplicate, check passing through the
# kill of the node it talks to, and the Admin commands' output and retry
# rules.  Last, against a real three-node kvdb-replicated cluster: the
# Admin commands, check through a kill -9 of the node it talks to and
# through a kill -9 of the leader while it talks to a follower, and equal
# digests on every node afterwards.
#
# usage: tests/kvdb/cli.sh
# (DSD=src/dsd-san CLI=tools/dsd-cli-san for the sanitizer builds)
cd "$(dirname "$0")/../.." || exit 1
DSD=${DSD:-$PWD/src/dsd}
. tests/lib.sh
CLI=${CLI:-$PWD/tools/dsd-cli}

WORK=$(mktemp -d /tmp/dsd-cli-test.XXXXXX) || exit 1
PORT=$(free_port)
ADDR=127.0.0.1:$PORT
SERVER=
FAKE=
BENCH_A=
BENCH_B=
NODES=

start_server() {
	"$DSD" --mode=kvdb --listen "$ADDR" --data-dir "$WORK/data" \
	    2>>"$WORK/server.log" &
	SERVER=$!
	wait_for 20 "$CLI" -a "$ADDR" health
}

stop_server() {
	if [ -n "$SERVER" ]; then
		kill -"${1:-TERM}" "$SERVER" 2>/dev/null
		wait "$SERVER" 2>/dev/null
	fi
	SERVER=
}

cleanup() {
	exec 3>&- 2>/dev/null
	stop_server
	[ -n "$PROMPT" ] && kill "$PROMPT" 2>/dev/null
	stop_fake
	[ -n "$BENCH_A" ] && kill -9 "$BENCH_A" 2>/dev/null
	[ -n "$BENCH_B" ] && kill "$BENCH_B" 2>/dev/null
	for p in $NODES; do
		kill -CONT "$p" 2>/dev/null
		kill "$p" 2>/dev/null
	done
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# run ARGS...: run dsd-cli against the server; output in OUT, status in RC.
run() {
	OUT=$("$CLI" -a "$ADDR" "$@" 2>&1)
	RC=$?
}

# runa ADDRS ARGS...: the same against other addresses; MS is how long
# it took, in milliseconds.
runa() {
	a=$1
	shift
	t0=$(date +%s%N)
	OUT=$("$CLI" -a "$a" "$@" 2>&1)
	RC=$?
	MS=$((($(date +%s%N) - t0) / 1000000))
}

# The fake cluster node (tests/kvdb/fake-kv.py) on FPORT, with TCP fronts
# on FRONT1 and FRONT2 standing for two more nodes.
start_fake() {
	FPORT=$(free_port)
	FRONT1=$(free_port)
	FRONT2=$(free_port)
	rm -f "$WORK/fake.stats"
	/usr/bin/python3 tests/kvdb/fake-kv.py --port "$FPORT" \
	    --front "$FRONT1" --front "$FRONT2" --stats "$WORK/fake.stats" \
	    "$@" 2>>"$WORK/fake.log" &
	FAKE=$!
	wait_for 20 test -f "$WORK/fake.stats"
}

stop_fake() {
	if [ -n "$FAKE" ]; then
		kill "$FAKE" 2>/dev/null
		wait "$FAKE" 2>/dev/null
	fi
	FAKE=
}

# fake_stat EXPR: a Python expression over the fake's counts d (see
# fake-kv.py), read from a fresh dump.
fake_stat() {
	rm -f "$WORK/fake.stats"
	kill -USR2 "$FAKE"
	wait_for 5 test -f "$WORK/fake.stats"
	/usr/bin/python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
print(eval(sys.argv[2], {"d": d}))' "$WORK/fake.stats" "$1"
}

# checks_pass NAME LOG...: wait for the checks started in the background
# (their pids in $pids), and pass if every one passed; else show the
# failures from their logs.
checks_pass() {
	_name=$1
	shift
	_failed=0
	for _p in $pids; do
		wait "$_p" || _failed=$((_failed + 1))
	done
	if [ "$_failed" -eq 0 ]; then
		ok "$_name"
	else
		not_ok "$_name ($_failed failed)"
		grep -h '^not ok\|^# ' "$@" | head -n 10
	fi
}

# contention_sum LOG...: the shared key's successes the checks counted.
contention_sum() {
	sed -n 's/^contention successes: \([0-9]*\)$/\1/p' "$@" |
	    awk '{ s += $1 } END { print s + 0 }'
}

# is NAME GOT WANT: a value as expected.
is() {
	if [ "$2" = "$3" ]; then
		ok "$1"
	else
		not_ok "$1 (got '$2', wanted '$3')"
	fi
}

# expect NAME STATUS PATTERN...: the last run exited STATUS and its output
# has a line matching each extended regular expression.
expect() {
	name=$1
	want=$2
	shift 2
	if [ "$RC" -ne "$want" ]; then
		not_ok "$name (exit $RC, wanted $want): $(printf '%s' "$OUT" |
		    head -n 3 | tr '\n' '|')"
		return
	fi
	for pat in "$@"; do
		if ! printf '%s\n' "$OUT" | grep -Eq -- "$pat"; then
			not_ok "$name (no line matching '$pat' in: $(printf \
			    '%s' "$OUT" | head -c 300 | tr '\n' '|'))"
			return
		fi
	done
	ok "$name"
}

# The man pages: clean, and naming every command that help lists.
if command -v mandoc >/dev/null; then
	for m in man/dsd-cli.1 man/dsd-bench.1; do
		check "$m is clean under mandoc -Tlint" \
		    sh -c "test -z \"\$(mandoc -Tlint -Wwarning $m 2>&1)\""
	done
fi
for c in $("$CLI" help | sed -n 's/^  \([a-z][a-z]*\).*/\1/p'); do
	check "command $c is documented in man/dsd-cli.1" \
	    grep -q "^\.It Cm $c\( \|\$\)" man/dsd-cli.1
done
for m in dsd-cli dsd-bench; do
	for f in $("tools/$m" --help | grep -o -- '--[a-z][a-z-]*' | sort -u); do
		check "$m: flag $f of --help is documented in man/$m.1" \
		    grep -q "Fl \\\\-${f#--}\\( \\|\$\\)" "man/$m.1"
	done
done

if ! start_server; then
	not_ok "kvdb server starts on $ADDR"
	cat "$WORK/server.log"
	finish
	exit 1
fi
ok "kvdb server starts on $ADDR"

# One-shot commands, every reply form and exit status.
run health
expect "health: SERVING, exit 0" 0 '^health: SERVING$'
run get 1000
expect "get of an absent key: ERROR, no value, exit 1" 1 \
    '^status: ERROR$' '^value: none$'
run set 1000 hello 1700000000000
expect "set of an absent key: SUCCESS, exit 0" 0 '^status: SUCCESS$' \
    '^value: none$'
run set 1000 other
expect "set of a present key: ERROR with the current value, exit 1" 1 \
    '^status: ERROR$' '^version: 1$' '^data: hello$'
run get 1000
expect "get: version, timestamp in ms and in UTC ISO-8601, data, bytes" 0 \
    '^status: SUCCESS$' '^version: 1$' \
    '^timestamp: 1700000000000 \(2023-11-14T22:13:20\.000Z\)$' \
    '^data: hello$' '^bytes: 5$'
run tas 1000 2 nope
expect "tas with a wrong version: ERROR_WV, exit 5" 5 '^status: ERROR_WV$' \
    '^version: 1$'
run tas 1000 1 world
expect "tas with the right version: SUCCESS with the previous value" 0 \
    '^status: SUCCESS$' '^version: 1$' '^data: hello$'
now=$(date +%s)
run get 1000
ts=$(printf '%s\n' "$OUT" | sed -n 's/^timestamp: \([0-9]*\) .*/\1/p')
expect "get after tas: version 2, new data" 0 '^version: 2$' '^data: world$'
if [ -n "$ts" ] && [ $((ts / 1000 - now)) -le 60 ] &&
    [ $((now - ts / 1000)) -le 60 ]; then
	ok "the default timestamp is now, in milliseconds"
else
	not_ok "the default timestamp is now, in milliseconds (got '$ts')"
fi
run delv 1000 1
expect "delv with a wrong version: ERROR_WV, exit 5" 5 '^status: ERROR_WV$'
run delv 1001 1
expect "delv of an absent key: ERROR_NE, exit 4" 4 '^status: ERROR_NE$' \
    '^value: none$'
run tas 1001 1 x
expect "tas of an absent key: ERROR_NE, exit 4" 4 '^status: ERROR_NE$'
run delv 1000 2
expect "delv with the right version: SUCCESS with the value" 0 \
    '^status: SUCCESS$' '^data: world$'
run del 1000
expect "del of an absent key: ERROR, exit 1" 1 '^status: ERROR$'
run set 1000 again
run del 1000
expect "del of a present key: SUCCESS with the value, version 1" 0 \
    '^status: SUCCESS$' '^version: 1$' '^data: again$'

# Keys: the same number in any form is one key.
run set 255 ff-key
run get 0xff
expect "0xff names the key 255" 0 '^data: ff-key$'
run get 000255
expect "000255 names the key 255" 0 '^data: ff-key$'
run get 0x00FF
expect "0x00FF names the key 255" 0 '^data: ff-key$'
run set -1 minus-one
run get -0x1
expect "-0x1 names the key -1" 0 '^data: minus-one$'
run get -0x01
expect "-0x01 names the key -1" 0 '^data: minus-one$'
run set -128 minus-128
run get -0x80
expect "-0x80 names the key -128 (one byte 80 on the wire)" 0 \
    '^data: minus-128$'
run set -129 minus-129
run get -0x81
expect "-0x81 names the key -129 (ff 7f on the wire)" 0 '^data: minus-129$'
run set 128 plus-128
run get 0x80
expect "0x80 names the key 128 (00 80 on the wire), not -128" 0 \
    '^data: plus-128$'
run set 0 zero
run get -0
expect "-0 names the key 0" 0 '^data: zero$'
run get 0x0000
expect "0x0000 names the key 0" 0 '^data: zero$'
big=1$(printf '%060d' 0)
run set "$big" ten-to-the-60
run get "${big}"
expect "a 61-digit decimal key" 0 '^data: ten-to-the-60$'
hex=$(printf 'ab%.0s' $(seq 1 300))
run set "0x$hex" long-hex
run get "0x00000000$hex"
expect "a 300-byte hex key, also written 00-padded" 0 '^data: long-hex$'
run get "-0x$hex"
expect "its negative is another key" 1 '^status: ERROR$'
huge=$(printf 'ff%.0s' $(seq 1 5000))
run get "0x$huge"
expect "a key over the server's limit: INVALID_ARGUMENT, exit 3" 3 \
    'INVALID_ARGUMENT'
for bad in "12 34" "+5" "0x" "-" "1e5" "abc" "--5" "0x1g" "" " 5" "5 "; do
	run get "$bad"
	expect "key '$bad' is refused before it is sent, exit 2" 2 \
	    "^dsd-cli: bad KEY '"
done

# Data forms, and output that reads back as input.
run set 2000 "two words here"
run get 2000
expect "text with spaces" 0 '^data: two words here$' '^bytes: 14$'
run set 2001 x:00ff10
run get 2001
expect "x:HEX is bytes, shown as hex" 0 '^data: x:00ff10$' '^bytes: 3$'
printf 'a\000b\377\n' >"$WORK/bin"
run set 2002 "@$WORK/bin"
run get 2002
expect "@FILE is the file's bytes, binary kept" 0 '^data: x:610062ff0a$' \
    '^bytes: 5$'
printf 'plain text' >"$WORK/txt"
run set 2003 "@$WORK/txt"
run get 2003
expect "@FILE of text shows as text" 0 '^data: plain text$'
run set 2004 "t:x:abc"
run get 2004
expect "t: writes text starting with x:, shown with t:" 0 '^data: t:x:abc$' \
    '^bytes: 5$'
run set 2005 "t:@home"
run get 2005
expect "t:@home is the text @home" 0 '^data: t:@home$' '^bytes: 5$'
run set 2006 ""
run get 2006
expect "empty data" 0 '^data: $' '^bytes: 0$'
run set 2007 "héllo wörld"
run get 2007
expect "UTF-8 text shows as text" 0 '^data: héllo wörld$' '^bytes: 13$'
run set 2008 "$(printf 'tab\there')"
run get 2008
expect "text with a control character shows as hex" 0 \
    '^data: x:7461620968657265$'
run set 2009 x:
run get 2009
expect "x: alone is empty data" 0 '^bytes: 0$'
run set 2010 x:abc
expect "x: with an odd number of digits: exit 2" 2 '^dsd-cli: bad DATA'
run set 2010 x:zz
expect "x: with a non-hex digit: exit 2" 2 '^dsd-cli: bad DATA'
run set 2010 "@$WORK/missing"
expect "@FILE that does not exist: exit 2 naming it" 2 \
    "^dsd-cli: bad DATA: $WORK/missing: No such file or directory"

# Usage errors.
run get
expect "get without a key: usage, exit 2" 2 '^usage: *get KEY'
run set 1 2 3 4
expect "set with too many arguments: exit 2" 2 '^usage:'
run nope
expect "an unknown command: exit 2" 2 "unknown command 'nope'"
run tas 1 one x
expect "a version that is not a number: exit 2" 2 "bad VERSION 'one'"
run set 1 x 12ab
expect "a timestamp that is not a number: exit 2" 2 "bad TIMESTAMP"
OUT=$("$CLI" -t 0 get 1 2>&1)
RC=$?
expect "-t 0: exit 2" 2 '-t takes milliseconds'
OUT=$("$CLI" -a "127.0.0.1" get 1 2>&1)
RC=$?
expect "-a without a port: exit 2" 2 '-a takes host:port'
run help
expect "help lists the commands and the DATA forms" 0 '^  get KEY$' \
    '^  tas KEY VERSION DATA \[TIMESTAMP\]$' 'x:HEX' '@FILE' 't:TEXT'

# -o json: one object per command on one line, with the exit statuses of
# the text form.  jexpect checks them with Python's json module: every
# line of standard output must be a JSON object, and EXPR must hold of
# them (o is the last, objs all of them).
runj() {
	OUT=$("$CLI" -a "$ADDR" -o json "$@" 2>"$WORK/json.err")
	RC=$?
}

# jexpect NAME STATUS EXPR: as expect, for the output of runj.
jexpect() {
	if [ "$RC" -ne "$2" ]; then
		not_ok "$1 (exit $RC, wanted $2): $(printf '%s' "$OUT" |
		    head -c 300)"
		return
	fi
	if why=$(printf '%s\n' "$OUT" | /usr/bin/python3 -c '
import base64, json, sys
objs = [json.loads(l) for l in sys.stdin.read().splitlines()]
assert objs and all(isinstance(x, dict) for x in objs), "not objects"
o = objs[-1]
b64 = lambda b: base64.b64encode(b).decode()
if not eval("(" + sys.argv[1] + ")"):
	sys.exit("false of: %s" % objs[-3:])' "$3" 2>&1); then
		ok "$1"
	else
		not_ok "$1 ($(printf '%s' "$why" | tail -n 1 | head -c 400))"
	fi
}

runj get 5000
jexpect "json: get of an absent key: ERROR without a value, exit 1" 1 \
    'o == {"op": "get", "key": "5000", "status": "ERROR"}'
runj set 5000 héllo 1700000000000
jexpect "json: set of an absent key: SUCCESS, exit 0" 0 \
    'o == {"op": "set", "key": "5000", "status": "SUCCESS"}'
runj set 5000 other
jexpect "json: set of a present key: ERROR with the value, exit 1" 1 \
    'o["status"] == "ERROR" and o["version"] == 1 and o["data"] == "héllo"'
OUT=$("$CLI" -a "$ADDR" --output=json get 0x1388 2>"$WORK/json.err")
RC=$?
jexpect "json (--output=json): get: every field, the key in decimal" 0 \
    'list(o) == ["op", "key", "status", "version", "timestamp",
    "data_base64", "data"] and o["key"] == "5000" and
    o["version"] == 1 and o["timestamp"] == 1700000000000 and
    o["data"] == "héllo" and o["data_base64"] == b64("héllo".encode())'
runj tas 5000 7 x
jexpect "json: tas with a wrong version: ERROR_WV with the value, exit 5" 5 \
    'o["status"] == "ERROR_WV" and o["version"] == 1'
runj delv 5001 1
jexpect "json: delv of an absent key: ERROR_NE, exit 4" 4 \
    'o == {"op": "delv", "key": "5001", "status": "ERROR_NE"}'
runj tas 5000 1 "x:0a00" 1700000000001
jexpect "json: tas: SUCCESS with the previous value, exit 0" 0 \
    'o["status"] == "SUCCESS" and o["data"] == "héllo"'
runj del 5000
jexpect "json: control characters and NUL are UTF-8: data kept, escaped" 0 \
    'o["version"] == 2 and o["data"] == "\n\0" and
    o["data_base64"] == "CgA="'
runj get 123456789012345678901234567890123456789
jexpect "json: a key past 64 bits, in decimal" 1 \
    'o["key"] == "123456789012345678901234567890123456789"'
runj get -0x7a69
jexpect "json: a negative key" 1 'o["key"] == "-31337"'
runj health
jexpect "json: health: SERVING, exit 0" 0 \
    'o == {"op": "health", "status": "SERVING"}'
runj get
jexpect "json: usage error: USAGE with the usage, exit 2" 2 \
    'o == {"op": "get", "status": "USAGE", "message": "usage: get KEY"}'
runj get 12x
jexpect "json: a bad key: USAGE, exit 2" 2 \
    'o["status"] == "USAGE" and o["message"].startswith("bad KEY")'
runj frob
jexpect "json: an unknown command: USAGE, exit 2" 2 \
    'o["op"] == "frob" and o["status"] == "USAGE"'
runj get "0x$huge"
jexpect "json: a key over the server's limit: INVALID_ARGUMENT, exit 3" 3 \
    'o["status"] == "INVALID_ARGUMENT" and "message" in o'
runj member list
jexpect "json: member list of single-node kvdb: UNIMPLEMENTED, exit 3" 3 \
    'o["op"] == "member" and o["action"] == "list" and
    o["status"] == "UNIMPLEMENTED"'
OUT=$("$CLI" -a "127.0.0.1:$(free_port)" -o json --retry-time=0 get 5 \
    2>"$WORK/json.err")
RC=$?
jexpect "json: no server: UNAVAILABLE with a message, exit 3" 3 \
    'o["status"] == "UNAVAILABLE" and o["key"] == "5" and
    o["message"].startswith("cannot connect to")'
if [ ! -s "$WORK/json.err" ]; then
	ok "json: ...and nothing on standard error"
else
	not_ok "json: ...and nothing on standard error: $(cat "$WORK/json.err")"
fi
kill -STOP "$SERVER"
runj -t 200 --retry-time=0 get 5
kill -CONT "$SERVER"
jexpect "json: a server that does not answer: DEADLINE_EXCEEDED, exit 3" 3 \
    'o["status"] == "DEADLINE_EXCEEDED"'
cmds=$("$CLI" help | sed -n 's/^  \([a-z][a-z]*\).*/\1/p' | tr '\n' ' ')
runj help
jexpect "json: help lists the commands text help lists" 0 \
    "' '.join(c['name'] for c in o['commands']) == '${cmds% }'"
# Bytes that are not UTF-8, each stored and read back through one prompt
# fed by a pipe: no "data", the right base64, one line per command.
: >"$WORK/json.in"
k=7000
NONUTF8="ff00c0af c0af e282 eda080 edbfbf f4908080 f880808080 80"
for hex in $NONUTF8; do
	k=$((k + 1))
	echo "set $k x:$hex" >>"$WORK/json.in"
	echo "get $k" >>"$WORK/json.in"
done
printf '\nset 6000 x:f48fbfbf\nget 6000\nbad "quote\nquit\nget 6000\n' \
    >>"$WORK/json.in"
OUT=$("$CLI" -a "$ADDR" -o json <"$WORK/json.in" 2>"$WORK/json.err")
RC=$?
jexpect "json prompt: one line per command, none for an empty line" 0 \
    'len(objs) == 19 and o["status"] == "USAGE" and "op" not in o'
jexpect "json: bytes that are not UTF-8 (overlong, surrogate, past U+10FFFF, cut): base64 only" 0 \
    "all('data' not in g and g['data_base64'] == b64(bytes.fromhex(h))
    for g, h in zip(objs[1:16:2], '$NONUTF8'.split())) and
    all(s['status'] == 'SUCCESS' for s in objs[0:16:2])"
jexpect "json: U+10FFFF is UTF-8: data kept" 0 \
    'objs[17]["data"] == "\U0010ffff"'
# check: a line per test, then the counts.
runj check --keys 40 --concurrency 8
jexpect "json: check: a line per test, then PASS with the counts, exit 0" 0 \
    'o["status"] == "PASS" and o["failed"] == 0 and
    o["passed"] == len(objs) - 1 >= 20 and
    all(t["result"] == "ok" for t in objs[:-1]) and
    o["contention_successes"] > 0 and o["keys"] == 40'
if grep -q '^dsd-cli: check: contention: ' "$WORK/json.err"; then
	ok "json: check: its comments go to standard error"
else
	not_ok "json: check: its comments go to standard error"
fi
runj check --keys 0
jexpect "json: check with a bad flag: USAGE, exit 2" 2 \
    'o == {"op": "check", "status": "USAGE",
    "message": "check: --keys is 1 to 100000000"}'

# Retries and addresses against single-node kvdb.  A server stopped for a
# second: the call's attempts time out (-t 300) and are retried until it
# answers; with --retry-time=0 the first timeout is the answer.
run set 4000 "still here"
kill -STOP "$SERVER"
(sleep 1; kill -CONT "$SERVER") &
CONT=$!
runa "$ADDR" -t 300 get 4000
wait "$CONT"
expect "a server stopped for 1 s: the get is retried until it answers" 0 \
    '^data: still here$'
if [ "$MS" -ge 900 ]; then
	ok "...and it did wait for the server ($MS ms)"
else
	not_ok "...and it did wait for the server (only $MS ms)"
fi
kill -STOP "$SERVER"
(sleep 1; kill -CONT "$SERVER") &
CONT=$!
runa "$ADDR" -t 300 --retry-time=0 get 4000
wait "$CONT"
expect "a server stopped, --retry-time=0: DEADLINE_EXCEEDED at once, exit 3" 3 \
    '^dsd-cli: /dsd\.kvdb\.v1\.KV/Get: DEADLINE_EXCEEDED: deadline exceeded \(client\)$'
if [ "$MS" -lt 900 ]; then
	ok "...within the one attempt's deadline ($MS ms)"
else
	not_ok "...within the one attempt's deadline (took $MS ms)"
fi
wait_for 10 "$CLI" -a "$ADDR" health
DEAD=127.0.0.1:$(free_port)
runa "$DEAD,$ADDR" get 4000
expect "-a with a dead first address and a live second: answered" 0 \
    '^data: still here$'
runa "$DEAD,$ADDR" --retry-time=0 get 4000
expect "...but not with --retry-time=0: the first address is the answer, exit 3" \
    3 "^dsd-cli: cannot connect to $DEAD: Connection refused$"
runa "$DEAD,127.0.0.1:$(free_port)" --retry-time=300 get 4000
expect "-a with two dead addresses: exit 3 after the retries" 3 \
    '^dsd-cli: cannot connect to 127\.0\.0\.1:[0-9]+: Connection refused \([0-9]+ attempts'
runa "$DEAD,$ADDR" check --keys 300
expect "check with a dead first address passes, moving both slots on" 0 \
    '^[0-9]+ passed, 0 failed$' \
    "^# cannot connect to $DEAD: Connection refused; trying $ADDR$" \
    '^# retries: [1-9][0-9]* of [0-9]+ calls retried .* 2 connection changes'
for c in "member list" "member add 7 127.0.0.1:7380 127.0.0.1:7379" \
    "member remove 7" "status" "status --digest"; do
	# shellcheck disable=SC2086
	run $c
	expect "$c against single-node kvdb: UNIMPLEMENTED, exit 3" 3 \
	    '^dsd-cli: /dsd\.kvdb\.v1\.Admin/[A-Za-z]+: UNIMPLEMENTED: '
done
run member add 0 127.0.0.1:7380 127.0.0.1:7379
expect "member add with id 0: exit 2" 2 "^dsd-cli: bad ID '0'"
run member add 7 nowhere 127.0.0.1:7379
expect "member add with a RAFTADDR without a port: exit 2" 2 \
    "^dsd-cli: bad RAFTADDR 'nowhere'"
run member add 7 localhost:7380 127.0.0.1:7379
expect "member add with a RAFTADDR that is a name, not IPv4: exit 2" 2 \
    "^dsd-cli: bad RAFTADDR 'localhost:7380': IPV4:PORT$"
run member add 7 127.0.0.1:70000 127.0.0.1:7379
expect "member add with a port past 65535: exit 2" 2 \
    "^dsd-cli: bad RAFTADDR '127.0.0.1:70000': the port is 1 to 65535$"
run member frob
expect "member with an unknown subcommand: usage, exit 2" 2 '^usage: member list$'
run status --bogus
expect "status with an unknown flag: usage, exit 2" 2 '^usage: status'
run --retry-time=-1 get 1
expect "--retry-time=-1: exit 2" 2 'retry-time takes milliseconds'
OUT=$("$CLI" -a "$ADDR,,$ADDR" get 1 2>&1)
RC=$?
expect "-a with an empty address in the list: exit 2" 2 'empty address'

# The interactive prompt, driven through a pipe: quoting, and a restart of
# the server between commands and while it is down.
mkfifo "$WORK/in"
"$CLI" -a "$ADDR" --retry-time=300 <"$WORK/in" >"$WORK/prompt.out" \
    2>"$WORK/prompt.err" &
PROMPT=$!
exec 3>"$WORK/in"
echo 'set 3000 "quoted words" 1700000000000' >&3
echo "set 3001 'single quoted' 1700000000000" >&3
echo 'set 3002 back\ slash 1700000000000' >&3
wait_for 10 grep -q 'value: none' "$WORK/prompt.out"
sleep 0.3
stop_server
start_server || not_ok "the server restarts"
echo 'get 3000' >&3
wait_for 10 grep -q 'data: quoted words' "$WORK/prompt.out"
stop_server
echo 'get 3001' >&3
wait_for 10 grep -q 'cannot connect' "$WORK/prompt.err"
start_server || not_ok "the server restarts"
echo 'get 3001' >&3
echo 'get 3002' >&3
echo 'set 3003 "unterminated' >&3
echo 'quit' >&3
exec 3>&-
wait "$PROMPT"
RC=$?
PROMPT=
OUT=$(cat "$WORK/prompt.out" "$WORK/prompt.err")
expect "prompt: quoting with double quotes, single quotes, backslash" 0 \
    '^data: quoted words$' '^data: single quoted$' '^data: back slash$'
expect "prompt: a restart between commands reconnects without a failed call" \
    0 "^dsd-cli: connection to $ADDR was lost: .*; reconnecting$"
expect "prompt: with the server down, a clear message after the retries" 0 \
    "^dsd-cli: cannot connect to $ADDR: Connection refused \\([0-9]+ attempts in [0-9]+ ms\\)$"
expect "prompt: the next command reconnects, and the data survived" 0 \
    '^data: back slash$'
expect "prompt: an unmatched quote is reported" 0 'unmatched quote'
n=$(grep -c '^data: ' "$WORK/prompt.out")
if [ "$n" -eq 3 ]; then
	ok "prompt: every get after a reconnect answered"
else
	not_ok "prompt: every get after a reconnect answered ($n of 3)"
fi

# The batteries: once, then ten runs at once sharing a contention key.
run check --keys 1000
expect "check: every battery passes" 0 '^[0-9]+ passed, 0 failed$'
printf '%s\n' "$OUT" | grep '^not ok' | head -n 5
SHARED=0x7fffffffffff0001
pids=
for i in 0 1 2 3 4 5 6 7 8 9; do
	"$CLI" -a "$ADDR" -t 30000 check --keys 1000 \
	    --base $((i * 100000 + 5000000)) --shared "$SHARED" \
	    >"$WORK/check.$i" 2>&1 &
	pids="$pids $!"
done
checks_pass "ten parallel checks with distinct --base all pass" \
    "$WORK"/check.*
sum=$(contention_sum "$WORK"/check.*)
run get "$SHARED"
expect "shared contention key: version is 1 + the successes of all ten" \
    0 "^version: $((sum + 1))$" "^data: $((sum + 1))$"

# A run whose server dies under it, and does not come back within the
# retry time, reports what it saw and exits 3.
"$CLI" -a "$ADDR" --retry-time=1000 check --keys 200000 --concurrency 200 \
    >"$WORK/cut.out" 2>&1 &
CUT=$!
wait_for 10 grep -q '^# check of' "$WORK/cut.out"
sleep 0.5
stop_server KILL
wait "$CUT"
RC=$?
OUT=$(cat "$WORK/cut.out")
expect "check: a server killed mid-run is reported, exit 3" 3 \
    "^not ok - .*(connection lost to|cannot connect to) $ADDR" \
    'got no answer within the retry time' \
    "^# connection to $ADDR was lost: .*; reconnecting$" \
    '^[0-9]+ passed, [1-9][0-9]* failed$'

# No server at all.
run --retry-time=0 get 1
expect "server down, no retries: 'cannot connect ... Connection refused', exit 3" \
    3 "^dsd-cli: cannot connect to $ADDR: Connection refused$"
runa "$ADDR" --retry-time=400 get 1
expect "server down: the retries are counted in the message, exit 3" 3 \
    "^dsd-cli: cannot connect to $ADDR: Connection refused \\([2-9][0-9]* attempts in [0-9]+ ms\\)$"
# No retry starts later than 400 ms after the first attempt; the doubling
# delays (20, 40, 80... ms) make the last one start between 150 and 400.
if [ "$MS" -ge 150 ] && [ "$MS" -lt 2000 ]; then
	ok "server down: --retry-time=400 gives up within it ($MS ms)"
else
	not_ok "server down: --retry-time=400 gives up within it" \
	    "(took $MS ms)"
fi
run --retry-time=300 check
expect "check with the server down: exit 3" 3 "cannot connect to $ADDR"

# dsd-bench over two servers, as over the nodes of a cluster: the
# connections spread over both, and when one is killed the run goes on to
# its end on the other, counting the cut calls as errors by status.
BENCH=${BENCH:-$PWD/tools/dsd-bench}
BA=127.0.0.1:$(free_port)
BB=127.0.0.1:$(free_port)
"$DSD" --mode=kvdb --listen "$BA" --data-dir "$WORK/ba" 2>>"$WORK/bench.log" &
BENCH_A=$!
"$DSD" --mode=kvdb --listen "$BB" --data-dir "$WORK/bb" 2>>"$WORK/bench.log" &
BENCH_B=$!
wait_for 20 "$CLI" -a "$BA" health && wait_for 20 "$CLI" -a "$BB" health
"$BENCH" -a "$BA,$BB" -c 4 -s 8 -d 3 --mix set=50,get=50 \
    >"$WORK/bench.out" 2>"$WORK/bench.err" &
BP=$!
sleep 1.2
kill -9 "$BENCH_A"
wait "$BENCH_A" 2>/dev/null
BENCH_A=
wait "$BP"
RC=$?
OUT=$(cat "$WORK/bench.out" "$WORK/bench.err")
expect "dsd-bench: a server killed mid-run, the run goes on, exit 1" 1 \
    "^target: +kvdb at $BA,$BB$" \
    "^dsd-bench: connection [02] to $BA lost: " \
    '^connections: 2 lost, [2-9][0-9]* reopened$' \
    '^summary: .* secs=(2\.[5-9]|3\.)[0-9]* .*conns_lost=2$'
errs=$(printf '%s\n' "$OUT" |
    sed -n 's/^summary: .* unknown=\([0-9]*\) deadline=\([0-9]*\) unavailable=\([0-9]*\).*/\1 \2 \3/p')
set -- $errs
if [ $# -eq 3 ] && [ $(($1 + $2 + $3)) -gt 0 ] &&
    printf '%s\n' "$OUT" | grep -Eq '^by status: +\((UNKNOWN|UNAVAILABLE|DEADLINE_EXCEEDED) [0-9]+'; then
	ok "dsd-bench: the cut calls are counted by status ($errs)"
else
	not_ok "dsd-bench: the cut calls are counted by status ('$errs')"
fi
OUT=$("$BENCH" -q -a "127.0.0.1:$(free_port),$BB" -c 2 -s 4 -n 2000 2>&1)
RC=$?
expect "dsd-bench: a dead first address is passed over, exit 0" 0 \
    '^summary: target=kvdb ok=2000 .*errors=0 '
OUT=$("$BENCH" -q -a "$BB" -n 10 --target etcd --etcd-read=fast 2>&1)
RC=$?
expect "dsd-bench: --etcd-read takes linearizable or serializable, exit 2" 2 \
    'linearizable or serializable'
# --json: a line per second, then the summary, every field there.
"$BENCH" --json -q -a "$BB" -c 2 -s 4 -d 2 --mix set=50,get=40,tas=10 \
    --base 0x7000000000 \
    >"$WORK/bench.json" 2>"$WORK/bench.err"
RC=$?
OUT=$(cat "$WORK/bench.json")
jexpect "dsd-bench --json: interval lines t=1, 2..., then one summary" 0 \
    '[x["type"] for x in objs] == ["interval"] * (len(objs) - 1) +
    ["summary"] and 1 <= len(objs) - 1 <= 3 and
    [x["t"] for x in objs[:-1]] == list(range(1, len(objs)))'
jexpect "dsd-bench --json: each interval: ops, errors, p50/p99/p999/max/mean" 0 \
    'all(set(x) == {"type", "t", "ops", "errors", "p50_ms", "p99_ms",
    "p999_ms", "max_ms", "mean_ms", "inflight", "errors_by_status"} and
    x["ops"] > 0 and x["errors"] == 0 and
    0 < x["p50_ms"] <= x["p99_ms"] <= x["p999_ms"] <= x["max_ms"]
    for x in objs[:-1])'
jexpect "dsd-bench --json: the summary: parameters, throughput, latency, statuses, errors" 0 \
    'o["target"] == "kvdb" and o["addr"] == "'"$BB"'" and
    o["params"]["connections"] == 2 and o["params"]["streams"] == 4 and
    o["params"]["mix"] == {"set": 50, "get": 40, "tas": 10} and
    o["params"]["duration_s"] == 2 and
    1.9 < o["secs"] < 3 and o["answered"] >= sum(x["ops"] for x in objs[:-1])
    and abs(o["throughput"] - o["answered"] / o["secs"]) < 0.01 * o["throughput"] + 1
    and o["latency"]["p50_ms"] <= o["latency"]["p99_ms"] <= o["latency"]["p999_ms"]
    and sorted(o["ops"]) == ["get", "set", "tas"]
    and sum(sum(v["statuses"].values()) for v in o["ops"].values()) == o["answered"]
    and o["ops"]["set"]["statuses"] == {"SUCCESS": o["ops"]["set"]["answered"]}
    and o["errors"] == {"total": 0, "by_status": {}, "undecodable": 0}
    and o["connections"] == {"lost": 0, "reopened": 0}'
OUT=$("$BENCH" --help 2>&1)
RC=$?
expect "dsd-bench --help: the options, exit 0" 0 '^  --json ' \
    '^  -c, --connections=N '
kill "$BENCH_B"
wait "$BENCH_B" 2>/dev/null
BENCH_B=

# Against the fake cluster node.  The session metadata: a one-shot run is
# a session of its own, starting at seq 1; the prompt keeps one session.
if ! /usr/bin/python3 -c 'import grpc' 2>/dev/null; then
	not_ok "python3-grpcio is needed for the fake cluster node (tools/setup)"
	finish
	exit 1
fi
start_fake
FADDR=127.0.0.1:$FPORT
runa "$FADDR" set 1 one
runa "$FADDR" get 1
expect "fake node: set and get" 0 '^data: one$'
is "every KV call carried dsd-client-id and dsd-seq, well formed" \
    "$(fake_stat 'd.get("missing_md", 0) + d.get("bad_md", 0)')" 0
is "two one-shot runs: two client ids, each at seq 1" \
    "$(fake_stat '[r[2] for r in d["recent"][-2:]] + [len(set(r[1] for r in d["recent"][-2:]))]')" \
    "[1, 1, 2]"
printf 'set 2 two\nget 2\ndel 2\n' | "$CLI" -a "$FADDR" >/dev/null 2>&1
is "the prompt: one client id, seq 1, 2, 3" \
    "$(fake_stat '[r[2] for r in d["recent"][-3:]] + [len(set(r[1] for r in d["recent"][-3:]))]')" \
    "[1, 2, 3, 1]"

# Check: one client id per call slot (--concurrency 20), one call at a
# time on each, seqs in order.
ids0=$(fake_stat 'd["ids"]')
runa "$FADDR" check --keys 500 --concurrency 20
expect "fake node: check passes" 0 '^[0-9]+ passed, 0 failed$'
is "check: 20 calls in flight use 20 client ids" \
    "$(fake_stat 'd["ids"]')" $((ids0 + 20))
is "check: no client id had two calls out at once, no seq out of order" \
    "$(fake_stat 'd.get("overlap", 0) + d.get("seq_gaps", 0) + d.get("stale", 0)')" 0
stop_fake

# Faults: UNAVAILABLE before applying, UNKNOWN after (a reply lost), an
# answer after the deadline (-t 300).  Every retry of a lost reply must
# have been answered from the server's memory of the session, and check
# passes: exactly-once.
start_fake --faults 0.02 --seed 3
FADDR=127.0.0.1:$FPORT
runa "$FADDR" -t 300 check --keys 500 --concurrency 20
expect "faults with deduplication: check passes" 0 \
    '^[0-9]+ passed, 0 failed$' \
    '^# retries: [1-9][0-9]* of [0-9]+ calls retried \(UNKNOWN [1-9][0-9]*, DEADLINE_EXCEEDED [1-9][0-9]*, UNAVAILABLE [1-9][0-9]* attempts\)'
is "faults: replies were lost (UNKNOWN after applying, or too late)" \
    "$(fake_stat 'd.get("injected_unknown", 0) > 0 and d.get("injected_late", 0) > 0')" \
    True
is "faults: each lost reply came back by a retry with its id and seq, from memory" \
    "$(fake_stat 'd["lost_unanswered"]')" 0
stop_fake
# Without deduplication a retried write is applied twice, and check must
# say so: retries never make a wrong answer pass.
start_fake --faults 0.02 --seed 3 --no-dedup
FADDR=127.0.0.1:$FPORT
runa "$FADDR" -t 300 check --keys 500 --concurrency 20
expect "faults without deduplication: check fails on the doubled writes" 1 \
    '^not ok - stress: set every key: SUCCESS: [0-9]+ of 500 replies were wrong$' \
    '^[0-9]+ passed, [1-9][0-9]* failed$'
stop_fake

# A node killed under check (its connections reset, its port closed):
# check, given two addresses, passes straight through.
start_fake
"$CLI" -a "127.0.0.1:$FRONT1,127.0.0.1:$FRONT2" check --keys 3000 \
    --concurrency 50 >"$WORK/kill.out" 2>&1 &
CK=$!
wait_for 30 grep -q '^ok - stress: set every key' "$WORK/kill.out"
kill -USR1 "$FAKE"
wait "$CK"
RC=$?
OUT=$(cat "$WORK/kill.out")
expect "check through the kill of the node it talks to: passes" 0 \
    '^[0-9]+ passed, 0 failed$' \
    "^# connection to 127.0.0.1:$FRONT1 was lost: .*; trying 127.0.0.1:$FRONT2$" \
    '^# retries: [1-9][0-9]* of [0-9]+ calls retried'

# Admin: the output, and what is retried.
FADDR=127.0.0.1:$FPORT
runa "$FADDR" member list
expect "member list: one member a line, the leader marked" 0 \
    '^1 127\.0\.0\.1:9001 127\.0\.0\.1:7001 voter leader$' \
    '^2 127\.0\.0\.1:9002 127\.0\.0\.1:7002 standby$' '^3 - - spare$'
is "member list: three lines" "$(printf '%s\n' "$OUT" | wc -l)" 3
runa "$FADDR" member add 1001 127.0.0.1:9101 127.0.0.1:7101
expect "member add cut with UNKNOWN: reported, exit 3" 3 \
    '^dsd-cli: /dsd\.kvdb\.v1\.Admin/MemberAdd: UNKNOWN: '
is "...and not retried (it may have been applied)" \
    "$(fake_stat 'd["admin"].get("MemberAdd 1001")')" 1
runa "$FADDR" member add 1014 127.0.0.1:9114 127.0.0.1:7114
expect "member add refused with UNAVAILABLE: retried, the new membership" 0 \
    '^1014 127\.0\.0\.1:9114 127\.0\.0\.1:7114 voter$'
is "...in two calls" "$(fake_stat 'd["admin"].get("MemberAdd 1014")')" 2
runa "$FADDR" member remove 1001
expect "member remove cut with UNKNOWN: exit 3" 3 'MemberRemove: UNKNOWN: '
is "...and not retried" "$(fake_stat 'd["admin"].get("MemberRemove 1001")')" 1
runa "$FADDR" member remove 2
expect "member remove: the membership without it" 0 '^1 .* voter leader$'
case $OUT in
*"2 127.0.0.1:9002"*) not_ok "...member 2 is gone from it" ;;
*) ok "...member 2 is gone from it" ;;
esac
runa "$FADDR" status
expect "status: name: value lines, retried after UNKNOWN" 0 '^id: 2$' \
    '^state: follower$' '^leader_id: 1$' '^term: 7$' '^commit_index: 120$' \
    '^applied_index: 119$' '^last_index: 121$' '^sessions: [0-9]+$' \
    '^raft_address: 127\.0\.0\.1:9002$' '^client_address: 127\.0\.0\.1:7002$'
case $OUT in
*digest*) not_ok "status: no digest unless asked" ;;
*) ok "status: no digest unless asked" ;;
esac
is "...in two calls" "$(fake_stat 'd["admin"].get("Status")')" 2
runa "$FADDR" status --digest
expect "status --digest: the digest in hex" 0 '^digest: 00000000deadbeef$'
OUT=$("$CLI" -a "$FADDR" -o json member list 2>"$WORK/json.err")
RC=$?
jexpect "json: member list: the members, the leader's id, empty addresses as \"\"" 0 \
    'o["status"] == "OK" and o["action"] == "list" and o["leader_id"] == 1
    and o["members"][0] == {"id": 1, "raft_address": "127.0.0.1:9001",
    "client_address": "127.0.0.1:7001", "role": "voter", "leader": True}
    and {"id": 3, "raft_address": "", "client_address": "", "role": "spare",
    "leader": False} in o["members"]'
OUT=$("$CLI" -a "$FADDR" -o json status --digest 2>"$WORK/json.err")
RC=$?
jexpect "json: status --digest: the fields as integers and strings, the digest" 0 \
    'o["status"] == "OK" and o["id"] == 2 and o["state"] == "follower" and
    o["leader_id"] == 1 and o["term"] == 7 and o["commit_index"] == 120 and
    o["raft_address"] == "127.0.0.1:9002" and o["digest"] == "00000000deadbeef"'
stop_fake

# A real cluster, when the build has kvdb-replicated (libraft).
if ! "$DSD" --help 2>&1 | grep -q 'kvdb-replicated'; then
	finish
	exit
fi
for i in 1 2 3; do
	eval "RA$i=127.0.0.1:$(free_port) CA$i=127.0.0.1:$(free_port)"
done
SPEC="1=$RA1/$CA1,2=$RA2/$CA2,3=$RA3/$CA3"
CALL="$CA1,$CA2,$CA3"
# node I: start node I of the cluster; its pid in NP<I>.
node() {
	"$DSD" --mode=kvdb-replicated --node-id="$1" --cluster="$SPEC" \
	    --data-dir="$WORK/node$1" --election-timeout=300 \
	    --heartbeat-timeout=50 >>"$WORK/node$1.log" 2>&1 &
	eval "NP$1=$!"
	NODES="$NODES $!"
}
# leader: the leader's id, from member list (empty while there is none).
leader() {
	"$CLI" -a "$CALL" --retry-time=2000 member list 2>/dev/null |
	    awk '$NF == "leader" { print $1 }'
}
wait_leader() {
	wait_for 20 sh -c "'$CLI' -a '$CALL' --retry-time=2000 member list |
	    grep -q ' leader\$'"
	LEADER=$(leader)
}
# the_others I: the client addresses of the nodes other than I.
the_others() {
	o=
	for j in 1 2 3; do
		[ "$j" = "$1" ] && continue
		eval "o=\${o:+\$o,}\$CA$j"
	done
	echo "$o"
}
node 1
node 2
node 3
wait_leader
if [ -n "$LEADER" ]; then
	ok "kvdb-replicated: three nodes elect leader $LEADER"
else
	not_ok "kvdb-replicated: three nodes elect a leader"
	tail -n 5 "$WORK"/node*.log
	finish
	exit 1
fi
runa "$CALL" member list
expect "replicated: member list, three voters, one leader" 0 \
    "^1 $RA1 $CA1 voter( leader)?$" "^2 $RA2 $CA2 voter( leader)?$" \
    "^3 $RA3 $CA3 voter( leader)?$"
is "replicated: exactly one line marks the leader" \
    "$(printf '%s\n' "$OUT" | grep -c ' leader$')" 1
runa "$CA1" status
expect "replicated: status of node 1" 0 '^id: 1$' \
    '^state: (leader|follower)$' "^leader_id: $LEADER$" \
    "^client_address: $CA1$"

# check talks to node 1 (the first address); node 1 is killed mid-run.
"$CLI" -a "$CALL" check --keys 3000 >"$WORK/repl1.out" 2>&1 &
CK=$!
wait_for 60 grep -q '^ok - stress: set every key' "$WORK/repl1.out"
kill -9 "$NP1"
wait "$NP1" 2>/dev/null
wait "$CK"
RC=$?
OUT=$(cat "$WORK/repl1.out")
expect "replicated: check passes through a kill -9 of the node it talks to" \
    0 '^[0-9]+ passed, 0 failed$' \
    "^# connection to $CA1 was lost: .*; trying $CA2$"
node 1
wait_leader

# check talks to one follower only; the leader is killed mid-run.
F=1
[ "$LEADER" = 1 ] && F=2
eval "FA=\$CA$F LP=\$NP$LEADER"
"$CLI" -a "$FA" check --keys 3000 >"$WORK/repl2.out" 2>&1 &
CK=$!
wait_for 60 grep -q '^ok - stress: set every key' "$WORK/repl2.out"
kill -9 "$LP"
wait "$LP" 2>/dev/null
wait "$CK"
RC=$?
OUT=$(cat "$WORK/repl2.out")
expect "replicated: check of follower $F passes through a kill -9 of leader $LEADER" \
    0 '^[0-9]+ passed, 0 failed$' '^# retries: [1-9]'
node "$LEADER"
wait_leader

# Three checks at once, one through each node (the others after it in -a),
# sharing a contention key, while the leader is killed and restarted: all
# pass, and the shared key counts every success once.
SHARED=0x7fffffffffff0002
pids=
for j in 1 2 3; do
	eval "a=\$CA$j"
	others=$(for k in 1 2 3; do [ "$k" = "$j" ] || eval "printf ',%s' \$CA$k"; done)
	"$CLI" -a "$a$others" check --keys 3000 --base $((j * 1000000 + 9000000)) \
	    --shared "$SHARED" >"$WORK/repl3.$j" 2>&1 &
	pids="$pids $!"
done
wait_for 60 grep -q '^ok - stress: set every key' "$WORK/repl3.1"
eval "LP=\$NP$LEADER"
kill -9 "$LP"
wait "$LP" 2>/dev/null
sleep 1
node "$LEADER"
checks_pass "replicated: three checks at once, one per node, pass through a kill -9 and restart of leader $LEADER" \
    "$WORK"/repl3.*
wait_leader
sum=$(contention_sum "$WORK"/repl3.*)
OUT=$("$CLI" -a "$CALL" get "$SHARED" 2>&1)
RC=$?
expect "replicated: the shared key's version is 1 + the successes of all three" \
    0 "^version: $((sum + 1))$"

# Every node ends with the same state: equal digests at equal indexes.
same=no
for try in 1 2 3 4 5 6 7 8 9 10; do
	d=$(for j in 1 2 3; do
		eval "a=\$CA$j"
		"$CLI" -a "$a" status --digest |
		    sed -n 's/^\(applied_index\|digest\): //p' | tr '\n' ' '
		echo
	done | sort -u)
	if [ "$(printf '%s\n' "$d" | wc -l)" -eq 1 ] &&
	    [ -n "$(printf '%s' "$d" | tr -d ' ')" ]; then
		same=yes
		break
	fi
	sleep 0.5
done
is "replicated: the three nodes reach the same applied index and digest" \
    "$same" yes

finish
