package sched

import (
	"oqmgr-go/queue"
)

// scanFlags modify how a directory scan treats the files it finds.
type scanFlags uint8

const (
	// scanAll ignores the future time stamps of deferred files (trigger A).
	scanAll scanFlags = 1 << iota
	// scanFlush revives dead destinations met while loading and ignores
	// defer_transports (trigger F).
	scanFlush
)

// scan is the state of one queue directory scan, after qmgr_scan.c: the
// running walk with its flags, and the flags and restart request for the
// walk that follows.
type scan struct {
	queue   string
	walk    *queue.Scan
	flags   scanFlags
	next    scanFlags
	restart bool
}

func (s *scan) running() bool { return s.walk != nil }

// startScan opens a new walk of the scan's directory, or asks the running
// one to start over when it reaches the end.
func (l *Loop) startScan(s *scan, flags scanFlags) {
	if s.running() {
		s.restart = true
		s.next |= flags
		return
	}
	walk, err := l.dir.Scan(s.queue)
	if err != nil {
		l.log.Warning("scan %s: %v", s.queue, err)
		return
	}
	s.walk = walk
	s.flags = flags | s.next
	s.next = 0
}

// requestScan applies one trigger to a scan: modifiers take effect on the
// running walk and the next one, and start begins or restarts the walk.
func (l *Loop) requestScan(s *scan, flags scanFlags, start bool) {
	if s.running() {
		s.flags |= flags
	}
	if start {
		l.startScan(s, flags)
		return
	}
	s.next |= flags
}

// nextID returns the next queue id of the scan, restarting the walk once
// when a restart was requested while it ran.
func (l *Loop) nextID(s *scan) (queue.ID, bool) {
	for s.running() {
		id, ok := s.walk.Next()
		if ok {
			return id, true
		}
		if err := s.walk.Close(); err != nil {
			l.log.Warning("scan %s: %v", s.queue, err)
		}
		s.walk = nil
		if !s.restart {
			break
		}
		s.restart = false
		l.startScan(s, 0)
	}
	return "", false
}

// feed imports at most one file into the active queue, alternating between
// the incoming and deferred scans like qmgr_loop. It reports whether a
// directory entry was taken, which means the loop should poll again.
//
// A file whose recipients wait for trivial-rewrite in a batch counts as
// taken. When no file is left to take, the batch ends, and that counts as
// work done too, because it gives the agents new entries.
func (l *Loop) feed() (took bool, fromIncoming bool, err error) {
	if len(l.messages) >= l.cfg.QmgrMessageActiveLimit ||
		l.recipientCount+l.resolvingRecipients >= l.cfg.QmgrMessageRecipientLimit {
		l.incomingFirst = true
		return l.finishResolving(), false, nil
	}

	first, second := &l.incoming, &l.deferred
	if !l.incomingFirst {
		first, second = second, first
	}
	l.incomingFirst = !l.incomingFirst

	for _, s := range []*scan{first, second} {
		id, ok := l.nextID(s)
		if !ok {
			continue
		}
		waiting := l.unassigned
		if err := l.importFile(s, id); err != nil {
			return true, s == &l.incoming, err
		}
		if l.unassigned == waiting {
			// A skipped entry ends the batch, so that a scan through files
			// that are not due keeps no message from its agents.
			l.finishResolving()
		}
		return true, s == &l.incoming, nil
	}
	return l.finishResolving(), false, nil
}

// refillFlow keeps master's flow-control pipe topped up so that cleanup(8)
// does not wait in_flow_delay for a token, after qmgr_loop's token logic.
func (l *Loop) refillFlow(importedIncoming bool) {
	if l.flow == nil || l.cfg.InFlowDelay <= 0 {
		return
	}
	limit := l.cfg.DefaultProcessLimit
	n, err := l.flow.Count()
	if err != nil {
		l.log.Warning("flow control: %v", err)
		return
	}
	switch {
	case n < limit && importedIncoming:
		err = l.flow.Put(1)
	case n < limit && !l.incoming.running():
		err = l.flow.Put(limit - n)
	case n > limit:
		err = l.flow.Get(n - limit)
	}
	if err != nil {
		l.log.Warning("flow control: %v", err)
	}
}
