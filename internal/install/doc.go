// Package install contains what puts oqmgr-go on an operator's Postfix and
// takes it off again, and the tests that run it on private Postfix
// instances. The package has no Go API: the files are shell scripts, a
// manual page and Debian packaging.
//
//   - install.sh installs or removes the binary, the switch command and the
//     manual page (make install, make uninstall).
//   - oqmgr-go-switch points the qmgr service of master.cf at oqmgr-go or
//     back at Postfix's own queue manager, and reloads Postfix (make
//     switch-on, make switch-off).
//   - deb.sh and debian/ build the Debian package (make deb).
//   - oqmgr-go.8 is the manual page, which lists the known differences from
//     the C oqmgr(8).
package install
