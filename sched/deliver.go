package sched

import (
	"errors"
	"regexp"
	"strings"
	"unicode/utf8"

	"oqmgr-go/queue"
	"oqmgr-go/transport"
)

// maxPendingAgents bounds the agent connections one transport may have in
// progress before they are ready (QMGR_TRANSPORT_MAX_PEND).
const maxPendingAgents = 2

// suspendedPrefix starts the reason of a destination that is avoided.
const suspendedPrefix = "delivery temporarily suspended: "

// allocateAgents requests delivery-agent connections while some transport
// has more deliveries waiting than connections pending, rotating the
// transport list for round robin, after qmgr_transport_select and
// qmgr_transport_alloc.
func (l *Loop) allocateAgents() {
	for {
		tr := l.selectTransport()
		if tr == nil {
			return
		}
		tr.pending++
		if tr.limits.TransportRateDelay > 0 {
			tr.rateLocked = true
		}
		l.openAgent(tr)
	}
}

// openAgent connects to one agent of tr and watches for its announcement,
// after qmgr_transport_alloc. As there, a failed connect is handled on the
// next pass of the loop.
func (l *Loop) openAgent(tr *transportState) {
	agent, err := l.peers.OpenAgent(tr.name)
	if err != nil {
		l.timers.add(l.now(), func() { l.agentReady(tr, nil, err) })
		return
	}
	l.poller.reused(agent.Fd())
	err = l.awaitAgent(agent, agent.AnnouncementTimeout, func() {
		if err := agent.ReadAnnouncement(); err != nil {
			agent.Close()
			l.agentReady(tr, nil, err)
			return
		}
		l.agentReady(tr, agent, nil)
	})
	if err != nil {
		l.timers.add(l.now(), func() { l.agentReady(tr, nil, err) })
	}
}

// awaitAgent runs ready once the agent's socket has input, which ends the
// watch. An agent silent for daemon_timeout ends the process with the error
// from timeout, as qmgr_transport_abort and qmgr_deliver_abort do. If the
// socket cannot be watched, the agent is closed and the error returned.
func (l *Loop) awaitAgent(agent Agent, timeout func() error, ready func()) error {
	fd := agent.Fd()
	guard := l.timers.add(l.now().Add(l.cfg.DaemonTimeout), func() {
		l.poller.forget(fd)
		agent.Close()
		l.setFatal(timeout())
	})
	err := l.poller.watch(fd, func() {
		guard.cancel()
		// Each handler closes the agent or watches it for the reply.
		l.poller.park(fd)
		ready()
	}, func() { agent.Close() })
	if err != nil {
		guard.cancel()
		agent.Close()
	}
	return err
}

// selectTransport returns a transport that can use one more agent and
// moves it to the end of the round-robin list.
func (l *Loop) selectTransport() *transportState {
	for i, tr := range l.transportOrder {
		if tr.dead || tr.rateLocked || tr.pending >= maxPendingAgents {
			continue
		}
		need := tr.pending + 1
		have := 0
		for _, q := range tr.order {
			if !q.ready() {
				continue
			}
			have += min(q.window-len(q.busy), len(q.todo))
			if have >= need {
				break
			}
		}
		if have < need {
			continue
		}
		l.transportOrder = rotateAfter(l.transportOrder, i)
		return tr
	}
	return nil
}

// agentReady runs when an agent connection announced itself or failed.
func (l *Loop) agentReady(tr *transportState, agent Agent, err error) {
	tr.pending--
	if err != nil {
		l.log.Warning("%v", err)
		dsn := transport.DSN{Status: "4.3.0", Reason: "mail transport unavailable"}
		l.throttleTransport(tr, dsn)
		l.deferTransport(tr, dsn)
		return
	}
	if delay := tr.limits.TransportRateDelay; delay > 0 {
		l.timers.add(l.now().Add(delay), func() { l.dispatch(tr, agent) })
		return
	}
	l.dispatch(tr, agent)
}

// dispatch picks the next entry for a ready agent and sends the request,
// after qmgr_deliver. With nothing to send the agent is simply closed.
func (l *Loop) dispatch(tr *transportState, agent Agent) {
	q := l.selectQueue(tr)
	if q == nil {
		agent.Close()
		return
	}
	e := l.selectEntry(q)
	req := l.deliveryRequest(e)
	if err := agent.Send(req); err != nil {
		agent.Close()
		l.deliveryDone(e, transport.DeliveryReply{}, err)
		return
	}
	// A reply that never comes ends the process; the next one finds the
	// file in active.
	timeout := func() error { return agent.ReplyTimeout(req.QueueID) }
	err := l.awaitAgent(agent, timeout, func() {
		reply, err := agent.ReadReply()
		agent.Close()
		l.deliveryDone(e, reply, err)
	})
	if err != nil {
		l.deliveryDone(e, transport.DeliveryReply{}, err)
	}
}

// selectQueue picks, round robin, a ready queue with room in its window
// and waiting entries, after qmgr_queue_select.
func (l *Loop) selectQueue(tr *transportState) *destQueue {
	for i, q := range tr.order {
		if q.window > len(q.busy) && len(q.todo) > 0 {
			tr.order = rotateAfter(tr.order, i)
			return q
		}
	}
	return nil
}

// selectEntry moves the oldest waiting entry to busy and updates the
// connection-caching hints, after qmgr_entry_select.
func (l *Loop) selectEntry(q *destQueue) *entry {
	e := q.todo[0]
	q.todo = q.todo[1:]
	q.busy = append(q.busy, e)

	backToBack := !q.lastDone.IsZero() && q.lastDone.Unix()+1 >= l.now().Unix()
	if q.cacheFlags&flagConnStore == 0 {
		if backToBack {
			q.cacheFlags |= flagConnLoad | flagConnStore
		}
	} else if len(q.busy) <= 1 && !backToBack {
		q.cacheFlags &^= flagConnStore
	}
	return e
}

// deliveryRequest builds the request an agent receives for one entry.
func (l *Loop) deliveryRequest(e *entry) *transport.DeliveryRequest {
	d := e.msg.data
	flags := d.TraceFlags | e.queue.cacheFlags
	if d.Inspect {
		flags |= flagBounce
	} else {
		flags |= flagDefault
	}
	req := &transport.DeliveryRequest{
		Flags: flags, QueueName: queue.Active, QueueID: string(e.msg.id),
		Offset: d.ContentOffset, Size: d.DataSize, Nexthop: e.queue.nexthop,
		Encoding: d.Encoding, SMTPUTF8: d.SMTPUTF8, Sender: d.Sender,
		EnvelopeID: d.EnvelopeID, RetFlags: d.RetFlags,
		Stats:            transport.Stats{IncomingArrival: d.Arrival, ActiveArrival: e.msg.activeArrival},
		LogClientName:    d.LogClientName,
		LogClientAddress: d.LogClientAddress,
		LogClientPort:    d.LogClientPort,
		LogProtocolName:  d.LogProtocolName,
		LogHeloName:      d.LogHeloName,
		SASLMethod:       d.SASLMethod,
		SASLUsername:     d.SASLUsername,
		SASLSender:       d.SASLSender,
		LogIdent:         d.LogIdent,
		RewriteContext:   d.RewriteContext,
	}
	if d.VERP != "" && len(e.recipients) > 0 {
		req.Sender = verpSender(d.VERP, d.Sender, e.recipients[0])
	}
	req.SMTPUTF8 |= l.recipientUTF8Flags(d, e.recipients)
	for _, r := range e.recipients {
		req.Recipients = append(req.Recipients, transport.RequestRecipient{
			OrigAddress: r.OrigAddress, Address: r.Address, Offset: r.Offset,
			DSNOrig: r.DSNOrig, Notify: r.Notify,
		})
	}
	return req
}

var dsnStatusPattern = regexp.MustCompile(`^[245]\.[0-9]{1,3}\.[0-9]{1,3}$`)

// deliveryDone applies an agent's reply, after qmgr_deliver_update: a
// crash or a non-zero status marks the message for retry, a reply with a
// reason counts against the destination, and any real reply revives the
// transport.
func (l *Loop) deliveryDone(e *entry, reply transport.DeliveryReply, err error) {
	q := e.queue
	tr := q.transport
	if errors.Is(err, transport.ErrRequestWrite) {
		// The agent never got the request: put the entry back and treat
		// the transport as unavailable, as qmgr_deliver does.
		l.log.Warning("%v", err)
		q.busy = removeEntry(q.busy, e)
		q.todo = append(q.todo, e)
		dsn := transport.DSN{Status: "4.3.0", Reason: "mail transport unavailable"}
		l.throttleTransport(tr, dsn)
		l.deferTransport(tr, dsn)
		return
	}
	crash := err != nil
	dsn := reply.DSN
	if crash {
		if warning := transport.ReaderWarning(err); warning != "" {
			l.log.Warning("%s", warning)
		}
		l.log.Warning("%v", err)
		dsn = transport.DSN{Status: "4.3.0", Reason: "unknown mail transport error"}
	}

	if crash || reply.Status != 0 {
		e.msg.retry = true
		if dsn.Status != "" {
			if !dsnStatusPattern.MatchString(dsn.Status) {
				dsn.Status = "4.0.0"
			}
			if dsn.Reason == "" {
				dsn.Reason = "unknown error"
			}
			dsn.Reason = suspendedPrefix + dsn.Reason
			if q.ready() {
				l.throttleQueue(q, dsn)
				if q.dead() {
					l.deferTodo(q, dsn)
				}
			}
		}
	}
	if !crash {
		l.unthrottleTransport(tr)
		if reply.DSN.Reason == "" {
			l.unthrottleQueue(q)
		}
	}
	l.entryDone(e, true)
}

// entryDone removes an entry that was delivered (busy) or handed elsewhere
// (todo), after qmgr_entry_done.
func (l *Loop) entryDone(e *entry, busy bool) {
	q := e.queue
	tr := q.transport
	if busy {
		q.busy = removeEntry(q.busy, e)
		q.lastDone = l.now()
	} else {
		q.todo = removeEntry(q.todo, e)
	}
	e.msg.inCore -= len(e.recipients)
	l.recipientCount -= len(e.recipients)

	if busy && tr.limits.DestinationRateDelay > 0 {
		if q.dead() {
			l.unthrottleQueue(q)
		}
		if q.ready() {
			l.suspendQueue(q, tr.limits.DestinationRateDelay)
		}
	}
	if len(q.todo) == 0 && len(q.busy) == 0 {
		if q.dead() && l.queueCount() > 2*l.cfg.QmgrMessageRecipientLimit {
			l.unthrottleQueue(q)
		}
		l.discardIfIdle(q)
	}

	m := e.msg
	m.refs--
	// Read more recipients of a large message once enough of the in-core
	// recipients are done, after qmgr_entry_done.
	// Like the C program's count, this one includes the recipients that
	// wait in a batch for trivial-rewrite.
	inCore := l.recipientCount + l.resolvingRecipients
	if m.data.NextRecipientOffset > 0 && !m.finishing && inCore < l.batchLimit()-100 {
		if err := l.loadMore(m); err != nil {
			l.log.Warning("%s: %v", m.id, err)
		}
	}
	if m.refs == 0 {
		l.finish(m)
	}
}

func removeEntry(list []*entry, e *entry) []*entry {
	for i, other := range list {
		if other == e {
			return append(list[:i], list[i+1:]...)
		}
	}
	return list
}

// SMTPUTF8 flags of a delivery request (smtputf8.h).
const (
	smtputf8Sender    = 4
	smtputf8Recipient = 8
)

// recipientUTF8Flags returns the SMTPUTF8 bits a request gains when a
// recipient address is non-ASCII UTF-8, after qmgr_deliver_send_request.
func (l *Loop) recipientUTF8Flags(d *queue.Message, rcpts []queue.Recipient) int {
	if !l.cfg.SMTPUTF8Enable {
		return 0
	}
	flags := 0
	for _, r := range rcpts {
		if r.Address == "" || isASCII(r.Address) || !utf8.ValidString(r.Address) {
			continue
		}
		flags |= smtputf8Recipient
		if d.VERP != "" {
			flags |= smtputf8Sender
		}
	}
	return flags
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// verpSender turns prefix@origin into prefix+user=domain@origin for one
// recipient, using its original address when there is one, as
// verp_sender does. delims holds the two VERP delimiter characters.
func verpSender(delims, sender string, rcpt queue.Recipient) string {
	recipient := rcpt.OrigAddress
	if recipient == "" {
		recipient = rcpt.Address
	}
	senderLocal, senderDomain := splitAtLast(sender)
	rcptLocal, rcptDomain := splitAtLast(recipient)

	var b strings.Builder
	b.WriteString(senderLocal)
	b.WriteByte(delims[0])
	b.WriteString(rcptLocal)
	if rcptDomain != "" {
		b.WriteByte(delims[1])
		b.WriteString(rcptDomain)
	}
	if senderDomain != "" {
		b.WriteByte('@')
		b.WriteString(senderDomain)
	}
	return b.String()
}

// splitAtLast splits an address at its last '@'.
func splitAtLast(addr string) (local, domain string) {
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return addr, ""
	}
	return addr[:at], addr[at+1:]
}

// rotateAfter turns a round-robin list so that the element at i becomes the
// last and the elements after it come first, as QMGR_LIST_ROTATE does.
func rotateAfter[T any](list []T, i int) []T {
	rotated := make([]T, 0, len(list))
	rotated = append(rotated, list[i+1:]...)
	return append(rotated, list[:i+1]...)
}
