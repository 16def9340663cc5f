package sched

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"oqmgr-go/queue"
	"oqmgr-go/transport"
)

func TestLoop_DeliversAndRemoves(t *testing.T) {
	h := newHarness(t, nil)
	var ids []queue.ID
	for i := range 3 {
		ids = append(ids, h.queueMessage(queue.Builder{
			Sender:     "sender@example.org",
			Recipients: recipients(fmt.Sprintf("a%d@one.test", i), fmt.Sprintf("b%d@two.test", i)),
		}))
	}
	h.start()
	h.waitLog(": removed", 3)

	for _, id := range ids {
		assert.Contains(t, h.log.String(), fmt.Sprintf("qmgr: %s: from=<sender@example.org>, size=", id))
		assert.Contains(t, h.log.String(), fmt.Sprintf("qmgr: %s: removed\n", id))
		_, inActive := h.fileIn(queue.Active, id)
		assert.False(t, inActive, "%s left in active", id)
	}
	reqs := h.peers.snapshot()
	assert.Len(t, reqs, 6, "one request per message and destination")
}

func TestLoop_SplitsRecipientsAtLimit(t *testing.T) {
	h := newHarness(t, nil)
	var addrs []string
	for i := range 100 {
		addrs = append(addrs, fmt.Sprintf("user%03d@bulk.test", i))
	}
	h.queueMessage(queue.Builder{Sender: "sender@example.org", Recipients: recipients(addrs...)})
	h.start()
	h.waitLog(": removed", 1)

	reqs := h.peers.snapshot()
	require.Len(t, reqs, 2, "100 recipients with default_destination_recipient_limit 50")
	assert.Len(t, reqs[0].recipients, 50)
	assert.Len(t, reqs[1].recipients, 50)
}

func TestLoop_LocalRecipientLimitOne(t *testing.T) {
	h := newHarness(t, nil)
	h.queueMessage(queue.Builder{Sender: "sender@example.org", Recipients: recipients("a@local.test", "b@local.test", "c@local.test")})
	h.start()
	h.waitLog(": removed", 1)

	reqs := h.peers.snapshot()
	require.Len(t, reqs, 3, "local_destination_recipient_limit is 1")
	for _, r := range reqs {
		assert.Equal(t, "local", r.transport)
		assert.Len(t, r.recipients, 1)
	}
}

func TestLoop_SoftFailureDefersWithBackoff(t *testing.T) {
	tests := []struct {
		name    string
		age     time.Duration
		backoff time.Duration
	}{
		{"young message gets minimal backoff", 10 * time.Second, 300 * time.Second},
		{"backoff equals age", 1000 * time.Second, 1000 * time.Second},
		{"old message gets maximal backoff", 9000 * time.Second, 4000 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.peers.decide = func(_, _, rcpt string) outcome {
				if strings.HasPrefix(rcpt, "soft") {
					return deferred
				}
				return delivered
			}
			created := time.Now().Add(-tt.age)
			id := h.queueMessage(queue.Builder{
				Arrival: created, CreateTime: created, Sender: "sender@example.org",
				Recipients: recipients("ok@one.test", "soft@two.test"),
			})
			h.start()
			require.Eventually(t, func() bool {
				_, ok := h.fileIn(queue.Deferred, id)
				return ok
			}, 10*time.Second, 5*time.Millisecond, "file moved to deferred; log:\n%s", h.log)
			h.stop()

			info, _ := h.fileIn(queue.Deferred, id)
			want := time.Now().Add(tt.backoff)
			assert.WithinDuration(t, want, info.ModTime(), 3*time.Second, "next attempt time")
			assert.NotContains(t, h.log.String(), "removed")
		})
	}
}

func TestLoop_DeadDestinationHandsOffToRetry(t *testing.T) {
	h := newHarness(t, map[string]string{"initial_destination_concurrency": "1"})
	h.peers.siteTrouble["bad.test"] = "connect to mx.bad.test: Connection refused"
	var ids []queue.ID
	for i := range 4 {
		ids = append(ids, h.queueMessage(queue.Builder{
			Sender:     "sender@example.org",
			Recipients: recipients(fmt.Sprintf("u%d@bad.test", i), fmt.Sprintf("u%d@good.test", i)),
		}))
	}
	h.start()
	require.Eventually(t, func() bool {
		for _, id := range ids {
			if _, ok := h.fileIn(queue.Deferred, id); !ok {
				return false
			}
		}
		return true
	}, 10*time.Second, 5*time.Millisecond, "every message deferred; log:\n%s", h.log)

	var toBad, toRetry, toGood int
	for _, r := range h.peers.snapshot() {
		switch {
		case r.transport == "smtp" && r.nexthop == "bad.test":
			toBad++
		case r.transport == serviceRetry:
			toRetry++
			assert.Equal(t, "4.4.1 delivery temporarily suspended: connect to mx.bad.test: Connection refused", r.nexthop)
		case r.transport == "smtp" && r.nexthop == "good.test":
			toGood++
		}
	}
	assert.Equal(t, 1, toBad, "one failed delivery kills the destination with a cohort limit of 1")
	assert.Equal(t, 3, toRetry, "the other recipients of the dead destination go to retry")
	assert.Equal(t, 4, toGood, "the healthy destination is not held back")
}

func TestLoop_UnreachableTransportHandsOffToRetry(t *testing.T) {
	h := newHarness(t, nil)
	h.peers.down["smtp"] = true
	id := h.queueMessage(queue.Builder{Sender: "sender@example.org", Recipients: recipients("a@one.test")})
	h.start()
	require.Eventually(t, func() bool {
		_, ok := h.fileIn(queue.Deferred, id)
		return ok
	}, 10*time.Second, 5*time.Millisecond, "message deferred; log:\n%s", h.log)

	assert.Contains(t, h.log.String(), "warning: connect to transport private/smtp: No such file or directory")
	reqs := h.peers.snapshot()
	require.Len(t, reqs, 1)
	assert.Equal(t, serviceRetry, reqs[0].transport)
	assert.Equal(t, "4.3.0 mail transport unavailable", reqs[0].nexthop)
}

func TestLoop_CorruptFileSetAside(t *testing.T) {
	h := newHarness(t, nil)
	id := queue.ID("BADF00D1234")
	path := h.dir.Path(queue.Incoming, id)
	require.NoError(t, writeReady(path, []byte("C\x05hello")))
	good := h.queueMessage(queue.Builder{Sender: "sender@example.org", Recipients: recipients("a@one.test")})
	h.start()
	h.waitLog(fmt.Sprintf("qmgr: %s: removed", good), 1)
	h.waitLog(fmt.Sprintf(`warning: saving corrupt file "%s" from queue "active" to queue "corrupt"`, id), 1)

	_, ok := h.fileIn(queue.Corrupt, id)
	assert.True(t, ok, "file kept in corrupt")
}

func TestLoop_ExpiredMessageReturnedToSender(t *testing.T) {
	h := newHarness(t, map[string]string{"maximal_queue_lifetime": "1h"})
	h.peers.decide = func(string, string, string) outcome { return deferred }
	created := time.Now().Add(-2 * time.Hour)
	id := h.queueMessage(queue.Builder{
		Arrival: created, CreateTime: created, Sender: "sender@example.org",
		Recipients: recipients("late@one.test"),
	})
	h.start()
	h.waitLog(fmt.Sprintf("qmgr: %s: from=<sender@example.org>, status=expired, returned to sender", id), 1)

	h.peers.mu.Lock()
	defer h.peers.mu.Unlock()
	require.Len(t, h.peers.notices, 1, "one defer flush")
	assert.Equal(t, "defer", h.peers.notifySvc[0])
	assert.Equal(t, transport.NotifyFlush, h.peers.notices[0].Request)
	assert.Equal(t, bounceFlagDelRcpt, h.peers.notices[0].Flags)
}

func TestLoop_BounceLogFlushed(t *testing.T) {
	h := newHarness(t, nil)
	id := h.queueMessage(queue.Builder{Sender: "sender@example.org", Recipients: recipients("gone@one.test")})
	// An agent that bounced a recipient has appended to bounce/<id>.
	require.NoError(t, writeReady(h.dir.Path(queue.Bounce, id), []byte("recipient=gone@one.test\n")))
	h.start()
	h.waitLog(fmt.Sprintf("qmgr: %s: removed", id), 1)

	h.peers.mu.Lock()
	defer h.peers.mu.Unlock()
	require.Len(t, h.peers.notices, 1)
	assert.Equal(t, "bounce", h.peers.notifySvc[0])
	assert.Equal(t, transport.NotifyFlush, h.peers.notices[0].Request)
	assert.Equal(t, bounceFlagKeep, h.peers.notices[0].Flags)
}

func TestLoop_ConcurrencySlowStart(t *testing.T) {
	h := newHarness(t, map[string]string{
		"initial_destination_concurrency":       "2",
		"default_destination_concurrency_limit": "4",
	})
	h.peers.hold = make(chan struct{})
	for i := range 12 {
		h.queueMessage(queue.Builder{Sender: "sender@example.org", Recipients: recipients(fmt.Sprintf("u%d@slow.test", i))})
	}
	h.start()

	busy := func() int {
		h.peers.mu.Lock()
		defer h.peers.mu.Unlock()
		return h.peers.busy["slow.test"]
	}
	// Each success widens the window by one until the limit, so after k
	// completed deliveries min(2+k, 4) are in progress.
	for k := range 5 {
		want := min(2+k, 4)
		require.Eventually(t, func() bool { return busy() == want }, 5*time.Second, time.Millisecond,
			"after %d successes, %d deliveries in progress", k, want)
		time.Sleep(50 * time.Millisecond)
		assert.Equal(t, want, busy(), "no delivery beyond the window after %d successes", k)
		h.peers.hold <- struct{}{}
	}
	for range 7 {
		h.peers.hold <- struct{}{}
	}
	h.waitLog(": removed", 12)
	h.peers.mu.Lock()
	defer h.peers.mu.Unlock()
	assert.Equal(t, 4, h.peers.maxBusy["slow.test"], "highest concurrency is the limit")
}

func TestQueueOrder_ByDomainThenAddress(t *testing.T) {
	rcpts := []queue.Recipient{{Address: "b@Z.test"}, {Address: "a@z.test"}, {Address: "c@a.test"}, {Address: "noat"}}
	sortByDomain(rcpts)
	var got []string
	for _, r := range rcpts {
		got = append(got, r.Address)
	}
	assert.Equal(t, []string{"noat", "c@a.test", "a@z.test", "b@Z.test"}, got)
}

func TestVERPSender_Forms(t *testing.T) {
	tests := []struct {
		sender, rcpt, orig, want string
	}{
		{"owner-list@example.org", "user@example.net", "", "owner-list+user=example.net@example.org"},
		{"owner-list@example.org", "user@example.net", "alias@example.com", "owner-list+alias=example.com@example.org"},
		{"owner-list", "user@example.net", "", "owner-list+user=example.net"},
		{"owner-list@example.org", "user", "", "owner-list+user@example.org"},
		{"owner-list@example.org", "user@", "", "owner-list+user@example.org"},
	}
	for _, tt := range tests {
		got := verpSender("+=", tt.sender, queue.Recipient{Address: tt.rcpt, OrigAddress: tt.orig})
		assert.Equal(t, tt.want, got, "sender %q recipient %q original %q", tt.sender, tt.rcpt, tt.orig)
	}
}

func TestLoop_ClogWarning(t *testing.T) {
	h := newHarness(t, map[string]string{
		"qmgr_message_active_limit":             "10",
		"qmgr_message_recipient_limit":          "10",
		"default_destination_concurrency_limit": "1",
		"initial_destination_concurrency":       "1",
	})
	h.peers.hold = make(chan struct{})
	for i := range 5 {
		h.queueMessage(queue.Builder{Sender: "sender@example.org", Recipients: recipients(fmt.Sprintf("u%d@clog.test", i))})
	}
	h.start()
	h.waitLog("warning: mail for clog.test is using up 3 of 3 active queue entries", 1)
	close(h.peers.hold)
	h.waitLog(": removed", 5)

	log := h.log.String()
	assert.Equal(t, 1, strings.Count(log, "is using up"), "one warning per qmgr_clog_warn_time")
	assert.Contains(t, log, "warning: you may need to increase the main.cf smtp_destination_concurrency_limit from 1")
	assert.Contains(t, log, "warning: to turn off these warnings specify: qmgr_clog_warn_time = 0")
	assert.NotContains(t, log, "this may slow down other mail deliveries", "the destination holds all of the active queue")
}

func TestLoop_ReadsLargeMessageInBatches(t *testing.T) {
	h := newHarness(t, map[string]string{
		"qmgr_message_active_limit":    "10",
		"qmgr_message_recipient_limit": "10",
	})
	var addrs []string
	for i := range 25 {
		addrs = append(addrs, fmt.Sprintf("user%02d@batch.test", i))
	}
	id := h.queueMessage(queue.Builder{Sender: "sender@example.org", Recipients: recipients(addrs...)})
	h.start()
	h.waitLog(fmt.Sprintf("qmgr: %s: removed", id), 1)

	reqs := h.peers.snapshot()
	var sizes []int
	seen := map[string]bool{}
	for _, r := range reqs {
		sizes = append(sizes, len(r.recipients))
		for _, a := range r.recipients {
			assert.False(t, seen[a], "%s delivered twice", a)
			seen[a] = true
		}
	}
	assert.Equal(t, []int{10, 10, 5}, sizes, "batches of qmgr_message_recipient_limit recipients")
	assert.Len(t, seen, 25)
	assert.Equal(t, 1, strings.Count(h.log.String(), "(queue active)"), "one queue active line per attempt")
}

func TestLoop_FailedBatchRequestRetriedAlone(t *testing.T) {
	h := newHarness(t, nil)
	h.resolver.failInBatch = "b@two.test"
	var ids []queue.ID
	for _, a := range []string{"a@one.test", "b@two.test", "c@three.test"} {
		ids = append(ids, h.queueMessage(queue.Builder{Sender: "sender@example.org", Recipients: recipients(a)}))
	}
	h.start()
	h.waitLog(": removed", 3)

	var delivered []string
	for _, r := range h.peers.snapshot() {
		delivered = append(delivered, r.recipients...)
	}
	assert.ElementsMatch(t, []string{"a@one.test", "b@two.test", "c@three.test"}, delivered)
	// The C client retries a failed request a second later; the requests
	// of the batch after it are made one at a time too.
	assert.Equal(t, int32(2), h.resolver.resolved.Load(), "requests made one at a time")
	assert.NotContains(t, h.log.String(), "warning:", "an end of input is logged from the second try on")
	for _, id := range ids {
		_, inActive := h.fileIn(queue.Active, id)
		assert.False(t, inActive, "%s left in active", id)
	}
}

func TestLoop_StopWithOpenBatchReleasesResolver(t *testing.T) {
	h := newHarness(t, nil)
	id := h.queueMessage(queue.Builder{Sender: "sender@example.org", Recipients: recipients("a@one.test")})
	ctx, cancel := context.WithCancel(context.Background())
	// The loop stops right after the message's request went out.
	h.resolver.onAdd = func(string) { cancel() }

	err := h.loop.Run(ctx)

	require.NoError(t, err)
	assert.False(t, h.resolver.batchOpen.Load(), "the open batch still holds the resolver")
	_, inActive := h.fileIn(queue.Active, id)
	assert.True(t, inActive, "the next process starts the attempt over from active")
}

func TestLoop_ProbeLimitCountsProbesReadBefore(t *testing.T) {
	h := newHarness(t, map[string]string{"address_verify_pending_request_limit": "1"})
	for i := range 3 {
		h.queueMessage(queue.Builder{
			Sender:        "",
			EnvelopeAttrs: []string{"trace_flags=256"},
			Recipients:    recipients(fmt.Sprintf("probe%d@remote.test", i)),
		})
	}
	h.start()
	require.Eventually(t, func() bool { return len(h.peers.snapshot()) == 3 }, 10*time.Second, 10*time.Millisecond)

	// The first probe read is within the limit; the two read after it
	// are not, whether or not they share a batch with it.
	count := map[string]int{}
	for _, r := range h.peers.snapshot() {
		count[r.transport]++
	}
	assert.Equal(t, 1, count["smtp"], "probes delivered")
	assert.Equal(t, 2, count[serviceRetry], "probes sent to the retry transport")
}

func TestRotateAfter_RoundRobin(t *testing.T) {
	assert.Equal(t, []string{"c", "d", "a", "b"}, rotateAfter([]string{"a", "b", "c", "d"}, 1))
	assert.Equal(t, []string{"b", "c", "a"}, rotateAfter([]string{"a", "b", "c"}, 0))
	assert.Equal(t, []string{"a", "b", "c"}, rotateAfter([]string{"a", "b", "c"}, 2))
}

func TestLoop_FIFOWithinDestination(t *testing.T) {
	h := newHarness(t, map[string]string{
		"default_destination_concurrency_limit": "1",
		"initial_destination_concurrency":       "1",
	})
	h.peers.hold = make(chan struct{})
	for i := range 4 {
		h.queueMessage(queue.Builder{Sender: "sender@example.org", Recipients: recipients(fmt.Sprintf("u%d@fifo.test", i))})
	}
	h.start()
	// Let every file reach the todo list before the first delivery ends.
	h.waitLog("(queue active)", 4)
	close(h.peers.hold)
	h.waitLog(": removed", 4)

	var order []string
	for _, r := range h.peers.snapshot() {
		order = append(order, r.queueID)
	}
	require.Len(t, order, 4)
	// The scan reads files in directory order; the log shows that order.
	var imported []string
	for _, line := range strings.Split(h.log.String(), "\n") {
		if strings.HasSuffix(line, "(queue active)") {
			id, _, _ := strings.Cut(strings.TrimPrefix(line, "postfix/qmgr: "), ":")
			imported = append(imported, id)
		}
	}
	assert.Equal(t, imported, order, "entries leave in the order they were queued")
}

func TestLoop_ExitLeavesUnresolvedMailInActive(t *testing.T) {
	h := newHarness(t, nil)
	h.resolver.down.Store(true)
	id := h.queueMessage(queue.Builder{Sender: "sender@example.org", Recipients: recipients("a@one.test")})
	h.start()
	// The first try fails to connect and logs at once, as the C client does.
	h.waitLog("warning: connect #1 to subsystem private/rewrite: No such file or directory", 1)
	h.stop()

	_, inActive := h.fileIn(queue.Active, id)
	assert.True(t, inActive, "the next process starts the attempt over from active")
	_, inDeferred := h.fileIn(queue.Deferred, id)
	assert.False(t, inDeferred, "no backoff for an attempt that never ran")
}

func TestLoop_FatalExitSkipsStalledAgent(t *testing.T) {
	h := newHarness(t, nil)
	// A service master has throttled: the connection waits in its listen
	// backlog and the agent never announces itself.
	h.peers.stalled["smtp"] = true
	h.peers.decide = func(string, string, string) outcome { return deferred }
	stalled := h.queueMessage(queue.Builder{Sender: "sender@example.org", Recipients: recipients("user@remote.test")})
	// The deferred queue cannot take the other message, so closing its
	// attempt fails, which ends the queue manager.
	deferredDir := filepath.Join(h.root, queue.Deferred)
	require.NoError(t, os.Remove(deferredDir))
	require.NoError(t, os.WriteFile(deferredDir, nil, 0o600))
	failing := h.queueMessage(queue.Builder{Sender: "sender@example.org", Recipients: recipients("user@local.test")})

	done := make(chan error, 1)
	go func() { done <- h.loop.Run(context.Background()) }()
	select {
	case err := <-done:
		require.Error(t, err)
		assert.Contains(t, err.Error(), string(failing), "the fatal error names the queue id")
	case <-time.After(10 * time.Second):
		t.Fatalf("Run still waits for the stalled agent 10s after the fatal error; log:\n%s", h.log)
	}
	_, inActive := h.fileIn(queue.Active, stalled)
	assert.True(t, inActive, "the message waiting for the stalled agent stays in active")
}

func TestLoop_AgentSilentPastDaemonTimeoutIsFatal(t *testing.T) {
	tests := []struct {
		name    string
		stall   func(h *harness)
		wantErr string
	}{
		{"no announcement", func(h *harness) { h.peers.stalled["smtp"] = true },
			"timeout connecting to transport: smtp"},
		{"no reply", func(h *harness) { h.peers.hold = make(chan struct{}) },
			": timeout receiving delivery status from transport: smtp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, map[string]string{"daemon_timeout": "1s"})
			tt.stall(h)
			id := h.queueMessage(queue.Builder{Sender: "sender@example.org", Recipients: recipients("user@remote.test")})

			done := make(chan error, 1)
			go func() { done <- h.loop.Run(context.Background()) }()
			select {
			case err := <-done:
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
			case <-time.After(10 * time.Second):
				t.Fatalf("Run still going 10s after a daemon_timeout of 1s; log:\n%s", h.log)
			}
			_, inActive := h.fileIn(queue.Active, id)
			assert.True(t, inActive, "the message stays in active for the next process")
		})
	}
}
