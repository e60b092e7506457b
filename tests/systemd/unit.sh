#!/bin/sh
# The kvdb systemd unit (conf/dsd-kvdb.service.in) under a real systemd.
#
# Builds the tracked files of this tree out of place, installs them with
# "make install DESTDIR=...", boots the machine's own systemd as PID 1 of
# new pid, mount, network, cgroup, uts and ipc namespaces on an overlay of
# / (the host's files are only read: every write lands in a tmpfs; the
# machinery is in container.sh), and checks the unit there: Type=notify
# readiness (READY=1) and clean stop (STOPPING=1, final snapshot),
# DynamicUser= and StateDirectory=, the data surviving stop, SIGKILL
# (Restart=on-failure) and a reboot with the unit enabled, a forked
# snapshot under the sandbox, the metrics page the shipped settings turn
# on (loopback, with /proc/self readable under ProcSubset=pid), and the
# exposure score of "systemd-analyze security".
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
ADDR=127.0.0.1:7379
# shellcheck source=tests/systemd/container.sh
. "$(dirname "$0")/container.sh"

outer() {
	container_start

	# 1. Build and install the tracked files of this tree, out of place.
	build_install
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
	make_root

	# 3. Boot.
	boot_first
	t "before the install, systemd does not know dsd-kvdb" \
	    '! C systemctl cat dsd-kvdb.service'

	# 4. Install the unit and settings as make install put them.
	cp -a "$W/dest/." "$R/"
	t "systemctl daemon-reload" 'C systemctl daemon-reload'
	verify dsd-kvdb.service

	# 5. Start: active only after READY=1, and serving at once.
	t "systemctl start dsd-kvdb" 'C systemctl start dsd-kvdb'
	t "it serves as soon as systemctl start returns" \
	    'C dsd-cli -a $ADDR health'
	C systemctl status dsd-kvdb --no-pager >"$W/status.log" 2>&1
	echo "# systemctl status dsd-kvdb:"
	show "$W/status.log"
	t "status: Active: active (running)" \
	    'grep -q "Active: active (running)" "$W/status.log"'
	t "systemd got READY=1, and only then went start -> running" \
	    'ready_then_running dsd-kvdb.service'
	dynamic_user dsd-kvdb
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
	t "the shipped settings serve /metrics on 127.0.0.1:9379 under the sandbox" \
	    'C curl -sf http://127.0.0.1:9379/metrics >"$W/metrics" &&
	    grep -qx "dsd_requests_total{method=\"set\",status=\"SUCCESS\"} 1" "$W/metrics" &&
	    grep -qx "dsd_keys 1" "$W/metrics" &&
	    grep -Eq "^process_open_fds [1-9]" "$W/metrics" &&
	    grep -Eq "^process_start_time_seconds [1-9]" "$W/metrics"'

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
	security dsd-kvdb

	# 13. Enabled, it starts at boot; a reboot keeps the data.
	t "systemctl enable dsd-kvdb" 'C systemctl enable dsd-kvdb'
	t "enable links it into multi-user.target.wants" \
	    '[ -L "$R/etc/systemd/system/multi-user.target.wants/dsd-kvdb.service" ]'
	if container_reboot; then
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
		t "the container powers off again" container_poweroff
	fi

	finish
	exit $?
}

container_main "$@"
