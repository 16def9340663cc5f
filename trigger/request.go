package trigger

import (
	"fmt"
	"strings"
)

// Request is the set of queue-manager requests decoded from one trigger
// buffer. The request bytes are defined in Postfix's mail_proto.h.
type Request uint8

const (
	// ScanIncoming asks for a scan of the incoming queue, or a new scan
	// once the current one ends. Both 'I' and the wakeup byte 'W' mean this.
	ScanIncoming Request = 1 << iota
	// ScanDeferred ('D') asks for a scan of the deferred queue.
	ScanDeferred
	// ScanAll ('A') makes the running and the next scans of both queues
	// ignore file time stamps.
	ScanAll
	// FlushDead ('F') forgets all dead transports and destinations and
	// overrides defer_transports for the running and next scans.
	FlushDead
)

// Request bytes as sent on the wire.
const (
	byteWakeup       = 'W' // TRIGGER_REQ_WAKEUP, sent by master's wakeup timer and cleanup(8)
	byteScanIncoming = 'I' // QMGR_REQ_SCAN_INCOMING
	byteScanDeferred = 'D' // QMGR_REQ_SCAN_DEFERRED
	byteFlushDead    = 'F' // QMGR_REQ_FLUSH_DEAD
	byteScanAll      = 'A' // QMGR_REQ_SCAN_ALL
)

// Parse decodes one trigger buffer. Bytes other than W, I, D, A and F are
// ignored, which includes the NUL that socket clients append and any
// garbage. Parse never fails, and an empty or unknown buffer yields 0.
func Parse(b []byte) Request {
	var r Request
	for _, c := range b {
		r |= requestOf(c)
	}
	return r
}

// requestOf returns the request for one byte, or 0 for an unknown byte.
func requestOf(c byte) Request {
	switch c {
	case byteWakeup, byteScanIncoming:
		return ScanIncoming
	case byteScanDeferred:
		return ScanDeferred
	case byteScanAll:
		return ScanAll
	case byteFlushDead:
		return FlushDead
	}
	return 0
}

// Has reports whether every request in flag is set in r.
func (r Request) Has(flag Request) bool {
	return r&flag == flag
}

var requestNames = []struct {
	flag Request
	name string
}{
	{ScanIncoming, "ScanIncoming"},
	{ScanDeferred, "ScanDeferred"},
	{ScanAll, "ScanAll"},
	{FlushDead, "FlushDead"},
}

// String returns the names of the requests in r joined by "|", for
// example "ScanIncoming|FlushDead", or "none" for the empty set.
func (r Request) String() string {
	if r == 0 {
		return "none"
	}
	var names []string
	rest := r
	for _, n := range requestNames {
		if r&n.flag != 0 {
			names = append(names, n.name)
			rest &^= n.flag
		}
	}
	if rest != 0 {
		names = append(names, fmt.Sprintf("Request(%#x)", uint8(rest)))
	}
	return strings.Join(names, "|")
}
