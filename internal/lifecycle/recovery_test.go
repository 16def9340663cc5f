package lifecycle

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"oqmgr-go/internal/testbed"
)

func TestPartialFailure_OnlyFailedRecipientRetried(t *testing.T) {
	t.Parallel()
	good := []string{"a@good.example", "b@good.example", "c@good.example"}
	const bad = "x@bad.example"
	compare(t, func(t *testing.T, q qmgr) int {
		healthy := testbed.StartSink(t)
		// The failing sink rejects every RCPT TO with a 4xx reply.
		failing := testbed.StartSink(t, "-r", "RCPT")
		inst := start(t, q, testbed.Options{
			RelayPort: healthy.Port,
			MainCF: map[string]string{
				"queue_run_delay":      "1s",
				"minimal_backoff_time": "1s",
				"maximal_backoff_time": "2s",
				"transport_maps": fmt.Sprintf("inline:{good.example=smtp:[127.0.0.1]:%d, bad.example=smtp:[127.0.0.1]:%d}",
					healthy.Port, failing.Port),
			},
		})
		var rcpts []rcpt
		for _, addr := range append([]string{bad}, good...) {
			rcpts = append(rcpts, rcpt{addr: addr})
		}
		id := submit(t, inst, inst.LocalAddress(), "", rcpts, messageText("partial"))

		waitFor(t, 30*time.Second, func() bool { return len(attempts(t, inst, id)) >= 4 }, "four attempts of %s", id)
		require.NoError(t, healthy.WaitDelivered(1, 10*time.Second))

		msgs, err := healthy.Messages()
		require.NoError(t, err)
		require.Len(t, msgs, 1, "messages at the healthy sink")
		for _, addr := range good {
			assert.Equal(t, 1, strings.Count(msgs[0], "X-Rcpt-Args: <"+addr+">"), "X-Rcpt-Args for %s at the healthy sink", addr)
			assert.Equal(t, 1, count(t, inst, id+": to=<"+addr+">", "status=sent"), "sent lines for %s", addr)
		}
		tries := len(attempts(t, inst, id))
		deferred := count(t, inst, id+": to=<"+bad+">", "status=deferred")
		assert.GreaterOrEqual(t, deferred, tries-1, "deferred lines for %s after %d attempts", bad, tries)
		assert.LessOrEqual(t, deferred, tries, "deferred lines for %s after %d attempts", bad, tries)
		assert.Empty(t, mailboxSubjects(t, inst), "notices in the sender's mailbox")
		return tries
	})
}

func TestRecovery_ActiveFileGoesBackThroughIncoming(t *testing.T) {
	t.Parallel()
	compare(t, func(t *testing.T, q qmgr) int {
		port := deadPort(t)
		inst := start(t, q, testbed.Options{
			RelayPort: port,
			MainCF: map[string]string{
				"minimal_backoff_time": "1h",
				"maximal_backoff_time": "1h",
			},
		})
		id := submit(t, inst, "sender@example.org", "", []rcpt{{addr: "rcpt@example.net"}}, messageText("left in active"))
		seen := watchDeferrals(t, inst, id, 1, 30*time.Second)
		require.Len(t, seen, 1, "deferral of %s", id)

		// A queue manager that crashed mid-attempt leaves the file in
		// active. The backoff of an hour keeps the deferred scan from
		// retrying it, so only the start-up recovery can.
		require.NoError(t, inst.Stop())
		active := filepath.Join(inst.QueueDir, "active", id)
		require.NoError(t, os.Rename(seen[0].path, active))
		sink, err := testbed.StartSinkProcessOnPort(port)
		require.NoError(t, err)
		t.Cleanup(func() { _ = sink.Stop() })
		require.NoError(t, inst.Start())
		require.NoError(t, inst.Kick("I"))

		require.NoError(t, sink.WaitDelivered(1, 20*time.Second))
		require.NoError(t, inst.WaitLog(id+": removed", 20*time.Second))
		assert.Equal(t, 2, len(attempts(t, inst, id)), "attempts of %s", id)
		assert.Equal(t, 1, sink.Delivered(), "messages at the sink")
		return 0
	})
}
