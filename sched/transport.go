package sched

import (
	"strings"

	"oqmgr-go/transport"
)

// Service names with a fixed meaning to the queue manager (mail_proto.h).
const (
	serviceRetry = "retry"
	serviceError = "error"
)

// findTransport returns the named transport, creating it with its
// per-transport limits on first use as qmgr_transport_create does.
func (l *Loop) findTransport(name string) *transportState {
	if tr, ok := l.transports[name]; ok {
		return tr
	}
	limits, warnings, err := l.cfg.Transport(name)
	for _, w := range warnings {
		l.log.Warning("%s", w)
	}
	if err != nil {
		// Postfix treats a bad per-transport value as fatal when the
		// transport is first used. We log it and keep the defaults, so mail
		// for other transports keeps moving.
		l.log.Warning("transport %s: %v", name, err)
	}
	tr := &transportState{name: name, limits: limits, queues: make(map[string]*destQueue)}
	l.transports[name] = tr
	// A new transport goes first in the round-robin list, as
	// qmgr_transport_create adds it.
	l.transportOrder = append([]*transportState{tr}, l.transportOrder...)
	return tr
}

// findQueue returns the named destination queue of a transport, creating
// it with the initial concurrency window.
func (l *Loop) findQueue(tr *transportState, name, nexthop string) *destQueue {
	if q, ok := tr.queues[name]; ok {
		return q
	}
	q := &destQueue{
		name:      name,
		nexthop:   nexthop,
		transport: tr,
		window:    tr.limits.InitialConcurrency,
	}
	tr.queues[name] = q
	tr.order = append(tr.order, q)
	return q
}

// retryQueue returns the queue of the retry transport that records
// deferrals for the reason in dsn, or nil when the retry transport is dead
// itself, after qmgr_error_queue.
func (l *Loop) retryQueue(dsn transport.DSN) *destQueue {
	tr := l.findTransport(serviceRetry)
	if tr.dead {
		return nil
	}
	nexthop := dsn.Status + " " + dsn.Reason
	q := l.findQueue(tr, nexthop, nexthop)
	if !q.ready() {
		return nil
	}
	return q
}

// throttleTransport declares a transport dead for transport_retry_time,
// after qmgr_transport_throttle.
func (l *Loop) throttleTransport(tr *transportState, dsn transport.DSN) {
	if tr.dead {
		return
	}
	tr.dead = true
	tr.reason = dsn
	tr.reviveTimer = l.timers.add(l.now().Add(l.cfg.TransportRetryTime), func() {
		tr.reviveTimer = nil
		l.unthrottleTransport(tr)
	})
}

// unthrottleTransport marks a transport alive again and ends its rate-delay
// lock, after qmgr_transport_unthrottle.
func (l *Loop) unthrottleTransport(tr *transportState) {
	tr.rateLocked = false
	if !tr.dead {
		return
	}
	tr.dead = false
	tr.reason = transport.DSN{}
	tr.reviveTimer.cancel()
	tr.reviveTimer = nil
}

// deferTransport hands every waiting entry of a transport to the retry
// transport, after qmgr_defer_transport.
func (l *Loop) deferTransport(tr *transportState, dsn transport.DSN) {
	for _, q := range append([]*destQueue(nil), tr.order...) {
		l.deferTodo(q, dsn)
	}
}

// deferTodo moves the waiting entries of one queue to the retry transport,
// or records their deferral synchronously when retry is dead too, after
// qmgr_defer_todo.
func (l *Loop) deferTodo(q *destQueue, dsn transport.DSN) {
	retry := l.retryQueue(dsn)
	todo := q.todo
	q.todo = nil
	for _, e := range todo {
		if retry != nil {
			e.queue = retry
			retry.todo = append(retry.todo, e)
			continue
		}
		for _, r := range e.recipients {
			l.deferRecipient(e.msg, r, dsn)
		}
		l.entryDone(e, false)
	}
	l.discardIfIdle(q)
}

// reviveAll revives every dead transport and destination (trigger F).
func (l *Loop) reviveAll() {
	for _, tr := range l.transportOrder {
		if tr.dead {
			l.unthrottleTransport(tr)
		}
		for _, q := range append([]*destQueue(nil), tr.order...) {
			if q.dead() {
				l.unthrottleQueue(q)
				l.discardIfIdle(q)
			}
		}
	}
}

// isDeferTransport reports whether defer_transports names the transport.
func (l *Loop) isDeferTransport(name string) bool {
	for _, t := range l.cfg.DeferTransports {
		if strings.EqualFold(t, name) {
			return true
		}
	}
	return false
}
