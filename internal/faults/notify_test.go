package faults

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"oqmgr-go/internal/testbed"
)

// bounceAnnouncement is what bounce(8) writes first on every connection in
// Postfix 3.7.
const bounceAnnouncement = "protocol\x00delivery_status_protocol\x00\x00"

func TestBounceService_FailureKeepsMail(t *testing.T) {
	for _, tc := range []struct {
		name     string
		hang     bool
		inActive int // the message waits in active for the reply
	}{
		{"hang", true, 1},
		{"close", false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ours, c, ok := runBoth(t, func(t *testing.T, impl implementation) []string {
				return bounceFailure(t, impl.binary, tc.hang, tc.inActive)
			})
			if ok {
				assert.Equal(t, c, ours, "qmgr lines about the bounce, C oqmgr against ours")
			}
		})
	}
}

// bounceFailure sends mail that bounces to an instance whose queue manager
// flushes bounces through a broken bounce service, checks that the message
// stays queued, and returns the qmgr warning and status lines with the
// queue id replaced by "ID".
func bounceFailure(t *testing.T, binary string, hang bool, inActive int) []string {
	const service = "badbounce"
	// local(8) records the bounce through the real bounce(8); only the
	// queue manager's flush goes to the broken service.
	inst := startInstance(t, binary, testbed.Options{
		QmgrArgs: "-o bounce_service_name=" + service + " -o qmgr_ipc_timeout=2s",
	})
	startFakeService(t, filepath.Join(inst.QueueDir, "private", service), bounceAnnouncement, hang)
	require.NoError(t, inst.Sendmail(inst.LocalAddress(), []string{"nosuchuser@" + inst.LocalDomain}, "Subject: bounces\n\nbody\n"))
	require.NoError(t, inst.WaitLog("status=bounced", 30*time.Second))
	// Longer than qmgr_ipc_timeout, which does not apply to the flush.
	time.Sleep(5 * time.Second)

	assert.Equal(t, 1, queueLeft(t, inst), "messages in the queue")
	active, err := inst.QueueCount("active")
	require.NoError(t, err)
	assert.Equal(t, inActive, active, "messages in active")
	assert.Zero(t, corruptCount(t, inst), "files in corrupt")

	id := ""
	var got []string
	for _, line := range qmgrLines(t, inst) {
		if before, _, ok := strings.Cut(line, ": from=<"); ok {
			id = before
		}
		if strings.HasPrefix(line, "warning:") || strings.Contains(line, "status=") {
			if id != "" {
				line = strings.ReplaceAll(line, id, "ID")
			}
			got = append(got, line)
		}
	}
	return got
}
