package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"oqmgr-go/internal/testbed"
)

// startInstance runs a private Postfix instance whose qmgr is our binary.
func startInstance(t *testing.T, o testbed.Options) *testbed.Instance {
	t.Helper()
	testbed.RequireEnvironment(t)
	o.QmgrBinary = testbed.OurQmgr(t)
	inst := testbed.New(t, o)
	require.NoError(t, inst.Start())
	return inst
}

var removedLine = regexp.MustCompile(`postfix/qmgr\[\d+\]: ([0-9A-Za-z]+): removed$`)
var activeLine = regexp.MustCompile(`postfix/qmgr\[\d+\]: ([0-9A-Za-z]+): from=<[^>]*>, size=\d+, nrcpt=\d+ \(queue active\)$`)

// idsMatching returns the queue ids of maillog lines matching re.
func idsMatching(t *testing.T, inst *testbed.Instance, re *regexp.Regexp) []string {
	t.Helper()
	log, err := inst.Log()
	require.NoError(t, err)
	var ids []string
	for _, line := range strings.Split(log, "\n") {
		if m := re.FindStringSubmatch(line); m != nil {
			ids = append(ids, m[1])
		}
	}
	return ids
}

func TestOqmgr_DeliversSMTPAndLocal(t *testing.T) {
	sink := testbed.StartSink(t)
	inst := startInstance(t, testbed.Options{RelayPort: sink.Port})

	const remote, local = 50, 5
	for i := range remote {
		body := fmt.Sprintf("Subject: remote %d\n\nbody %d\n", i, i)
		require.NoError(t, inst.SubmitSMTP("sender@example.org", []string{fmt.Sprintf("rcpt%d@example.net", i)}, body))
	}
	for i := range local {
		body := fmt.Sprintf("Subject: local %d\n\nbody %d\n", i, i)
		require.NoError(t, inst.Sendmail("sender@example.org", []string{inst.LocalAddress()}, body))
	}

	require.NoError(t, sink.WaitDelivered(remote, 60*time.Second))
	require.NoError(t, inst.WaitQueueEmpty(60*time.Second))

	assert.Equal(t, remote, sink.Delivered(), "messages at the sink")
	mailbox, err := inst.MailboxMessages(inst.LocalUser)
	require.NoError(t, err)
	assert.Equal(t, local, mailbox, "messages in %s", inst.MailboxPath(inst.LocalUser))

	removed := idsMatching(t, inst, removedLine)
	assert.Len(t, removed, remote+local, "removed lines")
	unique := map[string]bool{}
	for _, id := range removed {
		assert.False(t, unique[id], "queue id %s removed twice", id)
		unique[id] = true
	}
	for _, id := range idsMatching(t, inst, activeLine) {
		assert.True(t, unique[id], "queue id %s entered active but was never removed", id)
	}
	corrupt, err := inst.QueueCount("corrupt")
	require.NoError(t, err)
	assert.Zero(t, corrupt, "files in corrupt")
}

func TestOqmgr_DeferredMailIsRetried(t *testing.T) {
	failing := testbed.StartSink(t, "-Q", "CONNECT")
	inst := startInstance(t, testbed.Options{
		RelayPort: failing.Port,
		MainCF: map[string]string{
			"queue_run_delay":      "1s",
			"minimal_backoff_time": "1s",
			"maximal_backoff_time": "2s",
		},
	})

	require.NoError(t, inst.SubmitSMTP("sender@example.org", []string{"rcpt@example.net"}, "Subject: retry\n\nbody\n"))
	require.NoError(t, inst.WaitLog("status=deferred", 30*time.Second))

	// The deferred file carries a next-attempt time in its time stamp.
	require.Eventually(t, func() bool {
		n, err := inst.QueueCount("deferred")
		return err == nil && n == 1
	}, 10*time.Second, 50*time.Millisecond, "one file in deferred")
	paths, err := filepath.Glob(filepath.Join(inst.QueueDir, "deferred", "*", "*"))
	require.NoError(t, err)
	require.Len(t, paths, 1)
	info, err := os.Stat(paths[0])
	require.NoError(t, err)
	assert.True(t, info.ModTime().After(time.Now().Add(-2*time.Second)), "next-attempt time %s of %s", info.ModTime(), paths[0])

	// A healthy sink on the same port gets the message on a later attempt.
	require.NoError(t, failing.Stop())
	healthy, err := testbed.StartSinkProcessOnPort(failing.Port)
	require.NoError(t, err)
	t.Cleanup(func() { _ = healthy.Stop() })

	require.NoError(t, healthy.WaitDelivered(1, 60*time.Second))
	require.NoError(t, inst.WaitQueueEmpty(30*time.Second))
	assert.Len(t, idsMatching(t, inst, removedLine), 1, "removed lines")
	assert.GreaterOrEqual(t, len(idsMatching(t, inst, activeLine)), 2, "attempts logged as queue active")
}

func TestOqmgr_CorruptFileIsSetAside(t *testing.T) {
	sink := testbed.StartSink(t)
	inst := startInstance(t, testbed.Options{RelayPort: sink.Port})

	const id = "ABCDE123456"
	require.NoError(t, inst.PlaceQueueFile("incoming", id, []byte("this is not a queue file\n"), 0o700))
	require.NoError(t, inst.Kick("I"))

	require.NoError(t, inst.SubmitSMTP("sender@example.org", []string{"rcpt@example.net"}, "Subject: fine\n\nbody\n"))
	require.NoError(t, sink.WaitDelivered(1, 30*time.Second))
	require.NoError(t, inst.WaitLog(`saving corrupt file "`+id+`" from queue "active" to queue "corrupt"`, 30*time.Second))

	_, err := os.Stat(filepath.Join(inst.QueueDir, "corrupt", id))
	assert.NoError(t, err, "corrupt file kept in the corrupt queue")
	require.NoError(t, inst.WaitQueueEmpty(30*time.Second))
}

func TestOqmgr_UnreachableTransportKeepsMail(t *testing.T) {
	sink := testbed.StartSink(t)
	inst := startInstance(t, testbed.Options{
		RelayPort: sink.Port,
		MainCF: map[string]string{
			// A transport with no master.cf entry: its socket is missing.
			"default_transport": "nosuch",
			"relay_transport":   "nosuch",
		},
	})

	require.NoError(t, inst.SubmitSMTP("sender@example.org", []string{"rcpt@example.net"}, "Subject: kept\n\nbody\n"))
	require.NoError(t, inst.WaitLog("warning: connect to transport private/nosuch", 30*time.Second))
	require.NoError(t, inst.WaitLog("mail transport unavailable", 30*time.Second))
	require.Eventually(t, func() bool {
		n, err := inst.QueueCount("deferred")
		return err == nil && n == 1
	}, 30*time.Second, 100*time.Millisecond, "the message waits in deferred")
	assert.Zero(t, sink.Delivered(), "nothing reached the sink")
}

func TestOqmgr_UnreachableResolverKeepsMail(t *testing.T) {
	sink := testbed.StartSink(t)
	// Only the queue manager looks for trivial-rewrite under a service
	// name that master.cf does not have yet.
	inst := startInstance(t, testbed.Options{RelayPort: sink.Port, QmgrArgs: "-o rewrite_service_name=rewrite2"})

	require.NoError(t, inst.SubmitSMTP("sender@example.org", []string{"rcpt@example.net"}, "Subject: waits\n\nbody\n"))
	require.NoError(t, inst.WaitLog("warning: connect #1 to subsystem private/rewrite2: No such file or directory", 30*time.Second))
	assert.Zero(t, sink.Delivered(), "nothing delivered without a resolver")
	counts, err := inst.QueueCounts()
	require.NoError(t, err)
	assert.Equal(t, 1, counts["incoming"]+counts["active"]+counts["deferred"], "the message is still queued: %v", counts)

	// Once the service exists, a reload brings up a new queue manager that
	// delivers the waiting message.
	out, err := exec.Command("postconf", "-c", inst.ConfigDir, "-M",
		"rewrite2/unix=rewrite2 unix - - n - - trivial-rewrite").CombinedOutput()
	require.NoError(t, err, "postconf -M: %s", out)
	require.NoError(t, inst.Reload())
	require.NoError(t, sink.WaitDelivered(1, 60*time.Second))
	require.NoError(t, inst.WaitQueueEmpty(30*time.Second))
}

func TestOqmgr_UnreachableBounceKeepsMail(t *testing.T) {
	// Only the queue manager sends its bounce flush to a service that
	// master.cf does not have yet; local(8) still records the bounce.
	inst := startInstance(t, testbed.Options{QmgrArgs: "-o bounce_service_name=bounce2"})

	require.NoError(t, inst.Sendmail(inst.LocalAddress(), []string{"nosuchuser@" + inst.LocalDomain}, "Subject: bounces\n\nbody\n"))
	require.NoError(t, inst.WaitLog("status=deferred (bounce failed)", 30*time.Second))
	require.Eventually(t, func() bool {
		n, err := inst.QueueCount("deferred")
		return err == nil && n == 1
	}, 30*time.Second, 100*time.Millisecond, "the message waits in deferred")
	assert.Empty(t, idsMatching(t, inst, removedLine), "nothing removed before the notice went out")

	// With the service in place, the retried attempt sends the notice.
	out, err := exec.Command("postconf", "-c", inst.ConfigDir, "-M",
		"bounce2/unix=bounce2 unix - - n - 0 bounce").CombinedOutput()
	require.NoError(t, err, "postconf -M: %s", out)
	require.NoError(t, inst.Reload())
	// A flush may still reach the old process before master has handled
	// the reload, so flush until the new one has sent the notice.
	require.Eventually(t, func() bool {
		_ = exec.Command("postqueue", "-c", inst.ConfigDir, "-f").Run()
		return inst.WaitQueueEmpty(time.Second) == nil
	}, 60*time.Second, 100*time.Millisecond, "the deferred message is flushed after the reload")
	mailbox, err := inst.MailboxMessages(inst.LocalUser)
	require.NoError(t, err)
	assert.Equal(t, 1, mailbox, "the non-delivery notice in the sender's mailbox")
	log, err := inst.Log()
	require.NoError(t, err)
	assert.Contains(t, log, "sender non-delivery notification", "bounce(8) sent the notice")
}
