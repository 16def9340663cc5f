package sched

import (
	"os"
	"sort"
	"strings"
	"time"

	"oqmgr-go/internal/maillog"
	"oqmgr-go/queue"
	"oqmgr-go/transport"
)

// entry is one future delivery request: recipients of one message for one
// destination queue.
type entry struct {
	msg        *message
	queue      *destQueue
	recipients []queue.Recipient
}

// routed is a recipient with the queue it was assigned to.
type routed struct {
	rcpt  queue.Recipient
	queue *destQueue
}

// lookupFunc returns trivial-rewrite's result for the recipient addresses
// of one message, in the order in which assign looks them up.
type lookupFunc func(address string) (transport.Resolution, bool)

// assign resolves the recipients of a batch and appends them to the todo
// lists of their destination queues, after qmgr_message_sort,
// qmgr_message_resolve and qmgr_message_assign. Lookup resolves the
// addresses that go to trivial-rewrite. With nil, each address is sent to
// trivial-rewrite on its own.
func (l *Loop) assign(m *message, f *os.File, rcpts []queue.Recipient, lookup lookupFunc) {
	if lookup == nil {
		// The connection is free only when no batch waits on it.
		l.finishResolving()
		lookup = func(address string) (transport.Resolution, bool) {
			return l.resolve(m, address, nil)
		}
	}
	l.assignSorted(m, f, sortedRecipients(rcpts), lookup)
}

// sortedRecipients returns a copy of rcpts in the order of
// qmgr_message_sort, which is also the order of the resolve requests.
func sortedRecipients(rcpts []queue.Recipient) []queue.Recipient {
	sorted := append([]queue.Recipient(nil), rcpts...)
	sortByDomain(sorted)
	return sorted
}

// assignSorted is assign for recipients that sortedRecipients returned.
func (l *Loop) assignSorted(m *message, f *os.File, rcpts []queue.Recipient, lookup lookupFunc) {
	var list []routed
	for i := range rcpts {
		if m.data.Redirect != "" && i > 0 {
			// A redirect record replaces every recipient by one address.
			break
		}
		q, ok := l.route(m, f, &rcpts[i], lookup)
		if !ok {
			continue
		}
		list = append(list, routed{rcpt: rcpts[i], queue: q})
	}

	sort.SliceStable(list, func(i, j int) bool {
		a, b := list[i], list[j]
		if a.queue.transport.name != b.queue.transport.name {
			return a.queue.transport.name < b.queue.transport.name
		}
		if a.queue.name != b.queue.name {
			return a.queue.name < b.queue.name
		}
		return lessByDomain(a.rcpt.Address, b.rcpt.Address)
	})

	var current *entry
	for _, r := range list {
		limit := r.queue.transport.limits.RecipientLimit
		if current == nil || current.queue != r.queue || m.data.VERP != "" ||
			(limit > 0 && len(current.recipients) >= limit) {
			current = &entry{msg: m, queue: r.queue}
			r.queue.todo = append(r.queue.todo, current)
			m.refs++
			l.warnClog(r.queue)
		}
		current.recipients = append(current.recipients, r.rcpt)
		m.inCore++
		l.recipientCount++
	}
}

// route decides the transport and queue of one recipient and may rewrite
// its address. It returns false when the recipient needs no delivery
// request: discarded, recorded as deferred, or not resolvable right now.
func (l *Loop) route(m *message, f *os.File, rcpt *queue.Recipient, lookup lookupFunc) (*destQueue, bool) {
	res, ok := l.resolveRecipient(m, rcpt, lookup)
	if !ok {
		return nil, false
	}
	redirect := func(tr, nexthop string) {
		res.Flags = 0
		res.Transport = tr
		res.Nexthop = nexthop
	}

	if rcpt.Address == "" {
		redirect(serviceError, "5.1.3 null recipient address")
	}
	if m.forced {
		redirect(serviceRetry, "4.7.0 message is administratively expired")
	}
	if res.Flags&transport.ResolveClassLocal != 0 && l.isDoubleBounce(res.Recipient) {
		l.discardDoubleBounce(m, f, *rcpt)
		return nil, false
	}
	if l.isDeferTransport(res.Transport) && !m.flushed {
		redirect(serviceRetry, "4.3.2 deferred transport")
	}
	// Probes read after this one that wait in a batch do not count yet,
	// as they would not in the C program.
	probes := l.verifyPending - l.unassignedProbes
	if m.data.TraceFlags&flagMTAVerify != 0 && probes > l.cfg.AddressVerifyPendingRequestLimit {
		redirect(serviceRetry, "4.3.2 Too many address verification requests")
	}

	tr := l.findTransport(res.Transport)
	if m.flushed && tr.dead {
		l.unthrottleTransport(tr)
	}
	if tr.dead {
		saved := tr.reason
		retry := l.findTransport(serviceRetry)
		if retry.dead {
			l.deferRecipient(m, *rcpt, saved)
			return nil, false
		}
		tr = retry
		res.Nexthop = saved.Status + " " + saved.Reason
	}

	q := l.findQueue(tr, l.queueName(tr, res), res.Nexthop)
	if m.flushed && q.dead() {
		l.unthrottleQueue(q)
	}
	if q.dead() {
		saved := q.reason
		if q = l.retryQueue(saved); q == nil {
			l.deferRecipient(m, *rcpt, saved)
			return nil, false
		}
	}
	return q, true
}

// resolveRecipient finds the transport, nexthop and final address of a
// recipient: a redirect or content filter first, then trivial-rewrite
// through lookup.
func (l *Loop) resolveRecipient(m *message, rcpt *queue.Recipient, lookup lookupFunc) (transport.Resolution, bool) {
	data := m.data
	if data.Redirect != "" {
		addr, err := l.resolver.Rewrite(l.ctx, "local", data.Redirect)
		if err != nil {
			l.log.Warning("%s: rewrite redirect address %s: %v", m.id, data.Redirect, err)
			m.retry = true
			return transport.Resolution{}, false
		}
		rcpt.Address = addr
	}
	if m.filtered() {
		name, nexthop, _ := strings.Cut(data.Filter, ":")
		if nexthop == "" {
			nexthop = l.cfg.DefaultFilterNexthop
		}
		if nexthop == "" {
			if at := strings.LastIndexByte(rcpt.Address, '@'); at >= 0 && at+1 < len(rcpt.Address) {
				nexthop = rcpt.Address[at+1:]
			}
		}
		if nexthop == "" {
			nexthop = l.cfg.MyHostname
		}
		return transport.Resolution{Transport: name, Nexthop: nexthop, Recipient: rcpt.Address}, true
	}

	res, ok := lookup(rcpt.Address)
	if !ok {
		return res, false
	}
	switch {
	case res.Flags&transport.ResolveFail != 0:
		res = transport.Resolution{Transport: serviceRetry, Nexthop: "4.3.0 address resolver failure", Recipient: res.Recipient}
	case res.Flags&transport.ResolveError != 0:
		res = transport.Resolution{Transport: serviceError, Nexthop: "5.1.3 bad address syntax", Recipient: res.Recipient}
	}
	if res.Recipient != rcpt.Address {
		rcpt.Address = res.Recipient
	}
	return res, true
}

// maxConnectWarnings is how many failed connects to trivial-rewrite in a
// row the C client logs as warnings; the next one is fatal.
const maxConnectWarnings = 10

// resolve queries trivial-rewrite, retrying as resolve_clnt does: once a
// second after a failed exchange, and every 10 seconds while the socket
// refuses connections, which becomes fatal after maxConnectWarnings tries.
// It gives up when the loop stops; the message then stays in active and a
// later process picks it up. A non-nil failed is the failure of a first
// attempt already made in a batch.
func (l *Loop) resolve(m *message, address string, failed error) (transport.Resolution, bool) {
	verify := m.data.TraceFlags&flagMTAVerify != 0
	connects := 0
	for attempt := 0; ; {
		if l.fatal != nil {
			// Another message's retries already gave up on the service.
			m.retry = true
			return transport.Resolution{}, false
		}
		res, err := transport.Resolution{}, failed
		if failed == nil {
			res, err = l.resolver.Resolve(l.ctx, m.data.Sender, address, verify)
		}
		failed = nil
		if err == nil {
			return res, true
		}
		wait := time.Second
		if endpoint, reason, ok := transport.ConnectFailure(err); ok {
			// NOTE: no test reaches the fatal error, which takes 100 s.
			connects++
			if connects > maxConnectWarnings {
				l.setFatal(fatalf("connect #%d to subsystem %s: %s", connects, endpoint, reason))
				m.retry = true
				return transport.Resolution{}, false
			}
			l.log.Warning("connect #%d to subsystem %s: %s", connects, endpoint, reason)
			wait = 10 * time.Second
		} else {
			connects = 0
			if attempt > 0 || transport.LoggedOnFirstFailure(err) {
				l.log.Warning("%v", err)
			}
			attempt++
		}
		select {
		case <-l.ctx.Done():
			m.retry = true
			return transport.Resolution{}, false
		case <-time.After(wait):
		}
	}
}

// queueName names the destination queue: the nexthop, or with a recipient
// limit of 1 the recipient's local part (cut at the recipient delimiter) at
// the nexthop, lower-cased.
func (l *Loop) queueName(tr *transportState, res transport.Resolution) string {
	name := res.Nexthop
	if !isErrorOrRetry(tr.name) && tr.limits.RecipientLimit == 1 {
		local := res.Recipient
		if at := strings.LastIndexByte(local, '@'); at >= 0 {
			local = local[:at]
		}
		local = l.cutExtension(local)
		name = local + "@" + res.Nexthop
	}
	return strings.ToLower(name)
}

// cutExtension removes an address extension as split_addr does: at the
// first recipient_delimiter character, except for the special local parts.
func (l *Loop) cutExtension(local string) string {
	delims := l.cfg.RecipientDelimiter
	if delims == "" {
		return local
	}
	switch strings.ToLower(local) {
	case "postmaster", "mailer-daemon", strings.ToLower(l.cfg.DoubleBounceSender):
		return local
	}
	if l.cfg.OwnerRequestSpecial && strings.Contains(delims, "-") {
		lower := strings.ToLower(local)
		if strings.HasPrefix(lower, "owner-") || strings.HasSuffix(lower, "-request") {
			return local
		}
	}
	if i := strings.IndexAny(local, delims); i > 0 {
		return local[:i]
	}
	return local
}

// isDoubleBounce reports whether a local address is double_bounce_sender.
func (l *Loop) isDoubleBounce(addr string) bool {
	local := addr
	if at := strings.LastIndexByte(addr, '@'); at >= 0 {
		local = addr[:at]
	}
	return strings.EqualFold(local, l.cfg.DoubleBounceSender)
}

// discardDoubleBounce drops a postmaster notification that bounced back to
// the double-bounce address, logging it as sent and marking it done.
func (l *Loop) discardDoubleBounce(m *message, f *os.File, rcpt queue.Recipient) {
	l.log.RecipientStatus(maillog.Delivery{
		QueueID:       string(m.id),
		Recipient:     rcpt.Address,
		OrigRecipient: rcpt.OrigAddress,
		Relay:         "none",
		DSN:           "2.0.0",
		Status:        "sent",
		Reason:        "undeliverable postmaster notification discarded",
		Arrival:       m.data.Arrival,
		ActiveArrival: m.activeArrival,
		Now:           l.now(),
	})
	if err := queue.MarkDone(f, rcpt.Offset); err != nil {
		l.log.Warning("%s: mark recipient done in %s: %v", m.id, f.Name(), err)
		m.retry = true
	}
}

// deferRecipient records a deferral synchronously through the defer
// service when no retry queue can take the recipient, after
// qmgr_defer_recipient.
func (l *Loop) deferRecipient(m *message, rcpt queue.Recipient, dsn transport.DSN) {
	m.retry = true
	status := dsn.Status
	if !strings.HasPrefix(status, "4") {
		status = "4.0.0"
	}
	req := transport.RequestRecipient{
		OrigAddress: rcpt.OrigAddress, Address: rcpt.Address, Offset: rcpt.Offset,
		DSNOrig: rcpt.DSNOrig, Notify: rcpt.Notify,
	}
	d := transport.DSN{Status: status, Action: "delayed", Reason: dsn.Reason}
	if _, err := l.peers.DeferAppend(l.ctx, m.data.TraceFlags, string(m.id), req, d); err != nil {
		l.log.Warning("%s: %v", m.id, err)
		return
	}
	l.log.RecipientStatus(maillog.Delivery{
		QueueID:       string(m.id),
		Recipient:     rcpt.Address,
		OrigRecipient: rcpt.OrigAddress,
		Relay:         "none",
		DSN:           status,
		Status:        "deferred",
		Reason:        dsn.Reason,
		Arrival:       m.data.Arrival,
		ActiveArrival: m.activeArrival,
		Now:           l.now(),
	})
}

// sortByDomain orders recipients by domain, then by address, both without
// regard to case, as qmgr_message_sort does.
func sortByDomain(rcpts []queue.Recipient) {
	sort.SliceStable(rcpts, func(i, j int) bool {
		return lessByDomain(rcpts[i].Address, rcpts[j].Address)
	})
}

func lessByDomain(a, b string) bool {
	da, db := domainOf(a), domainOf(b)
	if c := strings.Compare(strings.ToLower(da), strings.ToLower(db)); c != 0 {
		return c < 0
	}
	return strings.ToLower(a) < strings.ToLower(b)
}

func domainOf(addr string) string {
	if at := strings.LastIndexByte(addr, '@'); at >= 0 {
		return addr[at+1:]
	}
	return ""
}
