#!/bin/bash
# The bash completion of dsd, dsd-cli and dsd-bench (completion/dsd), with
# bash-completion loaded as an interactive shell has it: bash-completion's
# loader finds it under each program's name, and a TAB after a partial
# word offers what --help of the programs built here lists (modes, flags,
# commands, choices).  The programs are put on PATH under their installed
# names, so the completion runs them as it would after make install.
cd "$(dirname "$0")/.." || exit 1
. tests/lib.sh

BASH_COMPLETION=${BASH_COMPLETION:-/usr/share/bash-completion/bash_completion}
if [ ! -r "$BASH_COMPLETION" ]; then
	not_ok "bash-completion is installed (tools/setup installs it)"
	finish
	exit 1
fi
WORK=$(mktemp -d /tmp/dsd-completion.XXXXXX) || exit 1
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/bin" "$WORK/completions"
ln -s "$PWD/src/dsd" "$WORK/bin/dsd"
ln -s "$PWD/tools/dsd-cli" "$WORK/bin/dsd-cli"
ln -s "$PWD/tools/dsd-bench" "$WORK/bin/dsd-bench"
# The layout make install makes: the file, and links under the other names.
cp completion/dsd "$WORK/completions/dsd"
ln -s dsd "$WORK/completions/dsd-cli"
ln -s dsd "$WORK/completions/dsd-bench"
PATH=$WORK/bin:$PATH
export BASH_COMPLETION_USER_DIR=$WORK

# shellcheck disable=SC1090
. "$BASH_COMPLETION"

for p in dsd dsd-cli dsd-bench; do
	_completion_loader "$p" >/dev/null 2>&1
	if complete -p "$p" 2>/dev/null | grep -q -- '-F _dsd'; then
		ok "bash-completion loads the completion of $p by its name"
	else
		not_ok "bash-completion loads the completion of $p by its name"
	fi
done

# tab LINE: COMPREPLY, sorted, one line, for a TAB at the end of LINE, as
# bash would call the completion function of its first word.
tab() {
	local line=$1 fn
	COMP_LINE=$line
	COMP_POINT=${#line}
	read -ra COMP_WORDS <<<"$line"
	[[ $line == *' ' ]] && COMP_WORDS+=("")
	COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
	COMPREPLY=()
	fn=$(complete -p "${COMP_WORDS[0]}" | sed -n 's/.*-F \([^ ]*\) .*/\1/p')
	# compopt only works inside a real completion; its complaint is noise.
	"$fn" "${COMP_WORDS[0]}" "${COMP_WORDS[COMP_CWORD]}" \
	    "${COMP_WORDS[COMP_CWORD - 1]}" 2>/dev/null
	printf '%s\n' "${COMPREPLY[@]}" | sort | tr '\n' ' ' | sed 's/ $//'
}

# is_tab LINE WANT: the completions of LINE are exactly WANT (sorted).
is_tab() {
	local got
	got=$(tab "$1")
	if [ "$got" = "$2" ]; then
		ok "'$1<TAB>' offers: $2"
	else
		not_ok "'$1<TAB>' offers '$got', wanted '$2'"
	fi
}

# has_tab LINE WORD...: the completions of LINE include every WORD.
has_tab() {
	local line=$1 got w
	shift
	got=" $(tab "$line") "
	for w in "$@"; do
		case $got in
		*" $w "*) ;;
		*) not_ok "'$line<TAB>' offers $w (got:$got)"; return ;;
		esac
	done
	ok "'$line<TAB>' offers $*"
}

is_tab "dsd --mo" "--mode="
is_tab "dsd --mode=kv" "kvdb kvdb-replicated"
is_tab "dsd -m kv" "kvdb kvdb-replicated"
modes=$(dsd --help | sed -n '/^modes:/,/^$/p' |
    awk 'NF > 1 && !/^modes:/ { print $1 }' | sort | tr '\n' ' ')
is_tab "dsd --mode=" "${modes% }"
is_tab "dsd --mode=kvdb --fs" "--fsync="
is_tab "dsd --mode=kvdb --batch" ""
is_tab "dsd --mode=broadcast --batch" "--batch-clock= --batch-interval="
has_tab "dsd --" --config= --data-dir= --listen= --node-id= --help
mkdir -p "$WORK/datadir.d"
: >"$WORK/datafile"
is_tab "dsd --data-dir $WORK/data" "$WORK/datadir.d"
commands=$(dsd-cli help | sed -n 's/^  \([a-z][a-z]*\).*/\1/p' | sort |
    tr '\n' ' ')
is_tab "dsd-cli " "${commands% }"
is_tab "dsd-cli g" "get"
is_tab "dsd-cli x" ""
is_tab "dsd-cli -a 127.0.0.1:7379 -t 100 -o json s" "set status"
is_tab "dsd-cli -o " "json text"
is_tab "dsd-cli --output=j" "json"
has_tab "dsd-cli --" --output= --retry-time= --tls-ca= --help --version
is_tab "dsd-cli member " "add list remove"
is_tab "dsd-cli status --" "--digest"
is_tab "dsd-cli check --c" "--concurrency"
is_tab "dsd-cli help me" "member"
is_tab "dsd-cli set 1 @$WORK/datafi" "@$WORK/datafile"
has_tab "dsd-bench --" --connections= --streams= --json --mix= --target=
has_tab "dsd-bench -" -c -s -d -q
is_tab "dsd-bench --target=" "etcd kvdb"
is_tab "dsd-bench --etcd-read " "linearizable serializable"
finish
