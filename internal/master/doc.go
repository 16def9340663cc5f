// Package master owns the process side of the contract with Postfix's
// master(8): the inherited descriptor numbers, the 12-byte status records
// on the status channel, the end-of-file on that channel that tells the
// process to exit, and the in_flow_delay tokens on the flow-control pipe.
//
// It does not read triggers (package trigger does) and it does not decide
// when to exit; callers watch Status.Gone and act on it.
package master

// Descriptors that master(8) passes to every child process, from
// src/master/master_proto.h.
const (
	// FlowReadFD is the read end of master's flow-control pipe (non-blocking).
	FlowReadFD = 3
	// FlowWriteFD is the write end of the same pipe (non-blocking).
	FlowWriteFD = 4
	// StatusFD is the child end of the service's status socket pair.
	StatusFD = 5
	// ListenFD is the first listening endpoint of the service.
	ListenFD = 6
)
