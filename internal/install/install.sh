#!/bin/sh
# install.sh installs or removes the files of oqmgr-go. `make install`,
# `make uninstall`, `make deb` and the Go tests in this directory run it.
#
#   install.sh [-u] -b BINARY [-d DAEMON_DIR] [-p PREFIX] [-r DESTDIR]
#
# Files, below DESTDIR:
#   DAEMON_DIR/oqmgr-go/qmgr            the queue manager
#   DAEMON_DIR/oqmgr-go/oqmgr           a hard link to it, for master.cf
#                                       entries that ran the C oqmgr
#   PREFIX/sbin/oqmgr-go-switch         the switch command
#   PREFIX/share/man/man8/oqmgr-go.8    the manual page
#
# DAEMON_DIR defaults to `postconf -xh daemon_directory`, PREFIX to
# /usr/local. -u removes the files instead, and fails while a process runs
# the installed binary, because master(8) would fail to restart it.

set -eu
PATH=$PATH:/usr/sbin:/usr/bin:/sbin:/bin

src=$(dirname "$0")
binary=
daemon_dir=
prefix=/usr/local
destdir=
uninstall=false

fail() {
	echo "install.sh: error: $*" >&2
	exit 1
}

while getopts b:d:p:r:u opt; do
	case $opt in
	b) binary=$OPTARG ;;
	d) daemon_dir=$OPTARG ;;
	p) prefix=$OPTARG ;;
	r) destdir=$OPTARG ;;
	u) uninstall=true ;;
	*) fail "usage: install.sh [-u] -b BINARY [-d DAEMON_DIR] [-p PREFIX] [-r DESTDIR]" ;;
	esac
done

if [ -z "$daemon_dir" ]; then
	daemon_dir=$(postconf -xh daemon_directory 2>/dev/null) ||
		fail "cannot read daemon_directory with postconf: install Postfix or pass -d DAEMON_DIR (make install DAEMON_DIR=...)"
fi
case $daemon_dir in
/*) ;;
*) fail "daemon directory \"$daemon_dir\" is not an absolute path" ;;
esac

libexec=$destdir$daemon_dir/oqmgr-go
sbin=$destdir$prefix/sbin
man8=$destdir$prefix/share/man/man8

if $uninstall; then
	for pid_dir in /proc/[0-9]*; do
		exe=$(readlink "$pid_dir/exe" 2>/dev/null) || continue
		case $exe in
		"$libexec"/qmgr | "$libexec"/oqmgr)
			fail "process ${pid_dir#/proc/} runs $exe: run oqmgr-go-switch off for its Postfix instance first"
			;;
		esac
	done
	rm -f "$libexec/qmgr" "$libexec/oqmgr" "$sbin/oqmgr-go-switch" "$man8/oqmgr-go.8"
	if [ -d "$libexec" ]; then
		rmdir "$libexec" || fail "$libexec is not empty after removing oqmgr-go's files"
	fi
	echo "install.sh: removed oqmgr-go from $destdir$daemon_dir and $destdir$prefix"
	exit 0
fi

[ -n "$binary" ] || fail "missing -b BINARY (the oqmgr build, e.g. bin/oqmgr)"
[ -f "$binary" ] || fail "binary $binary not found: run make build"

# postfix-script check-warn wants daemon_directory owned by root and not
# group or world writable, and that covers this subdirectory.
install -d -m 0755 "$libexec" "$sbin" "$man8"
install -m 0755 "$binary" "$libexec/qmgr.new"
mv -f "$libexec/qmgr.new" "$libexec/qmgr"
ln -f "$libexec/qmgr" "$libexec/oqmgr"
install -m 0755 "$src/oqmgr-go-switch" "$sbin/oqmgr-go-switch"
install -m 0644 "$src/oqmgr-go.8" "$man8/oqmgr-go.8"
echo "install.sh: installed $libexec/qmgr, $sbin/oqmgr-go-switch and $man8/oqmgr-go.8"
