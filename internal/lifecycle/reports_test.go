package lifecycle

import (
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"oqmgr-go/internal/testbed"
)

// retryingInstance starts an instance whose remote mail is deferred at
// every attempt and retried about every second for an hour.
func retryingInstance(t *testing.T, q qmgr, extra map[string]string) *testbed.Instance {
	t.Helper()
	mainCF := map[string]string{
		"queue_run_delay":        "1s",
		"minimal_backoff_time":   "1s",
		"maximal_backoff_time":   "2s",
		"maximal_queue_lifetime": "1h",
		"bounce_queue_lifetime":  "1h",
	}
	for k, v := range extra {
		mainCF[k] = v
	}
	return start(t, q, testbed.Options{RelayPort: deadPort(t), MainCF: mainCF})
}

func TestDelayWarning_SentOnceWhenSetBeforeQueueing(t *testing.T) {
	t.Parallel()
	compare(t, func(t *testing.T, q qmgr) int {
		inst := retryingInstance(t, q, map[string]string{"delay_warning_time": "2s"})
		id := submit(t, inst, inst.LocalAddress(), "", []rcpt{{addr: "rcpt@example.net"}}, messageText("warned"))

		waitFor(t, 30*time.Second, func() bool { return len(attempts(t, inst, id)) >= 8 }, "eight attempts of %s", id)
		assert.Equal(t, []string{subjectDelay}, mailboxSubjects(t, inst), "notices in the sender's mailbox after %d attempts", len(attempts(t, inst, id)))
		assert.Equal(t, 1, count(t, inst, id+": sender delay notification: "), "delay notifications logged by bounce")

		f, ok := findQueueFile(t, inst, id)
		require.True(t, ok, "queue file of %s", id)
		assert.Equal(t, int64(-1), readQueueFile(t, f.path).WarnTime, "W record of %s after the warning", id)
		return 0
	})
}

func TestDelayWarning_NoneWhenSetAfterQueueing(t *testing.T) {
	t.Parallel()
	compare(t, func(t *testing.T, q qmgr) int {
		inst := retryingInstance(t, q, nil)
		before := submit(t, inst, inst.LocalAddress(), "", []rcpt{{addr: "rcpt@example.net"}}, messageText("queued before"))
		// A reload during the attempt would leave the file locked in active,
		// and the new queue manager would put it off for a minute.
		require.Len(t, watchDeferrals(t, inst, before, 1, 30*time.Second), 1, "deferral of %s", before)

		out, err := exec.Command("/usr/sbin/postconf", "-c", inst.ConfigDir, "-e", "delay_warning_time=2s").CombinedOutput()
		require.NoError(t, err, "postconf -e: %s", out)
		require.NoError(t, inst.Reload())
		after := submit(t, inst, inst.LocalAddress(), "", []rcpt{{addr: "rcpt@example.net"}}, messageText("queued after"))

		// The message queued after the change shows that the setting
		// works. The one queued before has no warning time in its file.
		waitFor(t, 30*time.Second, func() bool { return count(t, inst, after+": sender delay notification: ") == 1 }, "delay notification for %s", after)
		waitFor(t, 30*time.Second, func() bool { return len(attempts(t, inst, before)) >= 8 }, "eight attempts of %s", before)
		assert.Zero(t, count(t, inst, before+": sender delay notification: "), "delay notifications for %s", before)
		waitFor(t, 10*time.Second, func() bool { return len(mailboxSubjects(t, inst)) >= 1 }, "the delay notice reaches the sender")
		assert.Equal(t, []string{subjectDelay}, mailboxSubjects(t, inst), "notices in the sender's mailbox")
		return 0
	})
}

func TestTrace_SendmailVerboseReport(t *testing.T) {
	t.Parallel()
	compare(t, func(t *testing.T, q qmgr) int {
		sink := testbed.StartSink(t)
		inst := start(t, q, testbed.Options{RelayPort: sink.Port})
		id := sendmail(t, inst, []string{"-v"}, inst.LocalAddress(), "rcpt@example.net", messageText("verbose"))

		require.NoError(t, sink.WaitDelivered(1, 30*time.Second))
		require.NoError(t, inst.WaitQueueEmpty(30*time.Second))
		waitFor(t, 20*time.Second, func() bool { return len(mailboxSubjects(t, inst)) >= 1 }, "the delivery report of %s reaches the sender", id)
		assert.Equal(t, []string{subjectTrace}, mailboxSubjects(t, inst), "notices in the sender's mailbox")
		assert.Equal(t, 1, sink.Delivered(), "messages at the sink")
		return 0
	})
}

func TestTrace_SendmailVerifyReport(t *testing.T) {
	t.Parallel()
	compare(t, func(t *testing.T, q qmgr) int {
		sink := testbed.StartSink(t)
		inst := start(t, q, testbed.Options{RelayPort: sink.Port})
		id := sendmail(t, inst, []string{"-bv"}, inst.LocalAddress(), "rcpt@example.net", messageText("verify"))

		require.NoError(t, inst.WaitLog(id+": removed", 30*time.Second))
		waitFor(t, 20*time.Second, func() bool { return len(mailboxSubjects(t, inst)) >= 1 }, "the verification report of %s reaches the sender", id)
		assert.Equal(t, []string{subjectTrace}, mailboxSubjects(t, inst), "notices in the sender's mailbox")
		assert.Equal(t, 1, count(t, inst, id+": to=<rcpt@example.net>", "status=deliverable"), "deliverable lines for %s", id)
		assert.Zero(t, sink.Delivered(), "messages at the sink")
		return 0
	})
}

func TestDSN_NotifySuccessNotice(t *testing.T) {
	t.Parallel()
	compare(t, func(t *testing.T, q qmgr) int {
		inst := start(t, q, testbed.Options{})
		id := submit(t, inst, inst.LocalAddress(), "RET=HDRS ENVID=lifecycle-1", []rcpt{{addr: inst.LocalAddress(), params: "NOTIFY=SUCCESS"}}, messageText("notify success"))

		require.NoError(t, inst.WaitLog(id+": removed", 30*time.Second))
		waitFor(t, 20*time.Second, func() bool { return len(mailboxSubjects(t, inst)) >= 2 }, "message and success notice in the mailbox")
		got := mailboxSubjects(t, inst)
		slices.Sort(got)
		assert.Equal(t, []string{subjectSuccess, "notify success"}, got, "messages in the mailbox")
		assert.Contains(t, mailbox(t, inst), "Original-Envelope-Id: lifecycle-1", "ENVID carried into the notice")
		return 0
	})
}

func TestDoubleBounce_Discarded(t *testing.T) {
	t.Parallel()
	compare(t, func(t *testing.T, q qmgr) int {
		inst := start(t, q, testbed.Options{})
		to := "double-bounce@" + inst.LocalDomain
		id := sendmail(t, inst, nil, inst.LocalAddress(), to, messageText("double bounce"))

		require.NoError(t, inst.WaitLog(id+": removed", 30*time.Second))
		lines := events(t, inst, "postfix/qmgr[", id+": to=<"+to+">")
		require.Len(t, lines, 1, "qmgr lines for %s", to)
		assert.Contains(t, lines[0].line, ", relay=none, delay=")
		assert.Contains(t, lines[0].line, ", dsn=2.0.0, status=sent (undeliverable postmaster notification discarded)")
		assert.Zero(t, count(t, inst, "postfix/local[", id+":"), "local(8) lines for %s", id)
		assert.Empty(t, mailboxSubjects(t, inst), "notices in the sender's mailbox")
		return 0
	})
}
