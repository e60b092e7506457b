#!/bin/sh
# The command line and the man page: usage errors exit 2, and every mode
# and flag that --help lists is documented in man/dsd.8.
cd "$(dirname "$0")/.." || exit 1
. tests/lib.sh
MAN=man/dsd.8

check "--help exits 0" "$DSD" --help
check "--version prints the version" \
    sh -c "'$DSD' --version | grep -q '^dsd [0-9]'"
expect_status 2 "no mode is a usage error" "$DSD"
expect_status 2 "an unknown mode is a usage error" "$DSD" --mode=nope
expect_status 2 "an unknown flag is a usage error" \
    "$DSD" --mode=maelstrom-echo --nope
expect_status 2 "a stray argument is a usage error" \
    "$DSD" --mode=maelstrom-echo extra
expect_status 2 "a non-numeric value is a usage error" \
    "$DSD" --mode=maelstrom-echo --reply-deadline=soon
expect_status 2 "an out-of-range value is a usage error" \
    "$DSD" --mode=maelstrom-echo --max-line=1
check "the error names the unknown mode" \
    sh -c "'$DSD' --mode=nope 2>&1 | grep -q \"unknown mode 'nope'\""

modes=$("$DSD" --help | sed -n '/^modes:/,/^$/p' | awk 'NF > 1 && !/^modes:/ {print $1}')
[ -n "$modes" ] && ok "--help lists modes" || not_ok "--help lists modes"
maelstrom_modes=$("$DSD" --help | sed -n '/^modes:/,/^$/p' | awk '/Maelstrom/ {print $1}')
for m in $modes; do
	check "mode $m is documented in $MAN" grep -q "^\.It Cm $m\$" "$MAN"
done
for m in $maelstrom_modes; do
	check "Maelstrom mode $m starts and stops at end of input" \
	    timeout 10 sh -c "'$DSD' --mode=$m </dev/null >/dev/null"
done
# A server mode runs until SIGTERM and then exits 0.
dir=$(mktemp -d)
port=$(free_port)
"$DSD" --mode=kvdb --listen "127.0.0.1:$port" --data-dir "$dir" \
    </dev/null >/dev/null 2>&1 &
pid=$!
sleep 0.5
kill -TERM "$pid"
status=0
wait "$pid" || status=$?
[ "$status" -eq 0 ] && ok "kvdb stops with status 0 on SIGTERM" ||
    not_ok "kvdb stops with status 0 on SIGTERM (status $status)"
rm -rf "$dir"
# Settings that cannot work together stop start-up before the data
# directory is touched.
expect_status 1 "kvdb refuses --max-request-memory below one message" \
    "$DSD" --mode=kvdb --max-message=4194304 --max-request-memory=2000000 \
    --data-dir "$dir"
expect_status 1 "kvdb refuses --max-reply-memory below one message" \
    "$DSD" --mode=kvdb --max-message=4194304 --max-reply-memory=2000000 \
    --data-dir "$dir"
check "... saying why, and leaving no data directory behind" \
    sh -c "! test -e '$dir' && '$DSD' --mode=kvdb --max-request-memory=2000000 \
    --data-dir '$dir' 2>&1 | grep -q 'must hold one message'"
flags=$("$DSD" --help | grep -o -- '--[a-z][a-z-]*' | sort -u)
for f in $flags; do
	name=${f#--}
	check "flag $f is documented in $MAN" \
	    grep -q "Fl \\\\-$name\\( \\|\$\\)" "$MAN"
done
if command -v mandoc >/dev/null; then
	check "$MAN is clean under mandoc -Tlint" \
	    sh -c "mandoc -Tlint -Wwarning $MAN && test -z \"\$(mandoc -Tlint -Wwarning $MAN 2>&1)\""
else
	not_ok "mandoc is not installed (tools/setup installs it)"
fi
finish
