package sched

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"oqmgr-go/queue"
)

// startScans prepares the loop of h for calls of feed without Run, with
// both scans started.
func startScans(h *harness) {
	h.loop.ctx = context.Background()
	h.loop.startScan(&h.loop.incoming, 0)
	h.loop.startScan(&h.loop.deferred, 0)
}

// queueNotDue puts a message in deferred whose retry time is an hour away.
func queueNotDue(t *testing.T, h *harness) queue.ID {
	t.Helper()
	id := h.queueMessage(queue.Builder{Sender: "sender@example.org", Recipients: recipients("later@two.test")})
	require.NoError(t, h.dir.Move(id, queue.Incoming, queue.Deferred))
	require.NoError(t, h.dir.SetTime(queue.Deferred, id, time.Now().Add(time.Hour)))
	return id
}

func TestFeed_SkippedEntryEndsBatch(t *testing.T) {
	h := newHarness(t, nil)
	h.queueMessage(queue.Builder{Sender: "sender@example.org", Recipients: recipients("now@one.test")})
	queueNotDue(t, h)
	startScans(h)
	l := h.loop

	took, _, err := l.feed()
	require.NoError(t, err)
	require.True(t, took)
	require.NotNil(t, l.resolving, "the message read waits in a batch")

	took, _, err = l.feed()
	require.NoError(t, err)
	require.True(t, took)

	assert.Nil(t, l.resolving, "batch still open after a deferred file that is not due")
	assert.Equal(t, 1, l.recipientCount, "recipients assigned")
	assert.Zero(t, l.unassigned)
}

func TestFinishResolving_FatalErrorLeavesMessageInActive(t *testing.T) {
	h := newHarness(t, nil)
	id := h.queueMessage(queue.Builder{Sender: "sender@example.org", Recipients: recipients("user@one.test")})
	h.resolver.down.Store(true)
	startScans(h)
	l := h.loop

	_, _, err := l.feed()
	require.NoError(t, err)
	require.NotNil(t, l.resolving)
	// Another message's retries gave up on trivial-rewrite meanwhile, so
	// the process is about to exit.
	l.setFatal(errors.New("connect #11 to subsystem private/rewrite: No such file or directory"))
	l.finishResolving()

	_, inActive := h.fileIn(queue.Active, id)
	assert.True(t, inActive, "the next process starts the attempt over from active")
	_, inDeferred := h.fileIn(queue.Deferred, id)
	assert.False(t, inDeferred, "no backoff for an attempt cut short by a fatal error")
}
