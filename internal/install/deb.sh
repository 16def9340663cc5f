#!/bin/sh
# deb.sh builds the oqmgr-go Debian package from a staged tree with
# dpkg-deb. `make deb` and the Go tests in this directory run it.
#
#   deb.sh -b BINARY -v VERSION -o OUTPUT_DIR
#
# The package installs with install.sh's layout for Debian's Postfix
# (daemon_directory /usr/lib/postfix/sbin, prefix /usr). It prints the path
# of the .deb it wrote.

set -eu
PATH=$PATH:/usr/sbin:/usr/bin:/sbin:/bin

src=$(cd "$(dirname "$0")" && pwd)
binary=
version=
out=

fail() {
	echo "deb.sh: error: $*" >&2
	exit 1
}

while getopts b:v:o: opt; do
	case $opt in
	b) binary=$OPTARG ;;
	v) version=$OPTARG ;;
	o) out=$OPTARG ;;
	*) fail "usage: deb.sh -b BINARY -v VERSION -o OUTPUT_DIR" ;;
	esac
done
[ -n "$binary" ] && [ -n "$version" ] && [ -n "$out" ] || fail "usage: deb.sh -b BINARY -v VERSION -o OUTPUT_DIR"
command -v dpkg-deb >/dev/null || fail "dpkg-deb not found: install the dpkg package"
case $version in
[0-9]*) ;;
*) fail "version \"$version\" must start with a digit" ;;
esac
arch=$(dpkg --print-architecture)

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root=$stage/root

"$src/install.sh" -b "$binary" -d /usr/lib/postfix/sbin -p /usr -r "$root" >/dev/null
gzip -9n "$root/usr/share/man/man8/oqmgr-go.8"
install -d -m 0755 "$root/usr/share/doc/oqmgr-go" "$root/DEBIAN"
install -m 0644 "$src/debian/copyright" "$root/usr/share/doc/oqmgr-go/copyright"
install -m 0755 "$src/debian/prerm" "$src/debian/postrm" "$root/DEBIAN/"

size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" \
	"$src/debian/control.in" >"$root/DEBIAN/control"

mkdir -p "$out"
deb=$out/oqmgr-go_${version}_$arch.deb
dpkg-deb --root-owner-group -Zgzip --build "$root" "$deb" >/dev/null
echo "$deb"
