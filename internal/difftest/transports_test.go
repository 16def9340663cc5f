package difftest

import (
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMissingTransport_MailWaitsOthersFlow(t *testing.T) {
	const messages = 3
	sc := Scenario{
		Sinks: map[string][]string{"healthy": {}},
		// nosuch has no master.cf entry, so its socket is missing.
		Routes: map[string]string{"ok.example": "healthy", "missing.example": "nosuch:"},
		MainCF: map[string]string{"queue_run_delay": "30s"},
		Drive: func(t *testing.T, e *Env) {
			for n := range messages {
				e.Submit(t, fmt.Sprintf("lost%d", n), fmt.Sprintf("r%d@missing.example", n))
				e.Submit(t, fmt.Sprintf("ok%d", n), fmt.Sprintf("r%d@ok.example", n))
			}
			e.WaitDeliveries(t, 2*messages, 30*time.Second, Any)
		},
	}
	Compare(t, sc, func(t *testing.T, o *Observation) {
		logFigures(t, o)
		// One failed connect makes the transport dead for
		// transport_retry_time; later mail for it goes straight to retry.
		assert.Equal(t, 1, o.CountQmgr("warning: connect to transport private/nosuch: No such file or directory"), "connect warnings")
		lost := statusAt(o, "missing.example", "deferred")
		assert.Len(t, lost, messages, "deferred recipients at missing.example")
		for _, d := range lost {
			assert.Equal(t, "error", d.Program, "agent for %s", d.Recipient)
			assert.Equal(t, "4.3.0", d.DSN, "dsn for %s", d.Recipient)
			assert.Equal(t, "mail transport unavailable", d.Reason, "reason for %s", d.Recipient)
		}
		assert.Len(t, statusAt(o, "ok.example", "sent"), messages, "recipients sent to ok.example")
		assert.Len(t, o.Received["healthy"], messages, "messages at the healthy sink")
		assert.Empty(t, o.Suspended(), "suspended recipients")
	})
}

var retryLine = regexp.MustCompile(`(?m)^retry +unix.*\n`)

func TestMissingRetry_QmgrDefersItself(t *testing.T) {
	sc := Scenario{
		MainCF: map[string]string{
			"default_transport": "nosuch",
			"relay_transport":   "nosuch",
			"queue_run_delay":   "30s",
		},
		EditMasterCF: func(masterCF string) string { return retryLine.ReplaceAllString(masterCF, "") },
		Drive: func(t *testing.T, e *Env) {
			for n := range 2 {
				e.Submit(t, fmt.Sprintf("lost%d", n), fmt.Sprintf("r%d@missing.example", n))
			}
			e.WaitDeliveries(t, 2, 30*time.Second, Any)
		},
	}
	Compare(t, sc, func(t *testing.T, o *Observation) {
		logFigures(t, o)
		// Without a retry service the queue manager writes the deferral
		// of each recipient itself.
		assert.Equal(t, 1, o.CountQmgr("warning: connect to transport private/nosuch: No such file or directory"), "nosuch connect warnings")
		// Up to two agent connections per transport may be pending, so
		// both messages can each cost one failed connect to retry.
		retryWarnings := o.CountQmgr("warning: connect to transport private/retry: No such file or directory")
		assert.GreaterOrEqual(t, retryWarnings, 1, "retry connect warnings")
		assert.LessOrEqual(t, retryWarnings, 2, "retry connect warnings")
		assert.Equal(t, map[string]int{"qmgr deferred 4.3.0": 2}, o.StatusCounts())
		for _, d := range o.Deliveries {
			assert.Equal(t, "none", d.Relay, "relay for %s", d.Recipient)
			assert.Equal(t, "mail transport unavailable", d.Reason, "reason for %s", d.Recipient)
		}
	})
}

func TestDeferTransports_FlushLifts(t *testing.T) {
	sc := Scenario{
		Sinks: map[string][]string{"healthy": {}},
		Relay: "healthy",
		MainCF: map[string]string{
			"defer_transports":     "smtp",
			"queue_run_delay":      "30s",
			"minimal_backoff_time": "30s",
			"maximal_backoff_time": "60s",
		},
		SameQmgrLines: true,
		Drive: func(t *testing.T, e *Env) {
			e.Submit(t, "held", "r@remote.example")
			e.WaitDeliveries(t, 1, 30*time.Second, Any)
			time.Sleep(2 * time.Second)
			e.Postfix(t, "postqueue", "-f")
			e.WaitDeliveries(t, 1, 30*time.Second, Status("sent"))
		},
	}
	Compare(t, sc, func(t *testing.T, o *Observation) {
		logFigures(t, o)
		require.Len(t, o.Deliveries, 2, "status lines")
		deferred, sent := o.Deliveries[0], o.Deliveries[1]
		assert.Equal(t, Delivery{At: deferred.At, Delay: deferred.Delay, Program: "error", Message: "held", Recipient: "r@remote.example", Relay: "none", DSN: "4.3.2", Status: "deferred", Reason: "deferred transport"}, deferred)
		assert.Equal(t, "smtp", sent.Program, "agent after the flush")
		assert.Equal(t, "sent", sent.Status, "status after the flush")
		// Nothing happens in the two seconds before the flush.
		assert.GreaterOrEqual(t, sent.At-deferred.At, 2*time.Second, "time from deferral to delivery")
		assert.Equal(t, 2, o.CountQmgr("held: from=<sender@example.org>, size="), "attempts logged as queue active")
		assert.Equal(t, 1, o.CountQmgr("held: removed"), "removed lines")
		assert.Equal(t, []int{1}, o.Received["healthy"], "recipients per message at the sink")
	})
}
