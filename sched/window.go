package sched

import (
	"time"

	"oqmgr-go/conf"
	"oqmgr-go/transport"
)

// Window states besides a positive concurrency window, as in qmgr.h: a
// dead (throttled) destination has window 0, a suspended one -1.
const (
	windowDead      = 0
	windowSuspended = -1
)

// transportState is one transport (a master.cf service name) with its
// limits and round-robin list of destination queues. Transports are never
// forgotten, as in the C program.
type transportState struct {
	name   string
	limits conf.TransportLimits

	queues map[string]*destQueue
	order  []*destQueue // round-robin order of queue selection

	dead        bool
	reason      transport.DSN // the reason the transport is dead
	reviveTimer *timerHandle
	rateLocked  bool // a _transport_rate_delay pause is in progress
	pending     int  // agent connections requested but not yet ready
}

// destQueue is one destination of a transport: its window, waiting (todo)
// and running (busy) entries and feedback accumulators.
type destQueue struct {
	name      string
	nexthop   string
	transport *transportState

	window       int
	success      float64
	failure      float64
	failCohorts  float64
	todo         []*entry // oldest first; selection takes the oldest
	busy         []*entry
	reason       transport.DSN // the reason the queue is dead
	reviveTimer  *timerHandle
	cacheFlags   int // CONN_LOAD and CONN_STORE bits for the next request
	lastDone     time.Time
	nextClogWarn time.Time
}

func (q *destQueue) ready() bool { return q.window > 0 }
func (q *destQueue) dead() bool  { return q.window == windowDead }

// unthrottleQueue gives a destination another chance after a delivery that
// reported no trouble, after qmgr_queue_unthrottle. It revives a dead queue.
// Otherwise it applies positive feedback while the window is below the
// transport limit and within the initial concurrency of the busy count.
func (l *Loop) unthrottleQueue(q *destQueue) {
	limits := q.transport.limits
	q.failCohorts = 0

	if q.dead() {
		q.reviveTimer.cancel()
		q.reviveTimer = nil
		q.reason = transport.DSN{}
		if len(q.busy) > 0 {
			q.window = len(q.busy)
		} else {
			q.window = limits.InitialConcurrency
		}
		q.success, q.failure = 0, 0
		l.logWindow("qmgr_queue_unthrottle", q)
		return
	}

	if limits.ConcurrencyLimit == 0 || limits.ConcurrencyLimit > q.window {
		if q.window < len(q.busy)+limits.InitialConcurrency {
			feedback := limits.PositiveFeedback.Value(q.window)
			l.logFeedback("qmgr_queue_unthrottle", q, feedback)
			q.success += feedback
			for q.success+feedback/2 >= 1 {
				q.window++
				q.success--
				q.failure = 0
			}
			if limits.ConcurrencyLimit > 0 && q.window > limits.ConcurrencyLimit {
				q.window = limits.ConcurrencyLimit
			}
		}
	}
	l.logWindow("qmgr_queue_unthrottle", q)
}

// throttleQueue applies negative feedback after a delivery that reported
// trouble with the destination, after qmgr_queue_throttle. After the failed
// cohort limit the queue is declared dead for minimal_backoff_time.
func (l *Loop) throttleQueue(q *destQueue, dsn transport.DSN) {
	limits := q.transport.limits

	if q.ready() {
		q.failCohorts += 1 / float64(q.window)
		if limits.FailedCohortLimit > 0 && q.failCohorts >= float64(limits.FailedCohortLimit) {
			q.window = windowDead
		}
	}

	if q.ready() {
		feedback := limits.NegativeFeedback.Value(q.window)
		l.logFeedback("qmgr_queue_throttle", q, feedback)
		q.failure -= feedback
		for q.failure-feedback/2 < 0 {
			q.window--
			q.success = 0
			q.failure++
		}
		if q.window < 1 {
			q.window = 1
		}
	}

	if q.dead() {
		q.reason = dsn
		q.reviveTimer = l.timers.add(l.now().Add(l.cfg.MinimalBackoffTime), func() {
			q.reviveTimer = nil
			l.unthrottleQueue(q)
			l.discardIfIdle(q)
		})
		q.cacheFlags = 0
	}
	l.logWindow("qmgr_queue_throttle", q)
}

// suspendQueue pauses a rate-limited destination after a delivery, after
// qmgr_queue_suspend; when the pause ends the window is 1 again.
func (l *Loop) suspendQueue(q *destQueue, delay time.Duration) {
	q.window = windowSuspended
	l.timers.add(l.now().Add(delay), func() {
		q.window = 1
		l.discardIfIdle(q)
	})
}

// discardIfIdle removes a ready queue that has nothing to do. Dead queues
// stay, because they are the dead-destination cache.
func (l *Loop) discardIfIdle(q *destQueue) {
	if !q.ready() || len(q.todo) > 0 || len(q.busy) > 0 {
		return
	}
	tr := q.transport
	if tr.queues[q.name] != q {
		return
	}
	delete(tr.queues, q.name)
	for i, other := range tr.order {
		if other == q {
			tr.order = append(tr.order[:i], tr.order[i+1:]...)
			break
		}
	}
}

// queueCount returns the number of destination queues held in core.
func (l *Loop) queueCount() int {
	n := 0
	for _, tr := range l.transports {
		n += len(tr.queues)
	}
	return n
}

func isErrorOrRetry(name string) bool {
	return name == serviceRetry || name == serviceError
}

func (l *Loop) logFeedback(where string, q *destQueue, feedback float64) {
	if l.cfg.DestinationConcurrencyFeedbackDebug && !isErrorOrRetry(q.transport.name) {
		l.log.Info("%s: feedback %g", where, feedback)
	}
}

func (l *Loop) logWindow(where string, q *destQueue) {
	if l.cfg.DestinationConcurrencyFeedbackDebug && !isErrorOrRetry(q.transport.name) {
		l.log.Info("%s: queue %s: limit %d window %d success %g failure %g fail_cohorts %g",
			where, q.name, q.transport.limits.ConcurrencyLimit, q.window,
			q.success, q.failure, q.failCohorts)
	}
}
