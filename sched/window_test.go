package sched

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"oqmgr-go/transport"
)

// newTestQueue returns a queue of the smtp transport of an idle loop.
func newTestQueue(t *testing.T, params map[string]string) (*Loop, *destQueue) {
	t.Helper()
	h := newHarness(t, params)
	tr := h.loop.findTransport("smtp")
	return h.loop, h.loop.findQueue(tr, "example.test", "example.test")
}

func TestThrottle_FailuresUntilDead(t *testing.T) {
	// Consecutive failures that kill a destination with the default
	// feedback (1 and 1) and failed cohort limit 1, starting from a window:
	// each failure adds 1/window to the cohort count, and the window drops
	// by 2 on the first failure and 1 after that.
	tests := []struct {
		window   int
		failures int
	}{
		{1, 1}, {2, 2}, {3, 2}, {5, 3}, {10, 7}, {20, 13},
	}
	for _, tt := range tests {
		l, q := newTestQueue(t, map[string]string{"initial_destination_concurrency": "1"})
		q.window = tt.window
		dsn := transport.DSN{Status: "4.4.1", Reason: "delivery temporarily suspended: refused"}
		n := 0
		for q.ready() && n < 100 {
			l.throttleQueue(q, dsn)
			n++
		}
		assert.Equal(t, tt.failures, n, "failures until dead from window %d", tt.window)
		assert.Equal(t, dsn, q.reason, "dead queue keeps the reason")
	}
}

func TestUnthrottle_SlowStartSteps(t *testing.T) {
	l, q := newTestQueue(t, nil) // initial 5, limit 20
	require.Equal(t, 5, q.window)

	// With nothing busy the window may grow to busy + initial = 5 only.
	l.unthrottleQueue(q)
	assert.Equal(t, 5, q.window, "window capped at busy + initial concurrency")

	// With deliveries in progress each success adds one, up to the limit.
	q.busy = make([]*entry, 20)
	for want := 6; want <= 20; want++ {
		l.unthrottleQueue(q)
		assert.Equal(t, want, q.window)
	}
	l.unthrottleQueue(q)
	assert.Equal(t, 20, q.window, "window capped at the concurrency limit")
}

func TestThrottle_FirstFailureAfterIncreaseDropsTwo(t *testing.T) {
	l, q := newTestQueue(t, map[string]string{"default_destination_concurrency_failed_cohort_limit": "0"})
	q.busy = make([]*entry, 10)
	l.unthrottleQueue(q)
	require.Equal(t, 6, q.window)

	dsn := transport.DSN{Status: "4.4.1", Reason: "x"}
	l.throttleQueue(q, dsn)
	assert.Equal(t, 4, q.window, "first failure after an increase")
	l.throttleQueue(q, dsn)
	assert.Equal(t, 3, q.window, "later failures")
	for range 10 {
		l.throttleQueue(q, dsn)
	}
	assert.Equal(t, 1, q.window, "a cohort limit of 0 never kills; the window stops at 1")
}

func TestUnthrottle_RevivesDeadQueue(t *testing.T) {
	l, q := newTestQueue(t, map[string]string{"initial_destination_concurrency": "3"})
	q.window = 1
	l.throttleQueue(q, transport.DSN{Status: "4.4.1", Reason: "x"})
	require.True(t, q.dead())

	l.unthrottleQueue(q)
	assert.Equal(t, 3, q.window, "revived with the initial concurrency when idle")
	assert.Empty(t, q.reason.Reason)

	q.window = 1
	l.throttleQueue(q, transport.DSN{Status: "4.4.1", Reason: "x"})
	q.busy = make([]*entry, 2)
	l.unthrottleQueue(q)
	assert.Equal(t, 2, q.window, "revived with the busy count when deliveries run")
}

func TestFeedback_PerConcurrencyForms(t *testing.T) {
	l, q := newTestQueue(t, map[string]string{
		"default_destination_concurrency_positive_feedback":   "1/concurrency",
		"default_destination_concurrency_negative_feedback":   "1/concurrency",
		"default_destination_concurrency_failed_cohort_limit": "0",
	})
	q.busy = make([]*entry, 30)

	// Positive feedback of 1/window: about window successes per step.
	successes := func(from int) int {
		n := 0
		for q.window == from {
			l.unthrottleQueue(q)
			n++
		}
		return n
	}
	assert.Equal(t, 5, successes(5), "successes to widen from 5")
	assert.Equal(t, 6, successes(6), "successes to widen from 6")

	// Negative feedback of 1/window: the first failure takes one step at
	// once, later steps need about window failures each.
	q.window, q.success, q.failure = 10, 0, 0
	dsn := transport.DSN{Status: "4.4.1", Reason: "x"}
	l.throttleQueue(q, dsn)
	assert.Equal(t, 9, q.window, "first failure")
	for range 7 {
		l.throttleQueue(q, dsn)
	}
	assert.Equal(t, 9, q.window, "seven more failures at 1/9 each")
	l.throttleQueue(q, dsn)
	assert.Equal(t, 8, q.window, "the eighth brings the failure credit below half a step")
}
