#!/bin/sh
# Build the libFuzzer targets with ASan+UBSan (clang, libclang-rt-14-dev),
# replay each seed corpus, then fuzz each target for SECONDS (default 20)
# in a scratch corpus.  Prints one line per target and "N passed, M
# failed"; a crash leaves its input in tests/fuzz/build/ and fails.
#
#   tests/fuzz/run.sh [SECONDS]        # from the top of a configured tree
#   FUZZ_TARGETS="rsm" tests/fuzz/run.sh 3600   # one target, an hour
set -u
cd "$(dirname "$0")/../.." || exit 1
SECS=${1:-20}
B=tests/fuzz/build
mkdir -p "$B"
CC=${FUZZ_CC:-clang}
if ! command -v "$CC" >/dev/null; then
	echo "SKIP: no $CC (tools/setup installs clang and libclang-rt-14-dev)"
	exit 77
fi
PKGS="gmp libevent libevent_openssl openssl jansson libnghttp2 libprotobuf-c raft libuv"
FLAGS="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
    -I. -Isrc $(pkg-config --cflags $PKGS)"
LIBS="$(pkg-config --libs $PKGS) -lpthread"
CORE="src/core/log.c src/core/xmalloc.c src/core/u64map.c
    src/core/metrics.c src/core/listen.c"
KV="src/kv/store.c src/kv/rsm.c src/kv/snap.c src/kv/wal.c $CORE"
TARGETS="${FUZZ_TARGETS:-store_op rsm mael grpc datadir flags}"

# sources TARGET: the tree's files a target links.
sources() {
	case $1 in
	mael)	echo "src/maelstrom/maelstrom.c $CORE" ;;
	grpc)	# the whole dsd but its main()
		ls src/core/*.c src/net/*.c src/kv/*.c src/maelstrom/*.c \
		    modes/*.c ;;
	flags)	# as grpc, but the target includes kvdb-replicated.c
		ls src/core/*.c src/net/*.c src/kv/*.c src/maelstrom/*.c \
		    modes/*.c | grep -v '^modes/kvdb-replicated.c$' ;;
	*)	echo "$KV" ;;
	esac
}

# link_extra TARGET: what a target adds to the link: fuzz_flags catches
# fatal() to report it with the input.
link_extra() {
	case $1 in
	flags)	echo "-Wl,--wrap=fatal -Wl,--wrap=fatalx" ;;
	esac
}

pass=0
fail=0
for t in $TARGETS; do
	# shellcheck disable=SC2086,SC2046
	if ! $CC $FLAGS -o "$B/fuzz_$t" "tests/fuzz/fuzz_$t.c" $(sources "$t") $LIBS $(link_extra "$t") \
	    2>"$B/$t.build.log"; then
		echo "not ok - fuzz_$t: build failed ($B/$t.build.log)"
		fail=$((fail + 1))
		continue
	fi
	rm -rf "$B/corpus_$t"
	mkdir -p "$B/corpus_$t"
	# The seeds first, as regression inputs, then new inputs for a while.
	if "$B/fuzz_$t" -runs=0 "tests/fuzz/corpus/$t" >"$B/$t.replay.log" \
	    2>&1 &&
	    "$B/fuzz_$t" -max_total_time="$SECS" -max_len=4096 -print_final_stats=1 \
	    -artifact_prefix="$B/$t-" "$B/corpus_$t" "tests/fuzz/corpus/$t" \
	    >"$B/$t.log" 2>&1; then
		execs=$(sed -n 's/.*stat::number_of_executed_units: *//p' \
		    "$B/$t.log")
		cov=$(grep -o 'cov: [0-9]*' "$B/$t.log" | tail -1)
		echo "ok - fuzz_$t: seeds replayed, ${execs:-?} runs in" \
		    "${SECS} s, $cov, no crash"
		pass=$((pass + 1))
	else
		echo "not ok - fuzz_$t: crashed (logs $B/$t.replay.log," \
		    "$B/$t.log)"
		tail -n 30 "$B/$t.replay.log" "$B/$t.log" | sed 's/^/    /'
		fail=$((fail + 1))
	fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
