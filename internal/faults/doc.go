// Package faults holds fault-injection tests for the queue manager under a
// real Postfix master(8): the queue manager killed mid-drain, master stopped
// and reloaded, corrupt queue files, trigger floods and misbehaving delivery
// agents. Each test counts the
// messages sent, delivered, delivered twice, left in the queue and moved to
// corrupt, and where it is cheap runs the same fault against the C oqmgr of
// the installed Postfix for comparison.
//
// The package has no code outside its tests. The tests need root and the
// Debian postfix package, like internal/testbed.
//
// TODO: no test yet fills the queue file system or makes it read-only
// during a drain (a small tmpfs mounted over the queue directory would do).
package faults
