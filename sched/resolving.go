package sched

import (
	"os"

	"oqmgr-go/queue"
	"oqmgr-go/transport"
)

// Limits of one batch of messages whose resolve requests go to
// trivial-rewrite together. Deliveries of a message begin only when its
// batch ends, so a batch stays small: eight file reads delay the first
// delivery by about a millisecond (an estimate from the discard benchmark).
const (
	batchMessages = 8
	batchRequests = 128
	// resolveDepth is how many requests of a batch may be with
	// trivial-rewrite at once, one on each connection.
	resolveDepth = 4
)

// resolving is a batch of imported messages in import order, each waiting
// for trivial-rewrite to resolve its recipient addresses.
type resolving struct {
	batch    ResolveBatch
	waiting  []waitingMessage
	requests int
}

// waitingMessage is one message of a batch with the file it was read from
// and its recipients in the order of their resolve requests.
type waitingMessage struct {
	msg        *message
	file       *os.File
	recipients []queue.Recipient
}

// resolveLater sends the resolve requests of a newly read message without
// waiting for the replies, and ends the batch when it is full. The message
// holds no entries until its batch ends. Meanwhile the loop reads the next
// file while trivial-rewrite works.
func (l *Loop) resolveLater(m *message, f *os.File) {
	if l.resolving == nil {
		l.resolving = &resolving{batch: l.resolver.Batch(l.ctx, resolveDepth)}
	}
	b := l.resolving
	rcpts := sortedRecipients(m.data.Recipients)
	if !m.filtered() {
		verify := m.data.TraceFlags&flagMTAVerify != 0
		for _, r := range rcpts {
			b.batch.Add(m.data.Sender, r.Address, verify)
		}
		b.requests += len(rcpts)
	}
	b.waiting = append(b.waiting, waitingMessage{msg: m, file: f, recipients: rcpts})
	l.resolvingRecipients += len(m.data.Recipients)
	l.unassigned++
	if m.data.TraceFlags&flagMTAVerify != 0 {
		l.unassignedProbes++
	}
	if len(b.waiting) >= batchMessages || b.requests >= batchRequests {
		l.finishResolving()
	}
}

// finishResolving reads the replies of the open batch, if any, and assigns
// its messages in import order, as if each had been resolved when it was
// read. After a failed request the remaining addresses are resolved one at
// a time with the usual retries, and the failed request counts as the first
// try of its address. It reports whether there was a batch to end.
func (l *Loop) finishResolving() bool {
	b := l.resolving
	if b == nil {
		return false
	}
	l.resolving = nil
	l.resolvingRecipients = 0
	results, err := b.batch.Wait()
	next := 0
	for _, w := range b.waiting {
		m := w.msg
		lookup := func(address string) (transport.Resolution, bool) {
			i := next
			next++
			switch {
			case i < len(results):
				return results[i], true
			case i == len(results) && err != nil:
				return l.resolve(m, address, err)
			default:
				return l.resolve(m, address, nil)
			}
		}
		l.unassigned--
		if m.data.TraceFlags&flagMTAVerify != 0 {
			l.unassignedProbes--
		}
		l.assignSorted(m, w.file, w.recipients, lookup)
		w.file.Close()
		l.finishIfIdle(m)
	}
	return true
}

// finishIfIdle ends the attempt of a message that has nothing to deliver
// after its recipients were assigned. When trivial-rewrite failed for good
// the process is about to exit, as the C program exits at once, so the
// message stays in active for the next process instead.
func (l *Loop) finishIfIdle(m *message) {
	if m.refs == 0 && l.fatal == nil {
		l.finish(m)
	}
}

// dropResolving releases the resolver and closes the files of a batch
// that will never end because the loop stops. Their messages stay in
// active for the next process.
func (l *Loop) dropResolving() {
	if b := l.resolving; b != nil {
		b.batch.Abandon()
		l.resolving = nil
		l.unassigned = 0
		l.unassignedProbes = 0
		for _, w := range b.waiting {
			w.file.Close()
		}
	}
}
