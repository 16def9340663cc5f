package faults

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"oqmgr-go/internal/testbed"
)

// rewriteAnnouncement is what trivial-rewrite writes first on every
// connection in Postfix 3.7.
const rewriteAnnouncement = "protocol\x00trivial_rewrite_protocol\x00\x00"

func TestResolver_HangTimesOutAndRetries(t *testing.T) {
	const service = "hungrewrite"
	ours, c, ok := runBoth(t, func(t *testing.T, impl implementation) []string {
		sink := testbed.StartSink(t)
		// Only the queue manager uses the hung service, with a
		// short qmgr_ipc_timeout, which bounds its reads.
		inst := startInstance(t, impl.binary, testbed.Options{
			RelayPort: sink.Port,
			QmgrArgs:  "-o rewrite_service_name=" + service + " -o qmgr_ipc_timeout=2s",
		})
		stop := startFakeService(t, filepath.Join(inst.QueueDir, "private", service), rewriteAnnouncement, true)
		pid := waitQmgr(t, inst, 10*time.Second)

		submitMessages(t, inst, 1, 1)
		require.NoError(t, inst.WaitLog("warning: problem talking to service "+service, 30*time.Second))
		time.Sleep(3 * time.Second)
		assert.Zero(t, sink.Delivered(), "messages delivered without a resolver")
		assert.Equal(t, 1, queueLeft(t, inst), "messages in the queue while the resolver hangs")
		assert.Equal(t, []int{pid}, qmgrPIDs(inst), "qmgr processes: the first one still running")
		var warnings []string
		for _, line := range qmgrLines(t, inst) {
			if strings.HasPrefix(line, "warning:") && !strings.Contains(line, "(queue active)") {
				warnings = append(warnings, line)
			}
		}
		t.Logf("%s oqmgr warnings: %q", impl.name, warnings)

		// The operator puts a real trivial-rewrite behind the name.
		// Closing the listener removes its socket file.
		stop()
		addRewriteService(t, inst, service)
		assertDrained(t, inst, sink, 1)
		return warnings
	})
	if !ok {
		return
	}
	// Both retry every second after a timeout, so the counts depend on
	// timing: compare the distinct lines.
	assert.ElementsMatch(t, distinct(c), distinct(ours), "qmgr warnings, C oqmgr against ours")
}

// addRewriteService adds a trivial-rewrite service named service to the
// instance's master.cf and reloads Postfix.
func addRewriteService(t *testing.T, inst *testbed.Instance, service string) {
	t.Helper()
	out, err := exec.Command("postconf", "-c", inst.ConfigDir, "-M",
		service+"/unix="+service+" unix - - n - - trivial-rewrite").CombinedOutput()
	require.NoError(t, err, "postconf -M: %s", out)
	require.NoError(t, inst.Reload())
}

// distinct returns lines without repeats, in first-seen order.
func distinct(lines []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, l := range lines {
		if !seen[l] {
			seen[l] = true
			out = append(out, l)
		}
	}
	return out
}

func TestResolver_MissingSocketRetries(t *testing.T) {
	const service = "norewrite"
	ours, c, ok := runBoth(t, func(t *testing.T, impl implementation) []string {
		sink := testbed.StartSink(t)
		// Only the queue manager looks for trivial-rewrite under a
		// name that master.cf does not serve.
		inst := startInstance(t, impl.binary, testbed.Options{
			RelayPort: sink.Port,
			QmgrArgs:  "-o rewrite_service_name=" + service,
		})
		submitMessages(t, inst, 1, 1)
		require.NoError(t, inst.WaitLog("warning: connect #2 to subsystem private/"+service, 30*time.Second))
		assert.Zero(t, sink.Delivered(), "messages delivered without a resolver")
		assert.Equal(t, 1, queueLeft(t, inst), "messages in the queue")
		var warnings []string
		for _, line := range qmgrLines(t, inst) {
			if strings.HasPrefix(line, "warning:") {
				warnings = append(warnings, line)
			}
		}

		addRewriteService(t, inst, service)
		assertDrained(t, inst, sink, 1)
		return warnings
	})
	if !ok {
		return
	}
	// Both wait 10 s between connects: the same lines, one per try.
	assert.Equal(t, c, ours, "qmgr warnings, C oqmgr against ours")
}
