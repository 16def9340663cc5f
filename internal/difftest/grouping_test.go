package difftest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRecipientLimit_HundredMakeTwoDeliveries(t *testing.T) {
	sc := Scenario{
		Sinks:         map[string][]string{"healthy": {}},
		Routes:        map[string]string{"many.example": "healthy"},
		SameQmgrLines: true,
		Drive: func(t *testing.T, e *Env) {
			var rcpts []string
			for n := range 100 {
				rcpts = append(rcpts, fmt.Sprintf("r%03d@many.example", n))
			}
			e.Submit(t, "hundred", rcpts...)
			e.WaitDeliveries(t, 100, 30*time.Second, Status("sent"))
			e.WaitQueueEmpty(t, 10*time.Second)
		},
	}
	Compare(t, sc, func(t *testing.T, o *Observation) {
		logFigures(t, o)
		assert.Equal(t, []int{50, 50}, o.Received["healthy"], "recipients per message at the sink")
		assert.Equal(t, map[string]int{"smtp sent 2.0.0": 100}, o.StatusCounts())
		assert.Equal(t, 1, o.CountQmgr("hundred: from=<sender@example.org>, size=305, nrcpt=100 (queue active)"), "queue active lines")
	})
}

func TestRecipientLimitOne_QueuePerRecipient(t *testing.T) {
	const messages = 6
	sc := Scenario{
		Sinks:  map[string][]string{"slow": {"-p", "-w", "1"}},
		Routes: map[string]string{"one.example": "slow"},
		MainCF: map[string]string{
			"smtp_destination_recipient_limit":   "1",
			"smtp_destination_concurrency_limit": "1",
			"qmgr_message_active_limit":          "10",
		},
		Drive: func(t *testing.T, e *Env) {
			var rcpts []string
			for n := range messages {
				rcpts = append(rcpts, fmt.Sprintf("user%d+ext@one.example", n))
			}
			e.Submit(t, "split", rcpts...)
			e.WaitDeliveries(t, messages, 30*time.Second, Status("sent"))
		},
	}
	Compare(t, sc, func(t *testing.T, o *Observation) {
		logFigures(t, o)
		// Each recipient is its own queue, so the concurrency limit of 1
		// applies per recipient and deliveries overlap. How many overlap
		// depends on how fast master starts smtp processes: on a loaded
		// machine the C oqmgr was seen with five of six at once.
		assert.Equal(t, map[string]int{"smtp sent 2.0.0": messages}, o.StatusCounts())
		assert.Equal(t, []int{1, 1, 1, 1, 1, 1}, o.Received["slow"], "recipients per message at the sink")
		assert.Greater(t, o.MaxConnections("slow"), 1, "highest concurrency at the sink")
	})
}

func TestConcurrencyLimitOne_QueuePerDomain(t *testing.T) {
	const messages = 4
	sc := Scenario{
		Sinks:  map[string][]string{"slow": {"-p", "-w", "1"}},
		Routes: map[string]string{"one.example": "slow"},
		MainCF: map[string]string{
			"smtp_destination_recipient_limit":   "2",
			"smtp_destination_concurrency_limit": "1",
		},
		Drive: func(t *testing.T, e *Env) {
			var rcpts []string
			for n := range messages {
				rcpts = append(rcpts, fmt.Sprintf("user%d@one.example", n))
			}
			e.Submit(t, "serial", rcpts...)
			e.WaitDeliveries(t, messages, 30*time.Second, Status("sent"))
		},
	}
	Compare(t, sc, func(t *testing.T, o *Observation) {
		logFigures(t, o)
		// A concurrency limit of 1 keeps one queue for the domain: two
		// deliveries of two recipients, one after the other.
		assert.Equal(t, map[string]int{"smtp sent 2.0.0": messages}, o.StatusCounts())
		assert.Equal(t, []int{2, 2}, o.Received["slow"], "recipients per message at the sink")
		assert.Equal(t, 1, o.MaxConnections("slow"), "highest concurrency at the sink")
	})
}

func TestRateDelay_OneDeliveryPerSecond(t *testing.T) {
	const messages = 4
	sc := Scenario{
		Sinks:  map[string][]string{"healthy": {}},
		Routes: map[string]string{"paced.example": "healthy"},
		MainCF: map[string]string{
			"smtp_destination_rate_delay": "1s",
		},
		Drive: func(t *testing.T, e *Env) {
			for n := range messages {
				e.Submit(t, fmt.Sprintf("m%d", n), fmt.Sprintf("r%d@paced.example", n))
			}
			e.WaitDeliveries(t, messages, 30*time.Second, Status("sent"))
		},
	}
	Compare(t, sc, func(t *testing.T, o *Observation) {
		logFigures(t, o)
		sent := o.Filter(Status("sent"))
		require.Len(t, sent, messages, "recipients sent")
		// The order follows the incoming scan, which reads the queue
		// directory in readdir order, so only the spacing is fixed.
		for n, d := range sent {
			if n > 0 {
				// Stamps are the times the observer read the lines, so a
				// stalled observer or postlogd can bring two together. The
				// delay= fields do not stall but carry two digits and the
				// gap between the messages' arrivals, so either one seeing
				// the pause is enough.
				seen := max(d.At-sent[n-1].At, d.Delay-sent[n-1].Delay)
				assert.GreaterOrEqual(t, seen, 750*time.Millisecond, "gap before delivery %d", n)
			}
		}
		assert.Less(t, sent[messages-1].At-sent[0].At, 4500*time.Millisecond, "span of %d deliveries paced one second apart", messages)
		assert.LessOrEqual(t, o.MaxConnections("healthy"), 1, "highest concurrency at the sink")
	})
}

func TestClog_WarnsOnFifthOfActiveQueue(t *testing.T) {
	sc := Scenario{
		Sinks:  map[string][]string{"slow": {"-p", "-w", "2"}},
		Routes: map[string]string{"clog.example": "slow"},
		MainCF: map[string]string{
			"qmgr_message_active_limit":          "10",
			"smtp_destination_concurrency_limit": "1",
		},
		Drive: func(t *testing.T, e *Env) {
			for n := range 4 {
				e.Submit(t, fmt.Sprintf("m%d", n), fmt.Sprintf("r%d@clog.example", n))
			}
			e.WaitDeliveries(t, 4, 30*time.Second, Status("sent"))
		},
	}
	Compare(t, sc, func(t *testing.T, o *Observation) {
		logFigures(t, o)
		var warnings []string
		for _, l := range o.QmgrLines() {
			if strings.HasPrefix(l, "warning: ") {
				warnings = append(warnings, l)
			}
		}
		// The third entry for the destination exceeds 10/5 entries; the
		// next warning would come qmgr_clog_warn_time (300s) later.
		assert.Equal(t, []string{
			"warning: mail for [127.0.0.1]:slow is using up 3 of 3 active queue entries",
			"warning: you may need to increase the main.cf smtp_destination_concurrency_limit from 1",
			"warning: please avoid flushing the whole queue when you have",
			"warning: lots of deferred mail, that is bad for performance",
			"warning: to turn off these warnings specify: qmgr_clog_warn_time = 0",
		}, warnings)
		assert.Equal(t, []int{1, 1, 1, 1}, o.Received["slow"], "recipients per message at the sink")
	})
}
