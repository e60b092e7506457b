#!/bin/sh
# The kvdb systemd unit (conf/dsd-kvdb.service.in) under a real systemd.
#
# Builds the tracked files of this tree out of place, installs them with
# "make install DESTDIR=...", boots the machine's own systemd as PID 1 of
# new pid, mount, network, cgroup, uts and ipc namespaces on an overlay of
# / (the host's files are only read: every write lands in a tmpfs), and
# checks the unit there: Type=notify readiness (READY=1) and clean stop
# (STOPPING=1, final snapshot), DynamicUser= and StateDirectory=, the data
# surviving stop, SIGKILL (Restart=on-failure) and a reboot with the unit
# enabled, a forked snapshot under the sandbox, and the exposure score of
# "systemd-analyze security".
#
# usage: tests/systemd/unit.sh        (as root; no network needed)
# Prints "ok - ..." / "not ok - ..." per check and "N passed, M failed";
# exits 0 if all passed, 1 if not, 77 ("SKIP: reason") if this machine
# cannot boot systemd isolated.  Everything it starts is stopped and its
# files removed on exit (DSD_UNIT_KEEP=1 keeps the work directory).
# DSD_UNIT_TIMEOUT bounds the whole run (seconds, default 600);
# DSD_UNIT_MAX_EXPOSURE is the highest exposure accepted (default 1.5).

# The checks are snippets eval()ed by t(), so single quotes are meant.
# shellcheck disable=SC2016,SC2034
LIMIT=${DSD_UNIT_TIMEOUT:-600}
MAX_EXPOSURE=${DSD_UNIT_MAX_EXPOSURE:-1.5}
CPATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
ADDR=127.0.0.1:7379

skip() {
	echo "SKIP: $*"
	exit 77
}

# ---------------------------------------------------------------------------
# Stage 3: PID 1 of the container's namespaces.  Mounts the API file
# systems on the prepared root, pivots into it and becomes systemd.
# usage: unit.sh __boot ROOT CONSOLE-FILE BOOT-ID-FILE
boot_inner() {
	R=$1
	set -e
	mount -t proc -o nosuid,nodev,noexec proc "$R/proc"
	# Kernel settings stay the host's: /proc/sys and sysrq read-only, so
	# systemd-sysctl is skipped (ConditionPathIsReadWrite=/proc/sys/).
	mount --bind "$R/proc/sys" "$R/proc/sys"
	mount -o remount,bind,ro,nosuid,nodev,noexec "$R/proc/sys"
	if [ -e "$R/proc/sysrq-trigger" ]; then
		mount --bind "$R/proc/sysrq-trigger" "$R/proc/sysrq-trigger"
		mount -o remount,bind,ro "$R/proc/sysrq-trigger"
	fi
	# A boot id of its own, so that journalctl -b -1 means the last boot.
	mount --bind "$3" "$R/proc/sys/kernel/random/boot_id"
	mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$R/sys"
	# The cgroup namespace's root: the cgroup made for this run.
	mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 "$R/sys/fs/cgroup"
	mount -t tmpfs -o mode=0755,nosuid,size=16m tmpfs "$R/dev"
	for d in null zero full random urandom tty; do
		touch "$R/dev/$d"
		mount --bind "/dev/$d" "$R/dev/$d"
	done
	mkdir "$R/dev/pts" "$R/dev/shm" "$R/dev/mqueue"
	mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$R/dev/pts"
	ln -s pts/ptmx "$R/dev/ptmx"
	mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$R/dev/shm"
	ln -s /proc/self/fd "$R/dev/fd"
	ln -s /proc/self/fd/0 "$R/dev/stdin"
	ln -s /proc/self/fd/1 "$R/dev/stdout"
	ln -s /proc/self/fd/2 "$R/dev/stderr"
	# The console is a file of the run: systemd's early messages.
	touch "$R/dev/console"
	mount --bind "$2" "$R/dev/console"
	mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs "$R/run"
	mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$R/tmp"
	cd "$R"
	mkdir -p .oldroot
	pivot_root . .oldroot
	umount -l /.oldroot
	rmdir /.oldroot
	set +e
	exec env -i container=dsd-unit-test "PATH=$CPATH" \
	    /lib/systemd/systemd --system --show-status=no \
	    </dev/console >/dev/console 2>&1
}

# ---------------------------------------------------------------------------
# Stage 2: a private mount namespace of our own, for the throwaway root.

W=
CG=
UPID=
UJOB=
PID1=

# C CMD...: run CMD inside the container (as its root, in all its
# namespaces), with a time limit.
C() {
	timeout 60 nsenter -t "$PID1" -m -u -i -n -p -C -r -w \
	    env -i "PATH=$CPATH" LANG=C.UTF-8 TERM=dumb SYSTEMD_COLORS=0 \
	    SYSTEMD_PAGER=cat "$@"
}

# t NAME SNIPPET: eval SNIPPET here (C and the variables are at hand),
# pass if it exits 0.
t() {
	if eval "$2" >/dev/null 2>&1; then ok "$1"; else not_ok "$1"; return 1; fi
}

# show FILE: the file, indented, as the evidence in the output.
show() {
	sed 's/^/    # /' "$1"
}

# container_alive: the container's unshare (and so its systemd) is there.
container_alive() {
	[ -n "$UPID" ] && kill -0 "$UPID" 2>/dev/null
}

# boot N: start systemd in new namespaces on $R; sets UPID and PID1.
boot() {
	n=$1
	: >"$W/console$n.log"
	rm -f "$W/upid"
	cat /proc/sys/kernel/random/uuid >"$W/boot_id$n"
	# Its own session, so that no signal meant for this script reaches
	# it: cleanup() powers it off.
	setsid sh -c 'echo $$ >"$1/cgroup.procs" && echo $$ >"$2" &&
	    exec unshare --pid --fork --kill-child --mount \
	    --propagation private --uts --ipc --net --cgroup \
	    "$3" __boot "$4" "$5" "$6"' sh "$CG" "$W/upid" \
	    "$SELF" "$R" "$W/console$n.log" "$W/boot_id$n" \
	    </dev/null >"$W/unshare$n.log" 2>&1 &
	UJOB=$!
	UPID=
	PID1=
	i=0
	while [ $i -lt 100 ]; do
		[ -z "$UPID" ] && [ -s "$W/upid" ] && UPID=$(cat "$W/upid")
		if [ -n "$UPID" ]; then
			PID1=$(pgrep -P "$UPID" 2>/dev/null | head -n 1)
			[ -n "$PID1" ] &&
			    [ "$(cat /proc/"$PID1"/comm 2>/dev/null)" = systemd ] &&
			    break
			PID1=
			container_alive || return 1
		fi
		sleep 0.1
		i=$((i + 1))
	done
	[ -n "$PID1" ] || return 1
	# Until it answers on its private socket.
	i=0
	while [ $i -lt 100 ]; do
		case $(C systemctl is-system-running 2>/dev/null) in
		initializing|starting|running|degraded) return 0 ;;
		esac
		container_alive || return 1
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

# poweroff: stop the container the way a machine stops, wait for it.
poweroff() {
	container_alive || return 0
	C systemctl poweroff --no-block >/dev/null 2>&1
	i=0
	while container_alive && [ $i -lt 300 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	container_alive && return 1
	wait "$UJOB" 2>/dev/null
	UPID=
	return 0
}

cleanup() {
	trap - EXIT INT TERM HUP
	if container_alive; then
		poweroff || {
			echo "# the container did not power off; killing it"
			kill -KILL "$UPID" 2>/dev/null
			wait "$UJOB" 2>/dev/null
		}
	fi
	if [ -n "$CG" ] && [ -d "$CG" ]; then
		# Anything left in the run's cgroup (there should be nothing).
		if [ -n "$(find "$CG" -name cgroup.procs -exec cat {} + 2>/dev/null)" ]; then
			echo 1 >"$CG/cgroup.kill" 2>/dev/null ||
			    find "$CG" -name cgroup.procs -exec cat {} + |
			    xargs -r kill -KILL 2>/dev/null
		fi
		i=0
		while [ -d "$CG" ] && [ $i -lt 50 ]; do
			find "$CG" -depth -type d -exec rmdir {} + 2>/dev/null
			[ -d "$CG" ] && sleep 0.1
			i=$((i + 1))
		done
		[ -d "$CG" ] && echo "# could not remove cgroup $CG"
	fi
	if [ -n "$W" ]; then
		umount -R "$W/mnt" 2>/dev/null
		umount "$W/cg" 2>/dev/null
		if [ -n "${DSD_UNIT_KEEP:-}" ]; then
			echo "# work directory kept: $W"
		else
			rm -rf "$W"
		fi
	fi
}

outer() {
	# fd 3: the output, also for traps that run while t() sends its
	# snippet's output to /dev/null.
	exec 3>&1
	trap 'cleanup >&3 2>&1' EXIT
	trap 'not_ok "interrupted" >&3; finish >&3; exit 1' INT TERM HUP
	. "$TOP/tests/lib.sh"

	W=$(mktemp -d "${TMPDIR:-/tmp}/dsd-unit.XXXXXX") || exit 1
	# The cgroup v2 hierarchy, whatever the host mounts, and a cgroup
	# for this run: systemd will own it as its root.
	mkdir "$W/cg"
	mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 "$W/cg" 2>/dev/null ||
	    skip "cannot mount the cgroup v2 hierarchy"
	CG=$W/cg/dsd-unit-test.$$
	mkdir "$CG" 2>/dev/null || { CG=; skip "cannot create a cgroup"; }
	# Trial run of the namespaces, in that cgroup.
	sh -c 'echo $$ >"$1/cgroup.procs" && exec unshare --pid --fork \
	    --mount --uts --ipc --net --cgroup true' sh "$CG" 2>"$W/trial.log" ||
	    skip "cannot enter a cgroup and new namespaces: $(cat "$W/trial.log")"

	# 1. Build and install the tracked files of this tree, out of place.
	mkdir "$W/src" "$W/dest"
	(cd "$TOP" && git ls-files) >"$W/files" 2>/dev/null || {
		not_ok "list the tracked files of $TOP (git ls-files)"
		finish
		exit 1
	}
	(cd "$TOP" && while IFS= read -r f; do
		[ -e "$f" ] || [ -L "$f" ] && printf '%s\n' "$f"
	done <"$W/files" | tar -cf - -T -) | tar -xf - -C "$W/src"
	echo "# building in $W/src"
	if (cd "$W/src" && ./autogen.sh && ./configure --prefix=/usr \
	    --sysconfdir=/etc --localstatedir=/var &&
	    make -j"$(nproc)" && make install DESTDIR="$W/dest") \
	    >"$W/build.log" 2>&1; then
		ok "build and make install DESTDIR=..."
	else
		not_ok "build and make install DESTDIR=..."
		tail -n 30 "$W/build.log" | sed 's/^/    # /'
		finish
		exit 1
	fi
	(cd "$W/dest" && find . -type f | sort) >"$W/installed"
	echo "# make install installs:"
	show "$W/installed"
	for f in ./usr/sbin/dsd ./usr/bin/dsd-cli ./usr/bin/dsd-bench \
	    ./usr/lib/systemd/system/dsd-kvdb.service ./etc/dsd/kvdb.conf \
	    ./usr/share/man/man8/dsd.8 ./usr/share/man/man5/dsd.conf.5 \
	    ./usr/share/man/man1/dsd-cli.1; do
		check "make install installs ${f#.}" grep -qx "$f" "$W/installed"
	done
	UNIT=$W/dest/usr/lib/systemd/system/dsd-kvdb.service
	check "the installed unit runs /usr/sbin/dsd --config=/etc/dsd/kvdb.conf" \
	    grep -qx 'ExecStart=/usr/sbin/dsd --config=/etc/dsd/kvdb.conf' "$UNIT"
	check "the installed unit has no @...@ left" sh -c "! grep -q '@[a-z]*@' '$UNIT'"

	# 2. The throwaway root: an overlay of / whose writes go to a tmpfs.
	mkdir "$W/mnt"
	mount -t tmpfs -o mode=0755,size=1g tmpfs "$W/mnt" ||
	    skip "cannot mount a tmpfs"
	mkdir "$W/mnt/upper" "$W/mnt/work" "$W/mnt/root"
	R=$W/mnt/root
	mount -t overlay overlay \
	    -o "lowerdir=/,upperdir=$W/mnt/upper,workdir=$W/mnt/work" "$R" \
	    2>"$W/overlay.log" ||
	    skip "cannot mount an overlay over /: $(cat "$W/overlay.log")"
	# A machine of its own: no dsd state or settings of the host, none
	# of the host's enabled services or fstab, its own id and name.
	rm -rf "$R/var/lib/dsd" "$R/var/lib/private/dsd" "$R/etc/dsd" \
	    "$R/usr/lib/systemd/system/dsd-kvdb.service" \
	    "$R/lib/systemd/system/dsd-kvdb.service" \
	    "$R/etc/systemd/system/dsd-kvdb.service" \
	    "$R/etc/systemd/system/dsd-kvdb.service.d"
	for d in "$R"/etc/systemd/system/*.wants "$R"/etc/systemd/system/*.requires; do
		[ -d "$d" ] && rm -rf "$d"
	done
	ln -sf /dev/null "$R/etc/systemd/system/console-getty.service"
	: >"$R/etc/fstab"
	echo dsd-unit-test >"$R/etc/hostname"
	rm -f "$R/etc/machine-id"
	tr -d - </proc/sys/kernel/random/uuid >"$R/etc/machine-id"
	mkdir -p "$R/var/log/journal"
	[ -x "$R/lib/systemd/systemd" ] || skip "no /lib/systemd/systemd"

	# 3. Boot.
	if boot 1; then
		ok "systemd boots as PID 1 of new namespaces"
	else
		not_ok "systemd boots as PID 1 of new namespaces"
		show "$W/unshare1.log"
		show "$W/console1.log"
		finish
		exit 1
	fi
	state=$(C systemctl is-system-running --wait 2>&1)
	echo "# system state after boot: $state"
	[ "$state" = running ] ||
	    C systemctl --failed --no-legend 2>&1 | sed 's/^/    # /'
	t "the container reaches multi-user.target" \
	    'C systemctl is-active multi-user.target'
	t "the container has a hostname of its own" \
	    '[ "$(C hostname)" = dsd-unit-test ] && [ "$(hostname)" != dsd-unit-test ]'
	t "before the install, systemd does not know dsd-kvdb" \
	    '! C systemctl cat dsd-kvdb.service'
	# Debug logging shows the READY=1 and STOPPING=1 notifications.
	C systemd-analyze log-level debug

	# 4. Install the unit and settings as make install put them.
	cp -a "$W/dest/." "$R/"
	t "systemctl daemon-reload" 'C systemctl daemon-reload'
	C systemd-analyze verify dsd-kvdb.service >"$W/verify.log" 2>&1
	rc=$?
	if [ $rc -eq 0 ] && ! grep -q dsd "$W/verify.log"; then
		ok "systemd-analyze verify dsd-kvdb.service is clean"
	else
		not_ok "systemd-analyze verify dsd-kvdb.service (exit $rc)"
		show "$W/verify.log"
	fi

	# 5. Start: active only after READY=1, and serving at once.
	t "systemctl start dsd-kvdb" 'C systemctl start dsd-kvdb'
	t "it serves as soon as systemctl start returns" \
	    'C dsd-cli -a $ADDR health'
	C systemctl status dsd-kvdb --no-pager >"$W/status.log" 2>&1
	echo "# systemctl status dsd-kvdb:"
	show "$W/status.log"
	t "status: Active: active (running)" \
	    'grep -q "Active: active (running)" "$W/status.log"'
	C journalctl -u dsd-kvdb -o cat --no-pager >"$W/journal.log" 2>&1
	ready=$(grep -n 'Got notification message from PID [0-9]* (READY=1)' \
	    "$W/journal.log" | head -n 1 | cut -d: -f1)
	running=$(grep -n 'Changed start -> running' "$W/journal.log" |
	    head -n 1 | cut -d: -f1)
	t "systemd got READY=1, and only then went start -> running" \
	    '[ -n "$ready" ] && [ -n "$running" ] && [ "$ready" -lt "$running" ]'
	MAIN=$(C systemctl show -p MainPID --value dsd-kvdb)
	DUID=$(C systemctl show -p UID --value dsd-kvdb)
	echo "# main PID $MAIN, user $(C systemctl show -p User --value dsd-kvdb), uid $DUID"
	C cat "/proc/$MAIN/status" >"$W/procstatus" 2>&1
	grep -E '^(Uid|Gid|CapEff|CapBnd|NoNewPrivs|Seccomp):' "$W/procstatus" |
	    sed 's/^/    # /'
	t "it runs as the dynamic user, not root" \
	    '[ "$DUID" -gt 0 ] && grep -Eq "^Uid:[[:space:]]+$DUID[[:space:]]" "$W/procstatus"'
	t "it has no capabilities" \
	    'grep -Eq "^CapEff:[[:space:]]+0+\$" "$W/procstatus"'
	t "NoNewPrivs is set and a seccomp filter is on" \
	    'grep -Eq "^NoNewPrivs:[[:space:]]+1" "$W/procstatus" &&
	    grep -Eq "^Seccomp:[[:space:]]+2" "$W/procstatus"'
	# LimitNOFILE=65536, or systemd's own hard limit if that is lower
	# and systemd may not raise it (no CAP_SYS_RESOURCE, as in some VMs).
	lim=$(C cat "/proc/$MAIN/limits" | awk '/^Max open files/ { print $4 " " $5 }')
	pid1=$(C cat /proc/1/limits | awk '/^Max open files/ { print $5 }')
	want=65536
	[ "$pid1" -lt "$want" ] 2>/dev/null && want=$pid1
	echo "# its open files limit: $lim (systemd's hard limit: $pid1)"
	t "LimitNOFILE=65536 is applied (or systemd's hard limit, $want)" \
	    '[ "$lim" = "$want $want" ]'
	t "ProtectSystem=strict: / is read-only to it" \
	    'C nsenter -t "$MAIN" -m findmnt -no OPTIONS -T / |
	    grep -Eq "(^|,)ro(,|\$)"'
	t "its state directory is writable to it" \
	    'C nsenter -t "$MAIN" -m findmnt -no OPTIONS -T /var/lib/private/dsd |
	    grep -Eq "(^|,)rw(,|\$)"'

	# 6. Talk to it.
	t "dsd-cli set 1 hello" \
	    'C dsd-cli -a $ADDR set 1 hello | grep -qx "status: SUCCESS"'
	t "dsd-cli get 1 -> hello" \
	    'C dsd-cli -a $ADDR get 1 | grep -qx "data: hello"'

	# 7. The state, where DynamicUser= puts it.
	C sh -c 'ls -ldn /var/lib/dsd /var/lib/private /var/lib/private/dsd;
	    ls -ln /var/lib/private/dsd' >"$W/ls.log" 2>&1
	echo "# the state directory:"
	show "$W/ls.log"
	t "/var/lib/dsd -> private/dsd" \
	    '[ "$(readlink "$R/var/lib/dsd")" = private/dsd ]'
	t "/var/lib/private/dsd is the dynamic user's, mode 0700" \
	    '[ "$(stat -c "%u %a" "$R/var/lib/private/dsd")" = "$DUID 700" ]'
	t "LOCK and the log are in /var/lib/private/dsd, the dynamic user's" \
	    '[ "$(stat -c %u "$R/var/lib/private/dsd/LOCK")" = "$DUID" ] &&
	    ls "$R"/var/lib/private/dsd/wal-*.log &&
	    [ -z "$(for f in "$R"/var/lib/private/dsd/wal-*.log; do
		[ "$(stat -c %u "$f")" = "$DUID" ] || echo "$f"; done)" ]'
	t "the log's 64 MiB is reserved under the sandbox (fallocate allowed)" \
	    '[ -n "$(find "$R"/var/lib/private/dsd -name "wal-*.log" \
		-size +60M)" ]'

	# 8. A clean stop: STOPPING=1, status 0, a final snapshot.
	t "systemctl stop dsd-kvdb" 'C systemctl stop dsd-kvdb'
	C systemctl show -p Result -p ExecMainStatus dsd-kvdb >"$W/show.log" 2>&1
	t "it stopped with status 0 (Result=success)" \
	    'grep -qx Result=success "$W/show.log" &&
	    grep -qx ExecMainStatus=0 "$W/show.log"'
	C journalctl -u dsd-kvdb -o cat --no-pager >"$W/journal.log" 2>&1
	t "journal: systemd got STOPPING=1" \
	    'grep -q "Got notification message from PID [0-9]* (STOPPING=1)" "$W/journal.log"'
	t "journal: dsd logged kvdb: stopping, then its final snapshot" \
	    'grep -q "kvdb: stopping" "$W/journal.log" &&
	    grep -q "snapshot: final, 1 keys up to record" "$W/journal.log"'
	t "journal: dsd's lines carry their priority (notice, not warning)" \
	    'C journalctl -u dsd-kvdb -p notice -o cat --no-pager |
	    grep -q "kvdb: serving on" &&
	    ! C journalctl -u dsd-kvdb -p warning -o cat --no-pager |
	    grep -q "kvdb: serving on"'
	t "the final snapshot is on disk, the dynamic user's" \
	    '[ "$(stat -c %u "$R/var/lib/private/dsd/snapshot")" = "$DUID" ]'
	echo "# journal of the first start and stop:"
	C journalctl -u dsd-kvdb --no-pager -o short-monotonic 2>&1 |
	    grep -E 'dsd\[|READY=1|STOPPING=1|Starting|Started|Stopping|Stopped|Deactivated|SIGTERM' |
	    sed 's/^/    # /'

	# 9. Start again: the key is there.
	t "systemctl start dsd-kvdb (again)" 'C systemctl start dsd-kvdb'
	t "the key survived the stop (get 1 -> hello)" \
	    'C dsd-cli -a $ADDR get 1 | grep -qx "data: hello"'
	t "journal: 1 key recovered, snapshot loaded" \
	    'C journalctl -u dsd-kvdb -o cat --no-pager |
	    grep -q "1 keys recovered from /var/lib/dsd (snapshot loaded"'

	# 10. SIGKILL: Restart=on-failure brings it back with the data.
	t "dsd-cli set 2 world" \
	    'C dsd-cli -a $ADDR set 2 world | grep -qx "status: SUCCESS"'
	old=$(C systemctl show -p MainPID --value dsd-kvdb)
	t "systemctl kill -s KILL dsd-kvdb" 'C systemctl kill -s KILL dsd-kvdb'
	i=0
	while [ $i -lt 100 ]; do
		new=$(C systemctl show -p MainPID --value dsd-kvdb)
		st=$(C systemctl is-active dsd-kvdb)
		[ "$st" = active ] && [ "$new" != 0 ] && [ "$new" != "$old" ] && break
		sleep 0.1
		i=$((i + 1))
	done
	nr=$(C systemctl show -p NRestarts --value dsd-kvdb)
	echo "# after SIGKILL: $st, main PID $old -> $new, NRestarts=$nr"
	t "Restart=on-failure restarted it (active, new main PID, NRestarts=1)" \
	    '[ "$st" = active ] && [ "$new" != "$old" ] && [ "$nr" = 1 ]'
	C journalctl -u dsd-kvdb -o cat --no-pager >"$W/journal.log" 2>&1
	t "journal: Failed with result 'signal', then a scheduled restart" \
	    'grep -q "Failed with result .signal." "$W/journal.log" &&
	    grep -q "Scheduled restart job" "$W/journal.log"'
	t "both keys survived SIGKILL" \
	    'C dsd-cli -a $ADDR get 1 | grep -qx "data: hello" &&
	    C dsd-cli -a $ADDR get 2 | grep -qx "data: world"'

	# 11. A periodic snapshot (fork()ed) under the same sandbox: only
	# the flags differ, by a drop-in in the container's /run removed after.
	C sh -c 'd=/run/systemd/system/dsd-kvdb.service.d && mkdir -p $d &&
	    printf "%s\n" "[Service]" "ExecStart=" \
	    "ExecStart=/usr/sbin/dsd --config=/etc/dsd/kvdb.conf --snapshot-interval=1 -v" \
	    >$d/snapshot.conf'
	C systemctl daemon-reload
	t "the drop-in is in effect" \
	    'C systemctl cat dsd-kvdb | grep -q -- "--snapshot-interval=1 -v"'
	t "restart with --snapshot-interval=1 -v" 'C systemctl restart dsd-kvdb'
	t "dsd-cli set 3 three" \
	    'C dsd-cli -a $ADDR set 3 three | grep -qx "status: SUCCESS"'
	i=0
	while [ $i -lt 50 ]; do
		C journalctl -u dsd-kvdb -o cat --no-pager >"$W/journal.log" 2>&1
		grep -q 'snapshot: 3 keys up to record' "$W/journal.log" && break
		sleep 0.1
		i=$((i + 1))
	done
	t "a forked snapshot works under the sandbox (snapshot: 3 keys)" \
	    'grep -q "snapshot: 3 keys up to record" "$W/journal.log"' ||
	    tail -n 15 "$W/journal.log" | sed 's/^/    # /'
	t "no snapshot errors in the journal" \
	    '! grep -Eq "snapshot: (fork|waitpid)|snapshot.*failed" "$W/journal.log"'
	C rm -rf /run/systemd/system/dsd-kvdb.service.d
	C systemctl daemon-reload
	t "the drop-in is gone" \
	    '! C systemctl cat dsd-kvdb | grep -q -- "--snapshot-interval"'
	t "restart with the installed unit as it is" 'C systemctl restart dsd-kvdb'

	# 12. The security report.
	C systemd-analyze security dsd-kvdb --no-pager >"$W/security.log" 2>&1
	echo "# systemd-analyze security dsd-kvdb, the items it counts against us:"
	grep -E '✗|Overall' "$W/security.log" | sed 's/^/    # /'
	exposure=$(sed -n 's/.*Overall exposure level for dsd-kvdb.service: \([0-9.]*\).*/\1/p' \
	    "$W/security.log")
	t "systemd-analyze security: exposure ${exposure:-?} <= $MAX_EXPOSURE" \
	    'awk -v e="$exposure" -v m="$MAX_EXPOSURE" \
	    "BEGIN { exit !(e != \"\" && e + 0 <= m + 0) }"'

	# 13. Enabled, it starts at boot; a reboot keeps the data.
	t "systemctl enable dsd-kvdb" 'C systemctl enable dsd-kvdb'
	t "enable links it into multi-user.target.wants" \
	    '[ -L "$R/etc/systemd/system/multi-user.target.wants/dsd-kvdb.service" ]'
	t "the container powers off" poweroff
	if boot 2; then
		ok "systemd boots again on the same root"
		C systemctl is-system-running --wait >/dev/null 2>&1
		t "dsd-kvdb is active after the boot, unasked" \
		    'C systemctl is-active dsd-kvdb'
		t "all three keys survived the reboot" \
		    'C dsd-cli -a $ADDR get 1 | grep -qx "data: hello" &&
		    C dsd-cli -a $ADDR get 2 | grep -qx "data: world" &&
		    C dsd-cli -a $ADDR get 3 | grep -qx "data: three"'
		C journalctl -b -1 -u dsd-kvdb -o cat --no-pager \
		    >"$W/journal-1.log" 2>&1
		t "previous boot's journal: it stopped cleanly at the shutdown" \
		    'grep -q "kvdb: stopping" "$W/journal-1.log" &&
		    grep -q "dsd-kvdb.service: Deactivated successfully" "$W/journal-1.log" &&
		    ! grep -q "snapshot failed" "$W/journal-1.log"'
		echo "# previous boot's journal, last lines of dsd-kvdb:"
		tail -n 4 "$W/journal-1.log" | sed 's/^/    # /'
		t "the container powers off again" poweroff
	else
		not_ok "systemd boots again on the same root"
		show "$W/unshare2.log"
		show "$W/console2.log"
	fi

	finish
	exit $?
}

# ---------------------------------------------------------------------------
# Stage 1: checks that need nothing of the host, then a private mount
# namespace (every mount of the run disappears with it) under a time limit.
SELF=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
TOP=$(cd "$(dirname "$0")/../.." && pwd)

case ${1:-} in
__boot)
	shift
	boot_inner "$@"
	exit 1
	;;
__outer)
	outer
	exit $?
	;;
esac

[ "$(id -u)" -eq 0 ] || skip "needs root (namespaces, mounts, cgroups)"
for c in unshare nsenter pivot_root setsid timeout pgrep findmnt git make \
    systemctl journalctl systemd-analyze; do
	command -v "$c" >/dev/null 2>&1 || skip "no $c"
done
[ -x /lib/systemd/systemd ] || skip "no /lib/systemd/systemd"
grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null ||
    skip "no overlayfs in this kernel"
grep -qw overlay /proc/filesystems || skip "no overlayfs in this kernel"
grep -qw cgroup2 /proc/filesystems || skip "no cgroup v2 in this kernel"
unshare --mount --pid --fork --net --cgroup --uts --ipc true 2>/dev/null ||
    skip "cannot create namespaces (missing capabilities?)"
exec timeout -k 20 "$LIMIT" unshare --mount --propagation private \
    "$SELF" __outer
