// Package faults holds fault-injection tests for the queue manager under a
// real Postfix master(8): the queue manager killed mid-drain, master stopped
// and reloaded, corrupt queue files, trigger floods, misbehaving delivery
// agents, and a queue file system that fills up or turns read-only. Each test counts the
// messages sent, delivered, delivered twice, left in the queue and moved to
// corrupt, and where it is cheap runs the same fault against the C oqmgr of
// the installed Postfix for comparison.
//
// The package has no code outside its tests. The tests need root and the
// Debian postfix package, like internal/testbed.

package faults
