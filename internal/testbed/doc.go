// Package testbed owns private Postfix 3.7 instances for tests, benchmarks
// and the demo. An instance is a master(8) with its own configuration, queue,
// data and daemon directories that listens on loopback ports only. Its qmgr
// service runs the queue-manager binary under test. Several instances can run
// side by side, for example one with the C oqmgr and one with ours.
//
// The package also starts smtp-sink(1) processes that act as the remote SMTP
// server and count what reached them.
//
// Requirements: root, and the Debian postfix package (`make deps` installs
// it). Local delivery goes to the system user LocalUser, which the package
// creates with useradd(8) on first use if it is missing. Each instance's
// configuration directory is appended to alternate_config_directories in
// /etc/postfix/main.cf, because the set-gid postdrop(1) refuses other
// configuration directories. Instances live in numbered slot directories under
// $TMPDIR/oqmgr-testbed that are reused, so that list stays short.
//
// Create and StartSinkProcess return errors and suit programs; New and
// StartSink wrap them for tests and register cleanups.
package testbed
