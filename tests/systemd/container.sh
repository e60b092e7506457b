# shellcheck shell=sh
# The machinery of the checks of dsd's systemd units under a real systemd
# (unit.sh: kvdb's unit; replicated.sh: kvdb-replicated's template unit;
# tests/pkg/deb.sh: the Debian package).  Source it from such a script,
# which defines outer() (its checks) and ends with container_main "$@".
#
# The script builds the tracked files of this tree out of place, installs
# them with "make install DESTDIR=..." (build_install; deb.sh builds a
# package of them and installs that with dpkg), and boots the
# machine's own systemd as PID 1 of new pid, mount, network, cgroup, uts
# and ipc namespaces on an overlay of / (make_root, boot): the host's
# files are only read, every write lands in a tmpfs or in the run's work
# directory.  C runs a command inside that container, t runs one check.
#
# Environment: DSD_UNIT_KEEP=1 keeps the work directory; DSD_UNIT_TIMEOUT
# bounds the whole run (seconds, default 600); DSD_UNIT_MAX_EXPOSURE is the
# highest exposure of "systemd-analyze security" accepted (default 1.5).

# The checks are snippets eval()ed by t(), so single quotes are meant.
# shellcheck disable=SC2016,SC2034
LIMIT=${DSD_UNIT_TIMEOUT:-600}
MAX_EXPOSURE=${DSD_UNIT_MAX_EXPOSURE:-1.5}
CPATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
SELF=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
TOP=$(cd "$(dirname "$0")/../.." && pwd)

skip() {
	echo "SKIP: $*"
	exit 77
}

# ---------------------------------------------------------------------------
# Stage 3: PID 1 of the container's namespaces.  Mounts the API file
# systems on the prepared root, pivots into it and becomes systemd.
# usage: SCRIPT __boot ROOT CONSOLE-FILE BOOT-ID-FILE
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
R=
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

# container_poweroff: stop the container the way a machine stops, wait for it.
container_poweroff() {
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
		container_poweroff || {
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

# container_start: the first thing outer() does.  Output on fd 3 too,
# the clean-up on exit, the work directory $W, and a cgroup $CG for this
# run, in which new namespaces are tried (exit 77 if refused).
container_start() {
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
}

# copy_tracked DIR: the tracked files of this tree, as the work tree has
# them, copied into DIR (made here): a build there sees nothing that is
# not in git, as a fresh clone would.  Stops the run if git cannot list
# them.
copy_tracked() {
	mkdir -p "$1"
	(cd "$TOP" && git ls-files) >"$W/files" 2>/dev/null || {
		not_ok "list the tracked files of $TOP (git ls-files)"
		finish
		exit 1
	}
	(cd "$TOP" && while IFS= read -r f; do
		[ -e "$f" ] || [ -L "$f" ] && printf '%s\n' "$f"
	done <"$W/files" | tar -cf - -T -) | tar -xf - -C "$1"
}

# build_install: build and install the tracked files of this tree, out
# of place, into $W/dest (the prefix is /usr, settings in /etc); list
# what was installed in $W/installed.  Stops the run if that fails.
build_install() {
	mkdir "$W/dest"
	copy_tracked "$W/src"
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
}

# make_root: the throwaway root $R, an overlay of / whose writes go to a
# tmpfs, made a machine of its own: no dsd state, settings or units of
# the host, none of the host's enabled services or fstab, its own id and
# name.
make_root() {
	mkdir "$W/mnt"
	mount -t tmpfs -o mode=0755,size=1g tmpfs "$W/mnt" ||
	    skip "cannot mount a tmpfs"
	mkdir "$W/mnt/upper" "$W/mnt/work" "$W/mnt/root"
	R=$W/mnt/root
	mount -t overlay overlay \
	    -o "lowerdir=/,upperdir=$W/mnt/upper,workdir=$W/mnt/work" "$R" \
	    2>"$W/overlay.log" ||
	    skip "cannot mount an overlay over /: $(cat "$W/overlay.log")"
	rm -rf "$R"/var/lib/dsd* "$R"/var/lib/private/dsd* "$R/etc/dsd" \
	    "$R"/usr/lib/systemd/system/dsd-* "$R"/lib/systemd/system/dsd-* \
	    "$R"/etc/systemd/system/dsd-*
	for d in "$R"/etc/systemd/system/*.wants "$R"/etc/systemd/system/*.requires; do
		[ -d "$d" ] && rm -rf "$d"
	done
	ln -sf /dev/null "$R/etc/systemd/system/console-getty.service"
	# A container image's policy-rc.d (Docker's exits 101) forbids
	# packages' maintainer scripts to start services; a machine has none.
	rm -f "$R/usr/sbin/policy-rc.d"
	: >"$R/etc/fstab"
	echo dsd-unit-test >"$R/etc/hostname"
	rm -f "$R/etc/machine-id"
	tr -d - </proc/sys/kernel/random/uuid >"$R/etc/machine-id"
	mkdir -p "$R/var/log/journal"
	[ -x "$R/lib/systemd/systemd" ] || skip "no /lib/systemd/systemd"
}

# boot_first: the first boot of $R and the container's own checks; stops
# the run if it does not boot.  systemd logs at debug level after it, so
# that the journal shows the notifications (READY=1, STOPPING=1).
boot_first() {
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
	C systemd-analyze log-level debug
}

# verify UNIT: "systemd-analyze verify UNIT" has nothing to say of dsd's
# files.
verify() {
	C systemd-analyze verify "$1" >"$W/verify.log" 2>&1
	rc=$?
	if [ $rc -eq 0 ] && ! grep -q dsd "$W/verify.log"; then
		ok "systemd-analyze verify $1 is clean"
	else
		not_ok "systemd-analyze verify $1 (exit $rc)"
		show "$W/verify.log"
	fi
}

# ready_then_running UNIT: the journal has systemd's READY=1 from UNIT's
# main process, then the change from start to running (debug level).
ready_then_running() {
	C journalctl -u "$1" -o cat --no-pager >"$W/journal.log" 2>&1
	ready=$(grep -n 'Got notification message from PID [0-9]* (READY=1)' \
	    "$W/journal.log" | head -n 1 | cut -d: -f1)
	running=$(grep -n 'Changed start -> running' "$W/journal.log" |
	    head -n 1 | cut -d: -f1)
	[ -n "$ready" ] && [ -n "$running" ] && [ "$ready" -lt "$running" ]
}

# container_reboot: power the container off and boot it again on the same root (the
# second boot), checks of both; fails if it does not come back.
container_reboot() {
	t "the container powers off" container_poweroff
	if boot 2; then
		ok "systemd boots again on the same root"
		C systemctl is-system-running --wait >/dev/null 2>&1
		return 0
	fi
	not_ok "systemd boots again on the same root"
	show "$W/unshare2.log"
	show "$W/console2.log"
	return 1
}

# dynamic_user UNIT: UNIT's main process ($MAIN) and user id ($DUID),
# its /proc status in $W/procstatus with the lines that tell its
# privileges shown, and the check that it runs as that non-root user.
dynamic_user() {
	MAIN=$(C systemctl show -p MainPID --value "$1")
	DUID=$(C systemctl show -p UID --value "$1")
	echo "# main PID $MAIN, user $(C systemctl show -p User --value "$1"), uid $DUID"
	C cat "/proc/$MAIN/status" >"$W/procstatus" 2>&1
	grep -E '^(Uid|Gid|CapEff|CapBnd|NoNewPrivs|Seccomp):' "$W/procstatus" |
	    sed 's/^/    # /'
	t "it runs as the dynamic user, not root" \
	    '[ "$DUID" -gt 0 ] && grep -Eq "^Uid:[[:space:]]+$DUID[[:space:]]" "$W/procstatus"'
}

# security UNIT: "systemd-analyze security UNIT", the items it counts
# against it shown, and its exposure checked against $MAX_EXPOSURE.
security() {
	C systemd-analyze security "$1" --no-pager >"$W/security.log" 2>&1
	echo "# systemd-analyze security $1, the items it counts against us:"
	grep -E '✗|Overall' "$W/security.log" | sed 's/^/    # /'
	exposure=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' \
	    "$W/security.log")
	t "systemd-analyze security: exposure ${exposure:-?} <= $MAX_EXPOSURE" \
	    'awk -v e="$exposure" -v m="$MAX_EXPOSURE" \
	    "BEGIN { exit !(e != \"\" && e + 0 <= m + 0) }"'
}

# ---------------------------------------------------------------------------
# Stage 1: checks that need nothing of the host, then a private mount
# namespace (every mount of the run disappears with it) under a time
# limit, in which the script's outer() runs.
container_main() {
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
	for c in unshare nsenter pivot_root setsid timeout pgrep findmnt git \
	    make systemctl journalctl systemd-analyze; do
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
}
