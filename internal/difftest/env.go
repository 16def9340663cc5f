package difftest

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Sender is the envelope sender of every message that Submit sends.
const Sender = "sender@example.org"

// Submit sends one message over SMTP. label names it in normalised lines
// and in Delivery.Message: it travels in the Message-ID header, which
// cleanup logs next to the queue id. Use a label of letters and digits.
func (e *Env) Submit(t *testing.T, label string, rcpts ...string) {
	t.Helper()
	body := fmt.Sprintf("Message-ID: <difftest-%s@example.org>\nFrom: %s\nSubject: %s\n\nbody of %s\n", label, Sender, label, label)
	require.NoError(t, e.Inst.SubmitSMTP(Sender, rcpts, body), "submit %s", label)
}

// Elapsed returns the time since the observer started, on the clock of
// LogLine.At and Delivery.At.
func (e *Env) Elapsed() time.Duration {
	return e.obs.now()
}

// Observe returns what was observed so far.
func (e *Env) Observe() *Observation {
	lines, samples := e.obs.snapshot()
	return newObservation(e.Qmgr, lines, samples, e.obs.ports)
}

// WaitDeliveries waits until at least n status lines satisfy keep and
// returns the observation that showed them.
func (e *Env) WaitDeliveries(t *testing.T, n int, timeout time.Duration, keep func(Delivery) bool) *Observation {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		o := e.Observe()
		got := len(o.Filter(keep))
		if got >= n {
			return o
		}
		if time.Now().After(deadline) {
			require.FailNowf(t, "too few status lines", "%s: %d of %d matching status lines after %s; all status lines:\n%s",
				e.Qmgr, got, n, timeout, formatDeliveries(o.Deliveries))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// WaitLog waits until at least n maillog lines contain substr.
func (e *Env) WaitLog(t *testing.T, n int, substr string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		lines, _ := e.obs.snapshot()
		got := 0
		for _, line := range lines {
			if strings.Contains(line.Text, substr) {
				got++
			}
		}
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			require.FailNowf(t, "too few log lines", "%s: %d of %d maillog lines contain %q after %s", e.Qmgr, got, n, substr, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// WaitQueueEmpty waits until the instance's queue holds no mail.
func (e *Env) WaitQueueEmpty(t *testing.T, timeout time.Duration) {
	t.Helper()
	require.NoError(t, e.Inst.WaitQueueEmpty(timeout), "%s", e.Qmgr)
}

// Status returns a filter for status lines with the given status, e.g.
// "sent".
func Status(status string) func(Delivery) bool {
	return func(d Delivery) bool { return d.Status == status }
}

// Any matches every status line.
func Any(Delivery) bool { return true }

// Postfix runs a Postfix command such as postqueue or postsuper from
// /usr/sbin with "-c ConfigDir" before args.
func (e *Env) Postfix(t *testing.T, command string, args ...string) {
	t.Helper()
	args = append([]string{"-c", e.Inst.ConfigDir}, args...)
	out, err := exec.Command(filepath.Join("/usr/sbin", command), args...).CombinedOutput()
	require.NoError(t, err, "%s %s: %s", command, strings.Join(args, " "), out)
}

// Kick sends a trigger request to the queue manager with postkick(1).
// postkick writes the request and a closing null byte in two writes. The
// queue manager may close the connection after reading the first, so
// postkick can die of SIGPIPE after the request arrived, which Kick ignores.
func (e *Env) Kick(t *testing.T, request string) {
	t.Helper()
	if err := e.Inst.Kick(request); err != nil && !strings.Contains(err.Error(), "broken pipe") {
		require.NoError(t, err)
	}
}
