package sched

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"oqmgr-go/queue"
	"oqmgr-go/trigger"
)

// deferFile moves a queued file to deferred with a next-attempt time.
func (h *harness) deferFile(id queue.ID, next time.Time) {
	h.t.Helper()
	require.NoError(h.t, h.dir.Move(id, queue.Incoming, queue.Deferred))
	require.NoError(h.t, h.dir.SetTime(queue.Deferred, id, next))
}

func TestTrigger_ScanAllIgnoresTimeStamps(t *testing.T) {
	h := newHarness(t, nil)
	id := h.queueMessage(queue.Builder{Sender: "sender@example.org", Recipients: recipients("a@one.test")})
	h.deferFile(id, time.Now().Add(time.Hour))
	h.start()

	h.loop.Trigger(trigger.ScanDeferred)
	time.Sleep(200 * time.Millisecond)
	_, waiting := h.fileIn(queue.Deferred, id)
	assert.True(t, waiting, "a deferred scan leaves a file whose time has not come")

	h.loop.Trigger(trigger.ScanDeferred | trigger.ScanAll)
	h.waitLog(fmt.Sprintf("qmgr: %s: removed", id), 1)
}

func TestScan_RestartSeesNewFiles(t *testing.T) {
	h := newHarness(t, nil)
	first := h.queueMessage(queue.Builder{Sender: "s@example.org", Recipients: recipients("a@one.test")})
	l := h.loop

	l.startScan(&l.incoming, 0)
	require.True(t, l.incoming.running())
	// A request while the walk runs makes it start over at its end, so a
	// file created after the walk began is found in the same scan.
	second := h.queueMessage(queue.Builder{Sender: "s@example.org", Recipients: recipients("b@one.test")})
	l.requestScan(&l.incoming, 0, true)

	seen := map[queue.ID]int{}
	for {
		id, ok := l.nextID(&l.incoming)
		if !ok {
			break
		}
		seen[id]++
	}
	assert.GreaterOrEqual(t, seen[first], 1, "first file found")
	assert.GreaterOrEqual(t, seen[second], 1, "file added during the walk found after the restart")
	assert.False(t, l.incoming.running(), "the walk ends after one restart")
}

func TestTrigger_FlushRevivesDeadDestination(t *testing.T) {
	h := newHarness(t, map[string]string{"initial_destination_concurrency": "1"})
	h.peers.siteTrouble["dead.test"] = "connect to mx.dead.test: Connection refused"
	first := h.queueMessage(queue.Builder{Sender: "s@example.org", Recipients: recipients("a@dead.test")})
	h.start()
	require.Eventually(t, func() bool {
		_, ok := h.fileIn(queue.Deferred, first)
		return ok
	}, 10*time.Second, 5*time.Millisecond)

	// The destination is dead now: new mail for it goes straight to retry.
	second := h.queueMessage(queue.Builder{Sender: "s@example.org", Recipients: recipients("b@dead.test")})
	h.loop.Trigger(trigger.ScanIncoming)
	require.Eventually(t, func() bool {
		_, ok := h.fileIn(queue.Deferred, second)
		return ok
	}, 10*time.Second, 5*time.Millisecond)
	assert.Equal(t, 1, h.countRequests("smtp", "dead.test"), "dead destination not tried again")

	// F forgets dead destinations; the next message is tried for real.
	h.peers.mu.Lock()
	delete(h.peers.siteTrouble, "dead.test")
	h.peers.mu.Unlock()
	require.NoError(t, h.dir.SetTime(queue.Deferred, second, time.Now()))
	h.loop.Trigger(trigger.FlushDead | trigger.ScanDeferred)
	h.waitLog(fmt.Sprintf("qmgr: %s: removed", second), 1)
	assert.Equal(t, 2, h.countRequests("smtp", "dead.test"))
}

func TestTrigger_FlushOverridesDeferTransports(t *testing.T) {
	h := newHarness(t, map[string]string{"defer_transports": "smtp"})
	id := h.queueMessage(queue.Builder{Sender: "s@example.org", Recipients: recipients("a@one.test")})
	h.start()
	require.Eventually(t, func() bool {
		_, ok := h.fileIn(queue.Deferred, id)
		return ok
	}, 10*time.Second, 5*time.Millisecond)
	assert.Zero(t, h.countRequests("smtp", "one.test"), "deferred transport not used")
	assert.Equal(t, 1, h.countRequests(serviceRetry, "4.3.2 deferred transport"))

	h.loop.Trigger(trigger.FlushDead | trigger.ScanAll | trigger.ScanDeferred | trigger.ScanIncoming)
	h.waitLog(fmt.Sprintf("qmgr: %s: removed", id), 1)
	assert.Equal(t, 1, h.countRequests("smtp", "one.test"), "a flush delivers through the deferred transport")
}

func (h *harness) countRequests(transportName, nexthop string) int {
	n := 0
	for _, r := range h.peers.snapshot() {
		if r.transport == transportName && r.nexthop == nexthop {
			n++
		}
	}
	return n
}
