#!/bin/sh
# The template unit of kvdb-replicated (conf/dsd-kvdb-replicated@.service.in)
# under a real systemd, in the container of container.sh, as unit.sh
# checks kvdb's unit.
#
# Installs the build, writes three settings files from the installed
# example (a three-node cluster on loopback) and checks: readiness of the
# three instances started at once (READY=1), a dynamic user and a state
# directory of each node's own, the sandbox of kvdb's unit, libraft's disk
# I/O under its system call filter (O_DIRECT, kernel AIO, fallocate, the
# libuv workers, snapshots) also with refused calls made fatal, each
# node's metrics page on a port of its own, dsd-cli's check batteries
# against every node, kvdb's unit running beside them,
# SIGKILL of the leader's instance (Restart=on-failure) while the cluster
# goes on serving, a clean stop (STOPPING=1, status 0), a restart of the
# whole cluster, a reboot with the three instances enabled, and the
# exposure score of "systemd-analyze security".  The nodes' state is on
# the work directory's file system (a disk, normally), not in the
# overlay's tmpfs, since libraft uses what that file system can do.
#
# usage: tests/systemd/replicated.sh        (as root; no network needed)
# Prints "ok - ..." / "not ok - ..." per check and "N passed, M failed";
# exits 0 if all passed, 1 if not, 77 ("SKIP: reason") if this machine
# cannot boot systemd isolated.  DSD_UNIT_KEEP, DSD_UNIT_TIMEOUT and
# DSD_UNIT_MAX_EXPOSURE as for unit.sh (container.sh).

# The checks are snippets eval()ed by t(), so single quotes are meant.
# shellcheck disable=SC2016,SC2034
# shellcheck source=tests/systemd/container.sh
. "$(dirname "$0")/container.sh"

T=dsd-kvdb-replicated
NODES="1 2 3"

# addr N: node N's gRPC address, as replicated.conf.example has it.
addr() {
	echo "127.0.0.1:738$1"
}

# cli N ARGS...: dsd-cli against node N, inside the container; a call
# whose outcome the transport left open is retried, exactly once by its
# session (dsd-cli(1), RETRIES).
cli() {
	cli_n=$1
	shift
	C dsd-cli -a "$(addr "$cli_n")" "$@"
}

# probe N ARGS...: the same, one attempt only (health, status: a node
# that is down does not answer).
probe() {
	probe_n=$1
	shift
	cli "$probe_n" --retry-time=0 "$@"
}

# units: the three instances.
units() {
	for n in $NODES; do
		printf '%s@%s.service\n' "$T" "$n"
	done
}

# others N: the nodes but N.
others() {
	for n in $NODES; do
		[ "$n" = "$1" ] || printf '%s\n' "$n"
	done
}

# each PREDICATE: "PREDICATE N" holds for every node N.  (t's snippets
# call this rather than loop: a "return" in a snippet would leave t()
# without a verdict.)
each() {
	for each_n in $NODES; do
		"$1" "$each_n" || return 1
	done
}

# pid N: node N's main PID.
pid() {
	C systemctl show -p MainPID --value "$T@$1"
}

# leader: "TERM NODE" of the node that leads, by dsd-cli status (the
# highest term of the nodes that say they lead).
leader() {
	for n in $NODES; do
		probe "$n" status 2>/dev/null | awk -v n="$n" '
		    $1 == "state:" { s = $2 } $1 == "term:" { t = $2 }
		    END { if (s == "leader") print t, n }'
	done | sort -n | tail -n 1
}

# wait_leader AFTER: wait (100 tries, 0.1 s apart) until a node leads in
# a term above AFTER; sets LT (term) and LN (node).
wait_leader() {
	LT=
	LN=
	i=0
	while [ $i -lt 100 ]; do
		l=$(leader)
		if [ -n "$l" ] && [ "${l% *}" -gt "$1" ]; then
			LT=${l% *}
			LN=${l#* }
			return 0
		fi
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

# serving N: node N's health says SERVING within 10 s.
serving() {
	wait_for 10 probe "$1" health
}

# inspect: what the container's /proc shows of each node's main process,
# in $W/procN: its status (with "Threads:"), "aio" if it has a kernel AIO
# context, and "fd PATH FLAGS" for each file it holds open in raft/.
inspect() {
	for n in $NODES; do
		C sh -c 'cat /proc/$1/status
		grep -q "/\[aio\]" /proc/$1/maps && echo aio
		cd /proc/$1/fd && for f in *; do
			case $(readlink $f) in
			*/raft/*) echo "fd $(readlink $f) $(sed -n \
			    "s/^flags:[[:space:]]*//p" ../fdinfo/$f)" ;;
			esac
		done' sh "$(pid "$n")" >"$W/proc$n" 2>&1
	done
}

# The predicates of each: "NAME N" holds for node N.

from_example() {
	grep -qx "node-id = $1" "$R/etc/dsd/replicated-$1.conf" &&
	    [ "$(diff "$R/etc/dsd/replicated.conf.example" \
	    "$R/etc/dsd/replicated-$1.conf" | grep -c '^>')" -le 4 ]
}

is_active() {
	[ "$(C systemctl is-active "$T@$1")" = active ]
}

listens() {
	probe "$1" health | grep -q '^health: '
}

follows() {
	[ "$1" = "$LN" ] ||
	    probe "$1" status | grep -qx "leader_id: $LN"
}

# Its metrics page, under the sandbox, says whether it leads as status
# does, and the process metrics read from /proc/self are there.
metrics_say() {
	lead=0
	[ "$1" = "$LN" ] && lead=1
	C curl -sf "http://127.0.0.1:938$1/metrics" >"$W/metrics$1" &&
	    grep -qx "dsd_raft_is_leader $lead" "$W/metrics$1" &&
	    grep -Eq '^process_open_fds [1-9]' "$W/metrics$1"
}

ready() {
	ready_then_running "$T@$1.service"
}

bootstrapped() {
	C journalctl -u "$T@$1" -o cat --no-pager >"$W/journal.log"
	grep -q "raft: bootstrapped a cluster of 3 members" "$W/journal.log" &&
	    grep -q "node $1, raft on 127.0.0.1:740$1, clients on $(addr "$1"), data in /var/lib/dsd-replicated/$1," \
	    "$W/journal.log"
}

own_user() {
	eval "u=\$UID$1"
	[ "$(C systemctl show -p User --value "$T@$1")" = "dsd-replicated-$1" ] &&
	    [ "$u" -gt 0 ] &&
	    grep -Eq "^Uid:[[:space:]]+${u}[[:space:]]" "$W/proc$1"
}

unprivileged() {
	grep -Eq "^CapEff:[[:space:]]+0+\$" "$W/proc$1" &&
	    grep -Eq "^NoNewPrivs:[[:space:]]+1" "$W/proc$1" &&
	    grep -Eq "^Seccomp:[[:space:]]+2" "$W/proc$1"
}

state_link() {
	[ "$(readlink "$R/var/lib/dsd-replicated/$1")" = "../private/dsd-replicated/$1" ]
}

state_owned() {
	eval "u=\$UID$1"
	[ "$(stat -c "%u %a" "$R/var/lib/private/dsd-replicated/$1")" = "$u 700" ] &&
	    for f in LOCK raft raft/metadata1; do
		[ "$(stat -c %u "$R/var/lib/private/dsd-replicated/$1/$f")" = "$u" ] ||
		    return 1
	    done
}

# O_DIRECT is 040000 in the octal flags of /proc/PID/fdinfo.
direct_io() {
	awk '$1 == "fd" && $2 ~ /\/open-[0-9]+$/ {
		f = 0; for (i = 1; i <= length($3); i++)
			f = f * 8 + substr($3, i, 1)
		if (int(f / 16384) % 2) n++ }
	    END { exit !(n > 0) }' "$W/proc$1"
}

has_aio() {
	grep -qx aio "$W/proc$1"
}

threads() {
	[ "$(sed -n 's/^Threads:[[:space:]]*//p' "$W/proc$1")" -gt 1 ]
}

reserved() {
	[ "$(find "$R/var/lib/private/dsd-replicated/$1/raft" -name 'open-*' \
	    -size 8192k | wc -l)" -ge 2 ]
}

snapshots() {
	ls "$R/var/lib/private/dsd-replicated/$1/raft/"snapshot-*.meta
}

# restored N: node N restored a snapshot after its last start, which can
# only be one the leader sent (at start-up it restores its own before it
# logs that it started).
restored() {
	C journalctl -u "$T@$1" -o cat --no-pager |
	    sed -n "/node $1, raft on/h; /node $1, raft on/!H; \${x;p}" |
	    grep -q "raft: restored a snapshot"
}

is_linked() {
	[ -L "$R/etc/systemd/system/multi-user.target.wants/$T@$1.service" ]
}

stopped_clean() {
	grep -q "$T@$1.service: Main process exited, code=exited, status=0/SUCCESS" \
	    "$W/journal-1.log" &&
	    grep -q "$T@$1.service: Deactivated successfully" "$W/journal-1.log"
}

has_data() {
	cli "$1" get 1 | grep -qx "data: hello" &&
	    cli "$1" get 2 | grep -qx "data: world" &&
	    cli "$1" get 3 | grep -qx "data: three" &&
	    cli "$1" get 100 | grep -qx "data: v100"
}

outer() {
	container_start

	# 1. Build and install the tracked files of this tree, out of place.
	build_install
	for f in ./usr/sbin/dsd ./usr/bin/dsd-cli \
	    "./usr/lib/systemd/system/$T@.service" \
	    ./usr/lib/systemd/system/dsd-kvdb.service \
	    ./etc/dsd/replicated.conf.example; do
		check "make install installs ${f#.}" grep -qx "$f" "$W/installed"
	done
	check "make install installs no replicated-ID.conf (a node's first start records its cluster)" \
	    sh -c "! grep -q '/replicated-[^/]*\.conf\$' '$W/installed'"
	TPL=$W/dest/usr/lib/systemd/system/$T@.service
	KVDB=$W/dest/usr/lib/systemd/system/dsd-kvdb.service
	check "the template runs dsd --mode=kvdb-replicated --config=/etc/dsd/replicated-%i.conf in its StateDirectory" \
	    grep -qxF 'ExecStart=/usr/sbin/dsd --mode=kvdb-replicated --config=/etc/dsd/replicated-%i.conf --data-dir=${STATE_DIRECTORY}' "$TPL"
	check "the installed template has no @...@ left" \
	    sh -c "! grep -q '@[a-zA-Z]*@' '$TPL'"
	grep -v '^#' "$W/src/conf/dsd-sandbox.inc" >"$W/sandbox"
	for u in "$TPL" "$KVDB"; do
		awk -v a="$(head -n 1 "$W/sandbox")" -v b="$(tail -n 1 "$W/sandbox")" \
		    '$0 == a { p = 1 } p { print } $0 == b { p = 0 }' "$u" \
		    >"$W/unit-sandbox"
		check "$(basename "$u") has the sandbox of conf/dsd-sandbox.inc, line for line" \
		    cmp "$W/sandbox" "$W/unit-sandbox"
	done

	# 2. The throwaway root, with the nodes' state on the work
	# directory's file system: libraft probes its directory's file
	# system and writes with O_DIRECT and kernel AIO where it can.
	make_root
	mkdir -m 0700 "$W/state" "$R/var/lib/private" 2>/dev/null
	chmod 0700 "$R/var/lib/private"
	mount --bind "$W/state" "$R/var/lib/private" ||
	    skip "cannot bind $W/state on the container's /var/lib/private"
	echo "# the container's /var/lib/private: $W/state, on $(stat -f -c %T "$W/state")"

	# 3. Boot.
	boot_first
	t "before the install, systemd does not know $T@" \
	    '! C systemctl cat $T@1.service'

	# 4. Install; three settings files from the example.
	cp -a "$W/dest/." "$R/"
	t "systemctl daemon-reload" 'C systemctl daemon-reload'
	verify "$T@1.service"
	# Snapshots every 128 entries, so that the checks below take some,
	# and 16 entries kept after one, so that a node that was down
	# catches up from the leader's snapshot; each node's metrics on a
	# port of its own, as the example says.
	for n in $NODES; do
		sed -e "s/^node-id = 1\$/node-id = $n/" \
		    -e "s/:9381\$/:938$n/" \
		    -e 's/^snapshot-threshold = .*/snapshot-threshold = 128/' \
		    -e 's/^snapshot-trailing = .*/snapshot-trailing = 16/' \
		    "$R/etc/dsd/replicated.conf.example" >"$R/etc/dsd/replicated-$n.conf"
	done
	t "the settings files are the example with node-id, the metrics port and the snapshot settings changed" \
	    'each from_example'
	echo "# /etc/dsd/replicated-2.conf, less its comments:"
	grep -v '^#' "$R/etc/dsd/replicated-2.conf" | sed 's/^/    # /'

	# 5. Start the three at once: each active after its READY=1, which
	# does not wait for a leader.
	s=$(date +%s%N)
	t "systemctl start $T@1 $T@2 $T@3" 'C systemctl start $(units)'
	echo "# systemctl start took $((($(date +%s%N) - s) / 1000000)) ms"
	t "each listens as soon as systemctl start returns (health answers)" \
	    'each listens'
	C systemctl status "$T@1" --no-pager >"$W/status.log" 2>&1
	echo "# systemctl status $T@1:"
	show "$W/status.log"
	t "each is active (running)" 'each is_active'
	t "systemd got each one's READY=1, and only then went start -> running" \
	    'each ready'
	t "journal: each bootstrapped the cluster of 3 from its file, data in its StateDirectory" \
	    'each bootstrapped'
	s=$(date +%s%N)
	t "the nodes elect a leader: health SERVING on each" 'each serving'
	echo "# all serving $((($(date +%s%N) - s) / 1000000)) ms later"
	t "dsd-cli status: one node leads, the others follow it" \
	    'wait_leader 0 && each follows'
	echo "# node $LN leads, term $LT"
	t "each serves its metrics on 938N, the leader's dsd_raft_is_leader 1" \
	    'each metrics_say'

	# 6. Each node its own dynamic user, no privileges, the sandbox.
	inspect
	UIDS=
	for n in $NODES; do
		u=$(C systemctl show -p UID --value "$T@$n")
		eval "UID$n=\$u"
		UIDS="$UIDS $u"
		echo "# node $n: user $(C systemctl show -p User --value "$T@$n"), uid $u"
	done
	grep -E '^(Uid|CapEff|NoNewPrivs|Seccomp|Threads):' "$W/proc1" | sed 's/^/    # /'
	t "each runs as its own dynamic user dsd-replicated-N, not root" \
	    'each own_user && [ "$(echo $UIDS | tr " " "\n" | sort -u | wc -l)" = 3 ]'
	t "none has capabilities; NoNewPrivs and a seccomp filter on each" \
	    'each unprivileged'
	P="-p DynamicUser -p StateDirectoryMode -p ProtectSystem -p ProtectHome \
	    -p PrivateTmp -p PrivateDevices -p NoNewPrivileges \
	    -p ProtectKernelTunables -p ProtectKernelModules -p ProtectKernelLogs \
	    -p ProtectControlGroups -p ProtectClock -p ProtectHostname \
	    -p RestrictAddressFamilies -p RestrictNamespaces -p RestrictRealtime \
	    -p RestrictSUIDSGID -p LockPersonality -p MemoryDenyWriteExecute \
	    -p SystemCallArchitectures -p SystemCallFilter \
	    -p SystemCallErrorNumber -p ProtectProc -p ProcSubset -p PrivateUsers \
	    -p DevicePolicy -p DeviceAllow -p CapabilityBoundingSet \
	    -p AmbientCapabilities -p UMask -p LimitNOFILE -p RemoveIPC"
	# shellcheck disable=SC2086
	C systemctl show $P dsd-kvdb.service >"$W/sandbox-kvdb"
	# shellcheck disable=SC2086
	C systemctl show $P "$T@1.service" >"$W/sandbox-replicated"
	t "systemd applies the sandbox of dsd-kvdb.service ($(wc -l <"$W/sandbox-kvdb") properties alike)" \
	    '[ "$(wc -l <"$W/sandbox-kvdb")" = 32 ] &&
	    cmp "$W/sandbox-kvdb" "$W/sandbox-replicated"' ||
	    diff "$W/sandbox-kvdb" "$W/sandbox-replicated" | sed 's/^/    # /'
	M1=$(pid 1)
	t "ProtectSystem=strict: / is read-only to it" \
	    'C nsenter -t "$M1" -m findmnt -no OPTIONS -T / |
	    grep -Eq "(^|,)ro(,|\$)"'
	t "its state directory is writable to it" \
	    'C nsenter -t "$M1" -m findmnt -no OPTIONS -T /var/lib/private/dsd-replicated/1 |
	    grep -Eq "(^|,)rw(,|\$)"'
	t "node 1 cannot reach the other nodes' data (absent in its namespace)" \
	    'C nsenter -t "$M1" -m sh -c "test -d /var/lib/dsd-replicated/1/raft &&
	    ! test -e /var/lib/dsd-replicated/2/raft &&
	    ! test -e /var/lib/private/dsd-replicated/3"'

	# 7. The state, where DynamicUser= and StateDirectory= put it.
	C sh -c 'ls -ldn /var/lib/dsd-replicated /var/lib/dsd-replicated/* \
	    /var/lib/private/dsd-replicated/*; ls -ln /var/lib/private/dsd-replicated/1 \
	    /var/lib/private/dsd-replicated/1/raft' >"$W/ls.log" 2>&1
	echo "# the state directories:"
	show "$W/ls.log"
	t "/var/lib/dsd-replicated/N -> ../private/dsd-replicated/N" \
	    'each state_link'
	t "each /var/lib/private/dsd-replicated/N, its LOCK and raft/ are its node's user's, mode 0700" \
	    'each state_owned'

	# 8. Talk to them; the check batteries against each node.
	t "dsd-cli set 1 hello through node 2" \
	    'cli 2 set 1 hello | grep -qx "status: SUCCESS"'
	t "dsd-cli get 1 through node 3 -> hello" \
	    'cli 3 get 1 | grep -qx "data: hello"'
	for n in $NODES; do
		s=$(date +%s%N)
		cli "$n" check >"$W/check$n.log" 2>&1
		rc=$?
		ms=$((($(date +%s%N) - s) / 1000000))
		t "dsd-cli -a $(addr "$n") check passes ($(tail -n 1 "$W/check$n.log"), ${ms} ms)" \
		    '[ $rc -eq 0 ] && grep -Eq "^[0-9]+ passed, 0 failed\$" "$W/check$n.log"' ||
		    grep '^not ok' "$W/check$n.log" | sed 's/^/    # /'
	done

	# 9. libraft's disk I/O under the system call filter.
	inspect
	for n in $NODES; do
		echo "# node $n: $(sed -n 's/^Threads:[[:space:]]*//p' "$W/proc$n") threads$(grep -qx aio "$W/proc$n" && echo ", an AIO context"); Raft files open, flags:"
		sed -n 's/^fd /    # /p' "$W/proc$n"
	done
	t "each writes its open Raft segment with O_DIRECT" 'each direct_io'
	t "each has a kernel AIO context (io_setup allowed)" 'each has_aio'
	t "each runs libuv worker threads (more than one thread)" 'each threads'
	t "each has its next segments reserved, 8 MiB each (fallocate)" \
	    'each reserved'
	t "each wrote snapshots of its state (snapshot-*.meta)" 'each snapshots'

	# 10. kvdb's unit beside them: its /var/lib/dsd and theirs apart.
	t "dsd-kvdb starts beside them" 'C systemctl start dsd-kvdb'
	t "dsd-kvdb serves, in /var/lib/dsd -> private/dsd, the three still active" \
	    'C dsd-cli -a 127.0.0.1:7379 health &&
	    [ "$(readlink "$R/var/lib/dsd")" = private/dsd ] && each is_active'
	t "systemctl stop dsd-kvdb" 'C systemctl stop dsd-kvdb'

	# An instance without its settings file: a usage error, which
	# RestartPreventExitStatus=2 does not restart.
	C systemctl start "$T@9" >/dev/null 2>&1
	sleep 0.5
	C systemctl show -p ActiveState -p Result -p ExecMainStatus \
	    -p NRestarts "$T@9" >"$W/show.log" 2>&1
	echo "# $T@9: $(paste -s -d' ' "$W/show.log")"
	t "$T@9, with no settings file, fails with status 2, not restarted" \
	    'grep -qx ActiveState=failed "$W/show.log" &&
	    grep -qx ExecMainStatus=2 "$W/show.log" &&
	    grep -qx NRestarts=0 "$W/show.log"'
	C systemctl reset-failed "$T@9"

	# 11. SIGKILL of the leader's instance: the others go on serving,
	# Restart=on-failure brings it back.
	L=$LN
	OLDT=$LT
	old=$(pid "$L")
	A=$(others "$L" | head -n 1)
	B=$(others "$L" | tail -n 1)
	t "systemctl kill -s KILL $T@$L (the leader)" \
	    'C systemctl kill -s KILL $T@$L'
	s=$(date +%s%N)
	t "a write through node $A right after succeeds (set 2 world)" \
	    'cli $A set 2 world | grep -qx "status: SUCCESS"'
	echo "# answered $((($(date +%s%N) - s) / 1000000)) ms after the kill"
	# Writes through the other two, one after another, until the killed
	# node is back and serving: every one must succeed.
	k=100
	bad=0
	while [ $k -lt 300 ]; do
		if [ $((k % 2)) = 0 ]; then n=$A; else n=$B; fi
		cli "$n" set $k "v$k" | grep -qx "status: SUCCESS" ||
		    bad=$((bad + 1))
		k=$((k + 1))
		new=$(pid "$L")
		[ $k -ge 110 ] && [ "$new" != 0 ] && [ "$new" != "$old" ] &&
		    probe "$L" health >/dev/null 2>&1 && break
	done
	WRITES=$((k - 100))
	nr=$(C systemctl show -p NRestarts --value "$T@$L")
	echo "# after SIGKILL: main PID $old -> $new, NRestarts=$nr; $WRITES writes through nodes $A and $B until node $L served again, $bad failed"
	t "Restart=on-failure restarted it (active, new main PID, NRestarts=1)" \
	    'is_active $L && [ "$new" != "$old" ] && [ "$new" != 0 ] && [ "$nr" = 1 ]'
	t "the cluster served throughout: $WRITES writes through nodes $A and $B, all SUCCESS" \
	    '[ $bad = 0 ] && [ $k -lt 300 ]'
	C journalctl -u "$T@$L" -o cat --no-pager >"$W/journal.log" 2>&1
	t "journal: Failed with result 'signal', then a scheduled restart" \
	    'grep -q "Failed with result .signal." "$W/journal.log" &&
	    grep -q "Scheduled restart job" "$W/journal.log"'
	t "a new leader, in a later term" 'wait_leader $OLDT'
	echo "# node $LN leads, term $LT"
	t "the restarted node serves what was written while it was down" \
	    'cli $L get 2 | grep -qx "data: world" &&
	    cli $L get $((k - 1)) | grep -qx "data: v$((k - 1))"'

	# 12. A clean stop of the leader's instance: STOPPING=1, status 0;
	# the other two elect a leader and serve.
	L=$LN
	A=$(others "$L" | head -n 1)
	t "systemctl stop $T@$L (the leader)" 'C systemctl stop $T@$L'
	C systemctl show -p Result -p ExecMainStatus "$T@$L" >"$W/show.log" 2>&1
	t "it stopped with status 0 (Result=success)" \
	    'grep -qx Result=success "$W/show.log" &&
	    grep -qx ExecMainStatus=0 "$W/show.log"'
	C journalctl -u "$T@$L" -o cat --no-pager >"$W/journal.log" 2>&1
	t "journal: systemd got STOPPING=1, dsd logged kvdb-replicated: stopping" \
	    'grep -q "Got notification message from PID [0-9]* (STOPPING=1)" "$W/journal.log" &&
	    grep -q "kvdb-replicated: stopping" "$W/journal.log"'
	t "journal: dsd's lines carry their priority (notice, not warning)" \
	    'C journalctl -u $T@$L -p notice -o cat --no-pager |
	    grep -q "kvdb-replicated: stopping" &&
	    ! C journalctl -u $T@$L -p warning -o cat --no-pager |
	    grep -q "kvdb-replicated: stopping"'
	s=$(date +%s%N)
	t "the other two serve: set 3 three through node $A" \
	    'cli $A set 3 three | grep -qx "status: SUCCESS"'
	echo "# answered $((($(date +%s%N) - s) / 1000000)) ms after the stop"
	t "systemctl start $T@$L (again)" 'C systemctl start $T@$L'
	t "it catches up: health SERVING, get 3 through it -> three" \
	    'serving $L && cli $L get 3 | grep -qx "data: three"'
	echo "# journal of node $L's stop and start:"
	C journalctl -u "$T@$L" --no-pager -o short-monotonic 2>&1 |
	    grep -E 'dsd\[|STOPPING=1|Stopping|Stopped|Deactivated' | tail -n 7 |
	    sed 's/^/    # /'

	# 13. The security report.
	security "$T@1.service"

	# 14. Nothing is refused: with a drop-in (in the container's /run,
	# so gone at the next boot) that makes a refused system call kill the
	# process, and -v, the whole cluster restarts from its data and
	# elects; a follower stopped while the batteries run through the
	# other catches up from the leader's snapshot; new snapshots are
	# taken; and the three stop with status 0 at the shutdown below.
	D=/run/systemd/system/$T@.service.d
	C sh -c 'mkdir -p $1 && printf "%s\n" "[Service]" \
	    "SystemCallErrorNumber=" "Restart=no" "ExecStart=" \
	    "$(grep "^ExecStart=" /usr/lib/systemd/system/$2@.service) -v" \
	    >$1/sigsys.conf' sh "$D" "$T"
	C systemctl daemon-reload
	t "a drop-in makes refused calls kill (SystemCallErrorNumber=, Restart=no), with -v" \
	    '[ "$(C systemctl show -p SystemCallErrorNumber --value $T@1)" != 1 ] &&
	    C systemctl cat $T@1 | grep -qx "SystemCallErrorNumber=" &&
	    C systemctl cat $T@1 | grep -q "^ExecStart=/usr/sbin/dsd .* -v\$"'
	SNAPS=$(ls "$R"/var/lib/private/dsd-replicated/*/raft/snapshot-*.meta)
	l=$(leader)
	t "systemctl restart of the three" 'C systemctl restart $(units)'
	t "they recover and elect: health SERVING on each" \
	    'each serving && wait_leader ${l% *}'
	X=$(others "$LN" | head -n 1)
	F=$(others "$LN" | tail -n 1)
	t "systemctl stop $T@$X (a follower)" 'C systemctl stop $T@$X'
	t "dsd-cli check through node $F, the other follower, passes" \
	    'cli $F check | grep -Eq "^[0-9]+ passed, 0 failed\$"'
	t "systemctl start $T@$X" 'C systemctl start $T@$X'
	t "node $X catches up from the leader's snapshot (restored after it started)" \
	    'serving $X && wait_for 10 restored $X'
	echo "# node $X's journal from its last start, Raft and snapshot lines:"
	C journalctl -u "$T@$X" -o short-monotonic --no-pager |
	    sed -n "/node $X, raft on/h; /node $X, raft on/!H; \${x;p}" |
	    grep -E 'raft on|raft: |Started' | head -n 6 | sed 's/^/    # /'
	t "new snapshots were written" \
	    'ls "$R"/var/lib/private/dsd-replicated/*/raft/snapshot-*.meta |
	    grep -qvxF "$SNAPS"'
	t "none was killed by a refused call: all three still active" \
	    'each is_active'

	# 15. Enabled, the three start at boot; a reboot keeps the data.
	t "systemctl enable $T@1 $T@2 $T@3" 'C systemctl enable $(units)'
	t "enable links them into multi-user.target.wants" 'each is_linked'
	if container_reboot; then
		C journalctl -b -1 -u "$T@*" -o cat --no-pager \
		    >"$W/journal-1.log" 2>&1
		t "previous boot's journal: each exited 0 at the shutdown, none killed by a refused call" \
		    'each stopped_clean && ! grep -Eq "status=31|SIGSYS" "$W/journal-1.log"'
		echo "# previous boot's journal, last lines of $T@1:"
		C journalctl -b -1 -u "$T@1" -o cat --no-pager 2>&1 |
		    grep -E 'dsd: |STOPPING=1|Main process exited|Deactivated' |
		    tail -n 4 | sed 's/^/    # /'
		t "the three are active after the boot, unasked, without the drop-in" \
		    'each is_active &&
		    ! C systemctl cat $T@1 | grep -qx "SystemCallErrorNumber="'
		t "they elect a leader: health SERVING on each" 'each serving'
		t "the data survived the reboot, read through each node" \
		    'each has_data'
		t "the container powers off again" container_poweroff
	fi

	finish
	exit $?
}

container_main "$@"
