#!/bin/sh
# The Debian package (debian/): built from the tracked files of this tree
# out of place with dpkg-buildpackage, checked by lintian, then installed
# with dpkg in a throwaway machine (an overlay of / booting the host's own
# systemd, the machinery of tests/systemd/container.sh), where Debian's
# maintainer scripts enable and start dsd-kvdb, dsd-cli's checks run
# against it, and "dpkg --remove" then "dpkg --purge" must leave what
# Debian keeps after each and nothing more.
#
# usage: tests/pkg/deb.sh        (as root; no network needed)
# Prints "ok - ..." / "not ok - ..." per check and "N passed, M failed";
# exits 0 if all passed, 1 if not, 77 ("SKIP: reason") if this machine
# cannot boot systemd isolated.  DSD_UNIT_KEEP=1 keeps the work directory,
# with the package in it; DSD_UNIT_TIMEOUT bounds the run (seconds).

# The checks are snippets eval()ed by t(), so single quotes are meant.
# shellcheck disable=SC2016,SC2034
ADDR=127.0.0.1:7379
# shellcheck source=tests/systemd/container.sh
. "$(dirname "$0")/../systemd/container.sh"

# build_package: build the package from the tracked files in $W/pkg/dsd
# without its tests (run-all runs them) or a debug symbols package; sets
# DEB to the .deb.  Stops the run if that fails.
build_package() {
	for c in dpkg-buildpackage dpkg-parsechangelog dh lintian; do
		command -v "$c" >/dev/null 2>&1 || {
			not_ok "$c is not installed (tools/setup installs it)"
			finish
			exit 1
		}
	done
	copy_tracked "$W/pkg/dsd"
	want=$(sed -n 's/^AC_INIT(\[dsd\], \[\([^]]*\)\].*/\1/p' "$TOP/configure.ac")
	version=$(dpkg-parsechangelog -l "$W/pkg/dsd/debian/changelog" -S Version)
	t "debian/changelog's version $version is configure.ac's $want, Debian revision 1 or later" \
	    'case $version in "$want"-[1-9]*) true ;; *) false ;; esac'
	start=$(date +%s)
	if (cd "$W/pkg/dsd" &&
	    DEB_BUILD_OPTIONS="nocheck noautodbgsym parallel=2" \
	    dpkg-buildpackage -us -uc -b) >"$W/pkg.log" 2>&1; then
		ok "dpkg-buildpackage -us -uc -b ($(( $(date +%s) - start )) s)"
	else
		not_ok "dpkg-buildpackage -us -uc -b"
		tail -n 30 "$W/pkg.log" | sed 's/^/    # /'
		finish
		exit 1
	fi
	DEB=$W/pkg/dsd_${version}_$(dpkg --print-architecture).deb
	t "it made $(basename "$DEB")" '[ -f "$DEB" ]'
}

# lint: lintian on the .deb; an error fails, and so does a warning, since
# every one the package has is explained in debian/dsd.lintian-overrides.
lint() {
	lintian -I "$DEB" >"$W/lintian.log" 2>&1
	echo "# lintian -I $(basename "$DEB"):"
	grep -v 'running with root privileges' "$W/lintian.log" | sed 's/^/    # /'
	t "lintian: no errors" '! grep -q "^E:" "$W/lintian.log"'
	t "lintian: no warnings that debian/dsd.lintian-overrides does not explain" \
	    '! grep -q "^W:" "$W/lintian.log"'
}

# contents: what the package holds, against what make install installs.
contents() {
	dpkg-deb -c "$DEB" | awk '$1 !~ /^d/ { print $6 }' | sort >"$W/shipped"
	echo "# the package ships:"
	show "$W/shipped"
	for f in ./usr/sbin/dsd ./usr/bin/dsd-cli ./usr/bin/dsd-bench \
	    ./usr/share/man/man8/dsd.8.gz ./usr/share/man/man5/dsd.conf.5.gz \
	    ./usr/share/man/man1/dsd-cli.1.gz ./usr/share/man/man1/dsd-bench.1.gz \
	    ./etc/dsd/kvdb.conf ./lib/systemd/system/dsd-kvdb.service \
	    ./lib/systemd/system/dsd-kvdb-replicated@.service \
	    ./usr/share/doc/dsd/copyright; do
		check "the package ships ${f#.}" grep -qx "$f" "$W/shipped"
	done
	# The package is "make install", so a file make install gains (bash
	# completions, a man page) must be in it with no change to debian/:
	# install the package's own build again, as a user would.
	make -C "$W/pkg/dsd" install DESTDIR="$W/dest" >"$W/install.log" 2>&1
	(cd "$W/dest" && find . ! -type d) |
	    sed -e 's|^\./usr/lib/systemd/system/|./lib/systemd/system/|' \
	    -e 's|^\(\./usr/share/man/.*\)|\1.gz|' | sort >"$W/installed"
	comm -23 "$W/installed" "$W/shipped" >"$W/missing"
	t "it ships every file make install installs ($(wc -l <"$W/installed"))" \
	    '[ -s "$W/installed" ] && [ ! -s "$W/missing" ]' || show "$W/missing"
	t "/etc/dsd/kvdb.conf is a conffile" \
	    'dpkg-deb -I "$DEB" conffiles | grep -qx /etc/dsd/kvdb.conf'
	t "its postinst enables and starts dsd-kvdb, and no instance of the template" \
	    'dpkg-deb -I "$DEB" postinst >"$W/postinst" &&
	    grep -q "deb-systemd-helper enable .dsd-kvdb.service." "$W/postinst" &&
	    grep -q "deb-systemd-invoke \$_dh_action .dsd-kvdb.service." "$W/postinst" &&
	    ! grep -q replicated "$W/postinst"'
}

# upper_dsd: the paths named *dsd* among those the container has written
# (its overlay's upper layer), whiteouts of removed host files included.
upper_dsd() {
	(cd "$W/mnt/upper" && find . -name '*dsd*') | sort
}

outer() {
	container_start

	# 1. Build, lint, look inside.
	build_package
	lint
	contents

	# 2. A throwaway machine, and the package copied in.
	make_root
	boot_first
	cp "$DEB" "$R/root/"
	PKG=/root/$(basename "$DEB")
	upper_dsd >"$W/before"

	# 3. Install: Debian's postinst enables and starts dsd-kvdb.
	t "dpkg -i $(basename "$DEB")" 'C dpkg -i "$PKG" >"$W/dpkg-i.log" 2>&1' ||
	    show "$W/dpkg-i.log"
	t "dpkg: install ok installed" \
	    '[ "$(C dpkg-query -W -f="\${Status}" dsd)" = "install ok installed" ]'
	t "dsd-kvdb is enabled" '[ "$(C systemctl is-enabled dsd-kvdb)" = enabled ] &&
	    [ -L "$R/etc/systemd/system/multi-user.target.wants/dsd-kvdb.service" ]'
	t "dsd-kvdb is running, started by the postinst" \
	    '[ "$(C systemctl is-active dsd-kvdb)" = active ]'
	echo "# its unit: $(C systemctl show -p FragmentPath --value dsd-kvdb)"
	t "the template is not enabled, and no instance of it runs" \
	    '! ls "$R"/etc/systemd/system/*.wants/dsd-kvdb-replicated@* &&
	    [ -z "$(C systemctl list-units --all --no-legend "dsd-kvdb-replicated@*")" ]'
	dynamic_user dsd-kvdb
	t "dsd-cli check against it passes" \
	    'C dsd-cli -a $ADDR check >"$W/check.log" 2>&1 &&
	    grep -Eq "^[1-9][0-9]* passed, 0 failed\$" "$W/check.log"'
	tail -n 1 "$W/check.log" | sed 's/^/    # /'
	t "its data is in /var/lib/private/dsd, the dynamic user's" \
	    '[ "$(readlink "$R/var/lib/dsd")" = private/dsd ] &&
	    [ "$(stat -c %u "$R/var/lib/private/dsd")" = "$DUID" ] &&
	    ls "$R"/var/lib/private/dsd/wal-*.log'

	# 4. Stopped by hand, then started; a node of the template started
	# as its administrator would (one of three: it serves without a
	# leader); the package removed while both run.
	t "systemctl stop dsd-kvdb" 'C systemctl stop dsd-kvdb'
	t "it stopped with status 0 (Result=success)" \
	    '[ "$(C systemctl show -p Result --value dsd-kvdb)" = success ]'
	t "systemctl start dsd-kvdb" 'C systemctl start dsd-kvdb'
	cp "$R/etc/dsd/replicated.conf.example" "$R/etc/dsd/replicated-1.conf"
	t "systemctl start dsd-kvdb-replicated@1, with replicated-1.conf from the example" \
	    'C systemctl start dsd-kvdb-replicated@1 &&
	    [ -d "$R/var/lib/private/dsd-replicated/1/raft" ]'
	t "dpkg --remove dsd" 'C dpkg --remove dsd >"$W/dpkg-r.log" 2>&1' ||
	    show "$W/dpkg-r.log"
	t "the prerm stopped dsd-kvdb cleanly" \
	    '! C systemctl is-active dsd-kvdb &&
	    [ "$(C journalctl -u dsd-kvdb -o cat --no-pager |
	    grep -c "kvdb: stopping")" = 2 ]'
	t "the prerm stopped the node too, cleanly" \
	    '! C systemctl is-active dsd-kvdb-replicated@1 &&
	    C journalctl -u dsd-kvdb-replicated@1 -o cat --no-pager |
	    grep -q "dsd-kvdb-replicated@1.service: Deactivated successfully"'
	t "remove keeps the settings and the data, not the programs" \
	    '[ "$(C dpkg-query -W -f="\${Status}" dsd)" = "deinstall ok config-files" ] &&
	    [ -f "$R/etc/dsd/kvdb.conf" ] && ls "$R"/var/lib/private/dsd/wal-*.log &&
	    [ -d "$R/var/lib/private/dsd-replicated/1/raft" ] &&
	    [ ! -e "$R/usr/sbin/dsd" ] && [ ! -e "$R/usr/bin/dsd-cli" ]'
	# replicated-1.conf is the administrator's, which dpkg leaves (and
	# /etc/dsd with it): they remove it themselves.
	rm "$R/etc/dsd/replicated-1.conf"

	# 5. Purge.  debian/postrm removes the data too (it says why).
	t "dpkg --purge dsd" 'C dpkg --purge dsd >"$W/dpkg-p.log" 2>&1' ||
	    show "$W/dpkg-p.log"
	t "dpkg no longer knows dsd" '! C dpkg-query -W dsd'
	: >"$W/left"
	while IFS= read -r f; do
		[ -e "$R/$f" ] || [ -L "$R/$f" ] && echo "$f" >>"$W/left"
	done <"$W/shipped"
	t "no file of the package is left" '[ ! -s "$W/left" ]' || show "$W/left"
	t "/etc/dsd is gone" '[ ! -e "$R/etc/dsd" ]'
	t "the units are gone: systemd knows neither, nothing links to them" \
	    '! C systemctl cat dsd-kvdb.service &&
	    ! C systemctl cat dsd-kvdb-replicated@.service &&
	    ! ls "$R"/etc/systemd/system/*/dsd-*'
	t "purge removes the data (/var/lib/dsd, /var/lib/dsd-replicated)" \
	    '[ ! -e "$R/var/lib/private/dsd" ] && [ ! -L "$R/var/lib/dsd" ] &&
	    [ ! -e "$R/var/lib/private/dsd-replicated" ] &&
	    [ ! -e "$R/var/lib/dsd-replicated" ]'
	upper_dsd | comm -13 "$W/before" - >"$W/new"
	t "nothing named *dsd* is left anywhere the package wrote" \
	    '[ ! -s "$W/new" ]' || show "$W/new"

	finish
	exit $?
}

container_main "$@"
