package lifecycle

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"oqmgr-go/internal/testbed"
)

// Subjects of the notices bounce(8) of Postfix 3.7 sends with its default
// templates.
const (
	subjectBounce  = "Undelivered Mail Returned to Sender"
	subjectDelay   = "Delayed Mail (still being retried)"
	subjectSuccess = "Successful Mail Delivery Report"
	subjectTrace   = "Mail Delivery Status Report"
)

// expiryFigures describe the life of a message that never gets through.
type expiryFigures struct {
	attempts int     // "(queue active)" lines for the message
	expiry   float64 // seconds from the first attempt to the expiry line
}

// expireScenario submits a message from sender to a destination that never
// accepts a connection and waits until the queue manager logs its expiry.
func expireScenario(t *testing.T, q qmgr, mainCF map[string]string, sender string, lifetime float64) (*testbed.Instance, string, expiryFigures) {
	t.Helper()
	mainCF["queue_run_delay"] = "1s"
	mainCF["minimal_backoff_time"] = "1s"
	mainCF["maximal_backoff_time"] = "2s"
	inst := start(t, q, testbed.Options{RelayPort: deadPort(t), MainCF: mainCF})
	id := submit(t, inst, sender, "", []rcpt{{addr: "rcpt@example.net"}}, messageText("expiry"))

	expired := "<" + sender + ">, status=expired, returned to sender"
	waitFor(t, time.Duration(lifetime+30)*time.Second, func() bool {
		return count(t, inst, "postfix/qmgr[", id+": from="+expired) == 1
	}, "qmgr logs %s: from=%s", id, expired)
	require.NoError(t, inst.WaitQueueEmpty(20*time.Second))

	tries := attempts(t, inst, id)
	end := events(t, inst, id+": from="+expired)
	fig := expiryFigures{attempts: len(tries), expiry: end[0].at.Sub(tries[0]).Seconds()}

	// Expiry is checked at the end of an attempt, so it comes after the
	// lifetime but no later than the attempt after it.
	assert.GreaterOrEqual(t, fig.expiry, lifetime-1, "seconds from first attempt to expiry of %s", id)
	assert.LessOrEqual(t, fig.expiry, lifetime+3, "seconds from first attempt to expiry of %s", id)
	t.Logf("%s: %d attempts, expired after %.0fs", q.name, fig.attempts, fig.expiry)
	return inst, id, fig
}

// assertSameLife compares the Go run's figures with the C run's: the same
// number of attempts and the expiry within one deferred-queue scan.
func assertSameLife(t *testing.T, results map[string]expiryFigures) {
	t.Helper()
	c, okC := results["C"]
	g, okGo := results["Go"]
	if !okC || !okGo {
		return
	}
	t.Logf("C: %d attempts, expiry after %.0fs; Go: %d attempts, expiry after %.0fs", c.attempts, c.expiry, g.attempts, g.expiry)
	assert.LessOrEqual(t, math.Abs(float64(c.attempts-g.attempts)), 1.0, "attempts: C %d, Go %d", c.attempts, g.attempts)
	assert.LessOrEqual(t, math.Abs(c.expiry-g.expiry), 1.0, "seconds to expiry: C %.0f, Go %.0f", c.expiry, g.expiry)
}

func TestExpiry_MaximalQueueLifetime(t *testing.T) {
	t.Parallel()
	const lifetime = 8
	results := compare(t, func(t *testing.T, q qmgr) expiryFigures {
		var inst *testbed.Instance
		var fig expiryFigures
		inst, _, fig = expireScenario(t, q, map[string]string{
			"maximal_queue_lifetime": "8s",
			"bounce_queue_lifetime":  "8s",
		}, "oqmgrtest@testbed.localdomain", lifetime)

		waitFor(t, 20*time.Second, func() bool { return len(mailboxSubjects(t, inst)) >= 1 }, "the non-delivery report reaches %s", inst.MailboxPath(inst.LocalUser))
		assert.Equal(t, []string{subjectBounce}, mailboxSubjects(t, inst), "notices in the sender's mailbox")
		return fig
	})
	assertSameLife(t, results)
}

func TestExpiry_BounceQueueLifetimeForNullSender(t *testing.T) {
	t.Parallel()
	const lifetime = 4
	results := compare(t, func(t *testing.T, q qmgr) expiryFigures {
		_, _, fig := expireScenario(t, q, map[string]string{
			"maximal_queue_lifetime": "1h",
			"bounce_queue_lifetime":  "4s",
		}, "", lifetime)
		return fig
	})
	assertSameLife(t, results)
}

func TestExpiry_PostsuperExpireAndPostqueueFlush(t *testing.T) {
	t.Parallel()
	compare(t, func(t *testing.T, q qmgr) int {
		inst := start(t, q, testbed.Options{
			RelayPort: deadPort(t),
			MainCF: map[string]string{
				"queue_run_delay":      "1s",
				"minimal_backoff_time": "1h",
				"maximal_backoff_time": "1h",
			},
		})
		id := submit(t, inst, inst.LocalAddress(), "", []rcpt{{addr: "rcpt@example.net"}}, messageText("forced expiry"))
		require.Len(t, watchDeferrals(t, inst, id, 1, 30*time.Second), 1, "deferral of %s", id)

		// postqueue -i makes flush(8) move the file back to incoming at
		// once, despite its backoff of an hour.
		postfixTool(t, inst, postqueueCommand, "-i", id)
		waitFor(t, 20*time.Second, func() bool { return len(attempts(t, inst, id)) == 2 }, "a second attempt of %s after postqueue -i", id)
		require.Len(t, watchDeferrals(t, inst, id, 1, 30*time.Second), 1, "deferral of %s", id)

		postfixTool(t, inst, postsuperCommand, "-e", id)
		postfixTool(t, inst, postqueueCommand, "-i", id)
		forced := id + ": from=<" + inst.LocalAddress() + ">, status=force-expired, returned to sender"
		require.NoError(t, inst.WaitLog(forced, 20*time.Second))
		require.NoError(t, inst.WaitQueueEmpty(20*time.Second))
		waitFor(t, 20*time.Second, func() bool { return len(mailboxSubjects(t, inst)) >= 1 }, "the non-delivery report reaches the sender")

		assert.Equal(t, 3, len(attempts(t, inst, id)), "attempts of %s", id)
		assert.Equal(t, []string{subjectBounce}, mailboxSubjects(t, inst), "notices in the sender's mailbox")
		return 0
	})
}

func TestHold_LeftAloneUntilReleased(t *testing.T) {
	t.Parallel()
	compare(t, func(t *testing.T, q qmgr) int {
		sink := testbed.StartSink(t)
		inst := start(t, q, testbed.Options{
			RelayPort: sink.Port,
			MainCF: map[string]string{
				"queue_run_delay":              "1s",
				"smtpd_recipient_restrictions": "check_recipient_access inline:{hold@example.net=HOLD}, permit_mynetworks, reject",
			},
		})
		released := submit(t, inst, inst.LocalAddress(), "", []rcpt{{addr: "hold@example.net"}}, messageText("released"))
		expired := submit(t, inst, inst.LocalAddress(), "", []rcpt{{addr: "hold@example.net"}}, messageText("expired"))

		// Several deferred scans pass without touching the held files.
		time.Sleep(4 * time.Second)
		held, err := inst.QueueCount("hold")
		require.NoError(t, err)
		assert.Equal(t, 2, held, "files in hold")
		assert.Empty(t, attempts(t, inst, released), "attempts of held %s", released)
		assert.Zero(t, sink.Delivered(), "messages at the sink while held")

		postfixTool(t, inst, postsuperCommand, "-H", released)
		require.NoError(t, sink.WaitDelivered(1, 20*time.Second))

		// postsuper -f releases from hold and forces expiry: the healthy
		// sink never receives the message, and the sender gets it back.
		postfixTool(t, inst, postsuperCommand, "-f", expired)
		forced := expired + ": from=<" + inst.LocalAddress() + ">, status=force-expired, returned to sender"
		require.NoError(t, inst.WaitLog(forced, 20*time.Second))
		require.NoError(t, inst.WaitQueueEmpty(20*time.Second))
		waitFor(t, 20*time.Second, func() bool { return len(mailboxSubjects(t, inst)) >= 1 }, "the non-delivery report reaches the sender")

		assert.Equal(t, 1, sink.Delivered(), "messages at the sink")
		assert.Equal(t, []string{subjectBounce}, mailboxSubjects(t, inst), "notices in the sender's mailbox")
		return 0
	})
}
