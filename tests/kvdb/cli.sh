#!/bin/sh
# dsd-cli against a real kvdb server: one-shot commands with their output
# and exit statuses, key and data forms, the server-down message, the
# prompt reconnecting after a restart, and the check batteries: one run,
# ten at once sharing a contention key, and a run whose server is killed.
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
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# run ARGS...: run dsd-cli against the server; output in OUT, status in RC.
run() {
	OUT=$("$CLI" -a "$ADDR" "$@" 2>&1)
	RC=$?
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
expect "tas with a wrong version: ERROR_WV, exit 1" 1 '^status: ERROR_WV$' \
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
expect "delv with a wrong version: ERROR_WV, exit 1" 1 '^status: ERROR_WV$'
run delv 1001 1
expect "delv of an absent key: ERROR_NE, exit 1" 1 '^status: ERROR_NE$' \
    '^value: none$'
run tas 1001 1 x
expect "tas of an absent key: ERROR_NE, exit 1" 1 '^status: ERROR_NE$'
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

# The interactive prompt, driven through a pipe: quoting, and a restart of
# the server between commands and while it is down.
mkfifo "$WORK/in"
"$CLI" -a "$ADDR" <"$WORK/in" >"$WORK/prompt.out" 2>"$WORK/prompt.err" &
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
expect "prompt: with the server down, a clear message" 0 \
    "^dsd-cli: cannot connect to $ADDR: Connection refused$"
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
failed=0
for p in $pids; do
	wait "$p" || failed=$((failed + 1))
done
if [ "$failed" -eq 0 ]; then
	ok "ten parallel checks with distinct --base all pass"
else
	not_ok "ten parallel checks with distinct --base all pass" \
	    "($failed failed)"
	grep -h '^not ok' "$WORK"/check.* | head -n 10
fi
sum=$(sed -n 's/^contention successes: \([0-9]*\)$/\1/p' "$WORK"/check.* |
    awk '{ s += $1 } END { print s + 0 }')
run get "$SHARED"
expect "shared contention key: version is 1 + the successes of all ten" \
    0 "^version: $((sum + 1))$" "^data: $((sum + 1))$"

# A run whose server dies under it reports what it saw and exits 3.
"$CLI" -a "$ADDR" check --keys 200000 --concurrency 200 \
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
    'calls were in flight and got no answer' '^[0-9]+ passed, [1-9][0-9]* failed$'

# No server at all.
run get 1
expect "server down: 'cannot connect ... Connection refused', exit 3" 3 \
    "^dsd-cli: cannot connect to $ADDR: Connection refused$"
run check
expect "check with the server down: exit 3" 3 "cannot connect to $ADDR"

finish
