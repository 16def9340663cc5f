package testbed

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// cOqmgr is the C old queue manager from the Debian package, the reference
// that proves the harness before our own binary exists.
const cOqmgr = "/usr/lib/postfix/sbin/oqmgr"

const drainTimeout = 60 * time.Second

// queueIDPattern matches the queue id at the start of a qmgr log text.
var queueIDPattern = regexp.MustCompile(`/qmgr\[\d+\]: ([0-9A-F]+): `)

func message(subject string) string {
	return "Subject: " + subject + "\nFrom: sender@example.org\n\nbody of " + subject + "\n.\nlast line\n"
}

func TestInstance_DeliversSMTPAndLocal(t *testing.T) {
	t.Parallel()
	RequireEnvironment(t)
	sink := StartSink(t)
	inst := New(t, Options{QmgrBinary: cOqmgr, RelayPort: sink.Port})
	require.NoError(t, inst.Start())

	for n := range 5 {
		require.NoError(t, inst.SubmitSMTP("sender@example.org", []string{fmt.Sprintf("rcpt%d@remote.example", n)}, message(fmt.Sprintf("smtp %d", n))))
	}
	for n := range 2 {
		require.NoError(t, inst.Sendmail("sender@example.org", []string{inst.LocalAddress()}, message(fmt.Sprintf("local %d", n))))
	}

	require.NoError(t, sink.WaitDelivered(5, drainTimeout))
	require.NoError(t, inst.WaitQueueEmpty(drainTimeout))
	// postlogd writes asynchronously, so the last removal may still be on
	// its way.
	require.Eventually(t, func() bool {
		lines, err := inst.LogLines(": removed")
		return err == nil && len(lines) >= 7
	}, 10*time.Second, 50*time.Millisecond)

	assert.Equal(t, 5, sink.Delivered(), "messages at the sink")
	msgs, err := inst.MailboxMessages(inst.LocalUser)
	require.NoError(t, err)
	assert.Equal(t, 2, msgs, "messages in %s", inst.MailboxPath(inst.LocalUser))
	for _, q := range []string{"incoming", "active", "deferred", "hold", "corrupt"} {
		n, err := inst.QueueCount(q)
		require.NoError(t, err)
		assert.Zero(t, n, "files in queue %s", q)
	}

	// One "removed" line per message, each for a different queue id that
	// the queue manager also logged as entering the active queue.
	removed, err := inst.LogLines(": removed")
	require.NoError(t, err)
	active, err := inst.LogLines("(queue active)")
	require.NoError(t, err)
	assert.Len(t, removed, 7, "removed lines:\n%s", strings.Join(removed, "\n"))
	assert.Len(t, active, 7, "queue active lines:\n%s", strings.Join(active, "\n"))
	removedIDs := map[string]bool{}
	for _, line := range removed {
		m := queueIDPattern.FindStringSubmatch(line)
		require.NotNil(t, m, "removed line not logged by postfix/qmgr: %s", line)
		removedIDs[m[1]] = true
	}
	assert.Len(t, removedIDs, 7, "distinct queue ids in removed lines")
	for _, line := range active {
		m := queueIDPattern.FindStringSubmatch(line)
		require.NotNil(t, m, "queue active line not logged by postfix/qmgr: %s", line)
		assert.True(t, removedIDs[m[1]], "queue id %s entered active but was not removed", m[1])
	}

	// Stop leaves no process of the instance behind, and a stopped
	// instance starts again.
	require.NoError(t, inst.Stop())
	assert.Empty(t, processesUnder(inst.Dir), "processes left after Stop")
	require.NoError(t, inst.Start())
	require.NoError(t, inst.Stop())
	assert.Empty(t, processesUnder(inst.Dir), "processes left after the second Stop")
}

func TestInstance_SinkRejectsDefers(t *testing.T) {
	t.Parallel()
	RequireEnvironment(t)
	sink := StartSink(t, "-Q", "CONNECT")
	inst := New(t, Options{QmgrBinary: cOqmgr, RelayPort: sink.Port})
	require.NoError(t, inst.Start())

	require.NoError(t, inst.SubmitSMTP("sender@example.org", []string{"rcpt@remote.example"}, message("deferred")))

	require.NoError(t, inst.WaitLog("status=deferred", drainTimeout))
	require.Eventually(t, func() bool {
		n, err := inst.QueueCount("deferred")
		return err == nil && n == 1
	}, drainTimeout, 50*time.Millisecond, "the message should move to the deferred queue")
	assert.Zero(t, sink.Delivered(), "a sink that answers 421 at connect receives nothing")
}

func TestInstance_FifoServiceAndKick(t *testing.T) {
	t.Parallel()
	inst := New(t, Options{QmgrBinary: cOqmgr, ServiceType: "fifo", QmgrArgs: "-o qmgr_fudge_factor=100"})
	require.NoError(t, inst.Start())

	info, err := os.Stat(filepath.Join(inst.QueueDir, "public", "qmgr"))
	require.NoError(t, err)
	assert.Equal(t, os.ModeNamedPipe, info.Mode().Type(), "public/qmgr type")

	require.NoError(t, inst.Sendmail("sender@example.org", []string{inst.LocalAddress()}, message("fifo")))
	require.NoError(t, inst.WaitLog(": removed", drainTimeout))
	require.NoError(t, inst.Kick("I"))
	require.NoError(t, inst.Reload())
	require.NoError(t, inst.Sendmail("sender@example.org", []string{inst.LocalAddress()}, message("after reload")))
	require.Eventually(t, func() bool {
		n, err := inst.MailboxMessages(inst.LocalUser)
		return err == nil && n == 2
	}, drainTimeout, 50*time.Millisecond, "both messages in the mailbox")

	masterCF, err := os.ReadFile(filepath.Join(inst.ConfigDir, "master.cf"))
	require.NoError(t, err)
	assert.Contains(t, string(masterCF), "qmgr      fifo  n - n 300 1 qmgr -o qmgr_fudge_factor=100")
}

func TestInstance_QueueCountRejectsUnknownQueue(t *testing.T) {
	inst := &Instance{QueueDir: t.TempDir()}
	_, err := inst.QueueCount("../etc")
	assert.ErrorContains(t, err, "unknown queue")
}

func TestAppendConfigDir(t *testing.T) {
	const dir = "/tmp/oqmgr-testbed/slot-00/etc"
	tests := []struct {
		name        string
		text        string
		want        string
		wantChanged bool
	}{
		{
			name:        "missing file",
			text:        "",
			want:        "alternate_config_directories = " + dir + "\n",
			wantChanged: true,
		},
		{
			name:        "no definition, no final newline",
			text:        "myhostname = a.example",
			want:        "myhostname = a.example\nalternate_config_directories = " + dir + "\n",
			wantChanged: true,
		},
		{
			name:        "existing list",
			text:        "# comment\nalternate_config_directories = /x/etc\nrelayhost =\n",
			want:        "# comment\nalternate_config_directories = /x/etc " + dir + "\nrelayhost =\n",
			wantChanged: true,
		},
		{
			name:        "continuation lines",
			text:        "alternate_config_directories = /x/etc,\n    /y/etc\nrelayhost =\n",
			want:        "alternate_config_directories = /x/etc,\n    /y/etc " + dir + "\nrelayhost =\n",
			wantChanged: true,
		},
		{
			name:        "already listed in a continuation line",
			text:        "alternate_config_directories = /x/etc,\n\t" + dir + "\n",
			want:        "alternate_config_directories = /x/etc,\n\t" + dir + "\n",
			wantChanged: false,
		},
		{
			name:        "prefix of a listed directory is not a match",
			text:        "alternate_config_directories = " + dir + "2\n",
			want:        "alternate_config_directories = " + dir + "2 " + dir + "\n",
			wantChanged: true,
		},
		{
			name:        "commented-out definition is ignored",
			text:        "#alternate_config_directories = " + dir + "\n",
			want:        "#alternate_config_directories = " + dir + "\nalternate_config_directories = " + dir + "\n",
			wantChanged: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, changed := appendConfigDir(tt.text, dir)
			assert.Equal(t, tt.want, got, "input:\n%s", tt.text)
			assert.Equal(t, tt.wantChanged, changed, "changed")
		})
	}
}
