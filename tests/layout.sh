#!/bin/sh
# The source tree's layers: each folder of src/ may include only its own
# headers and those of the layers below it, so that the core knows no
# subsystem, the transport knows no key-value code, and the key-value code
# knows no Maelstrom.  modes/ and src/dsd.c sit on top and may use all.
cd "$(dirname "$0")/.." || exit 1
. tests/lib.sh

# allowed LAYER: the folders a file in src/LAYER may include from.
allowed() {
	case $1 in
	core)		echo "core" ;;
	maelstrom)	echo "core maelstrom" ;;
	net)		echo "core net" ;;
	kv)		echo "core net kv" ;;
	esac
}

for layer in core maelstrom net kv; do
	ok_dirs=$(allowed $layer)
	bad=
	for f in src/$layer/*.c src/$layer/*.h; do
		[ -f "$f" ] || continue
		case $f in *.pb-c.[ch]) continue ;; esac
		for inc in $(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f"); do
			case $inc in
			config.h) continue ;;
			*/*) dir=${inc%%/*} ;;
			*) bad="$bad $f:$inc(unqualified)"; continue ;;
			esac
			case " $ok_dirs " in
			*" $dir "*) ;;
			*) bad="$bad $f:$inc" ;;
			esac
		done
	done
	if [ -z "$bad" ]; then
		ok "src/$layer includes only from: $ok_dirs"
	else
		not_ok "src/$layer includes upward:$bad"
	fi
done

# Nothing but main() lives at the top of src/.
stray=$(ls src/*.c src/*.h 2>/dev/null | grep -v '^src/dsd\.c$')
[ -z "$stray" ] && ok "src/ holds only dsd.c at its top" ||
    not_ok "files at the top of src/ outside a layer: $stray"
# Shown to fail: a core file that included a kv header would be caught.
tmp=$(mktemp -d)
mkdir -p "$tmp/src/core" "$tmp/tests"
cp tests/lib.sh "$tmp/tests/"
sed -n '1,/^done$/p' "$0" > "$tmp/tests/layout.sh"
printf '#include "kv/store.h"\n' > "$tmp/src/core/bad.c"
if sh "$tmp/tests/layout.sh" 2>&1 | grep -q "^not ok - src/core includes upward: src/core/bad.c:kv/store.h"; then
	ok "an upward include is reported (self-test)"
else
	not_ok "an upward include is reported (self-test)"
fi
rm -rf "$tmp"
finish
