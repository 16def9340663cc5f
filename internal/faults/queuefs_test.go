package faults

import (
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"oqmgr-go/internal/testbed"
)

// queueFSOptions are the instance options of the file system tests: a small
// file system of the instance's own as the queue directory and quick
// retries. A short master throttle brings daemons that exit on a file system
// error back within seconds once the error is gone.
func queueFSOptions(relayPort int) testbed.Options {
	mainCF := fastRetry()
	mainCF["service_throttle_time"] = "2s"
	return testbed.Options{RelayPort: relayPort, MainCF: mainCF, QueueFSSize: "64M"}
}

// readOnlyFatal is the line a queue manager logs when it cannot change a
// queue file on a read-only file system, e.g. "fatal: qmgr_active_defer:
// update active/B4C8F50 time stamps: Read-only file system" or "fatal:
// qmgr_active_done_3_generic: remove DB36241 from active: Read-only file
// system": it names the queue id and the error, then the program exits.
var readOnlyFatal = regexp.MustCompile(`^fatal: .*\b[0-9A-F]{6,}\b.*: Read-only file system$`)

// inFlightLimit bounds the deliveries in progress when the disk fails: the
// default destination concurrency limit of the one destination.
const inFlightLimit = 20

func TestQueueFS_ReadOnlyMidDrain(t *testing.T) {
	const messages = 200
	for _, impl := range implementations(t) {
		t.Run(impl.name, func(t *testing.T) {
			t.Parallel()
			sink := slowSink(t)
			inst := startInstance(t, impl.binary, queueFSOptions(sink.Port))
			submitMessages(t, inst, messages, 8)

			// The disk fails a while into the drain: ext4 remounts the
			// queue read-only. Every delivery that ends then finds its
			// queue file unchangeable, and so does the queue manager.
			require.NoError(t, sink.WaitDelivered(30, 60*time.Second))
			require.NoError(t, inst.BreakQueueFS())
			deadline := time.Now().Add(30 * time.Second)
			for !slices.ContainsFunc(qmgrLines(t, inst), readOnlyFatal.MatchString) && time.Now().Before(deadline) {
				time.Sleep(100 * time.Millisecond)
			}
			queued := queueLeft(t, inst)
			received := sink.Delivered()
			t.Logf("%s oqmgr, queue read-only: %d received, %d in the queue", impl.name, received, queued)
			for _, line := range qmgrLines(t, inst) {
				if strings.HasPrefix(line, "fatal:") || strings.HasPrefix(line, "warning:") {
					t.Logf("qmgr: %s", line)
				}
			}
			require.True(t, slices.ContainsFunc(qmgrLines(t, inst), readOnlyFatal.MatchString),
				"a qmgr line matching %s", readOnlyFatal)
			assert.GreaterOrEqual(t, queued+received, messages, "messages received or still in the queue")

			// The operator stops Postfix, checks the file system and
			// starts Postfix again: the drain resumes.
			require.NoError(t, inst.Stop())
			require.NoError(t, inst.RepairQueueFS())
			require.NoError(t, inst.Start())
			require.NoError(t, inst.Kick("I"))
			tl := assertDrained(t, inst, sink, messages)

			// The ext4 error discards the changes not yet committed, among
			// them the marks of recipients already delivered, so both
			// programs deliver those again: up to all mail received before
			// the failure, plus deliveries then in progress. How many that
			// is depends on the journal's commit timing, not on the queue
			// manager, so the figure is not compared with the C oqmgr's.
			assert.LessOrEqual(t, tl.duplicates, received+inFlightLimit,
				"duplicates against the %d messages received when the queue turned read-only", received)
		})
	}
}

func TestQueueFS_FullDuringRetry(t *testing.T) {
	const messages = 100
	for _, impl := range implementations(t) {
		t.Run(impl.name, func(t *testing.T) {
			t.Parallel()
			// A sink that replies 450 to every recipient, so every delivery
			// attempt needs a defer log written.
			rejecting := testbed.StartSink(t, "-r", "RCPT")
			opts := queueFSOptions(rejecting.Port)
			// Mail waits in hold until the file system is full, so that no
			// defer log exists yet.
			opts.MainCF["header_checks"] = "regexp:{{/^Subject: " + subjectPrefix + "/ HOLD}}"
			inst := startInstance(t, impl.binary, opts)
			submitMessages(t, inst, messages, 8)
			require.Eventually(t, func() bool {
				n, err := inst.QueueCount("hold")
				return err == nil && n == messages
			}, 30*time.Second, 100*time.Millisecond, "all messages in hold")
			pid := waitQmgr(t, inst, 10*time.Second)

			// With the disk full, the defer logs cannot be written: bounce
			// exits, smtp reports the failure, and the queue manager must
			// keep every message where it was.
			filled, err := inst.FillQueueFS()
			require.NoError(t, err)
			t.Logf("filled the queue file system with %d bytes", filled)
			out, err := exec.Command("postsuper", "-c", inst.ConfigDir, "-H", "ALL").CombinedOutput()
			require.NoError(t, err, "postsuper -H ALL: %s", out)
			require.NoError(t, inst.WaitLog(": defer service failure", 30*time.Second))
			time.Sleep(3 * time.Second)
			counts, err := inst.QueueCounts()
			require.NoError(t, err)
			t.Logf("%s oqmgr, queue full: queue %v", impl.name, counts)
			assert.Equal(t, messages, queueLeft(t, inst), "messages in the queue while it is full")
			assert.Zero(t, corruptCount(t, inst), "files in corrupt while the queue is full")
			assert.Equal(t, []int{pid}, qmgrPIDs(inst), "qmgr processes: the first one still running")
			assert.Zero(t, countLines(t, inst, "fatal:"), "qmgr fatal lines")
			noSpace, err := inst.LogLines("No space left on device")
			require.NoError(t, err)
			assert.NotEmpty(t, noSpace, "maillog lines that name the full disk")

			// Space returns and the destination recovers: everything goes.
			require.NoError(t, rejecting.Stop())
			sink, err := testbed.StartSinkProcessOnPort(rejecting.Port)
			require.NoError(t, err)
			t.Cleanup(func() { _ = sink.Stop() })
			require.NoError(t, inst.FreeQueueFS())
			require.NoError(t, inst.Kick("I"))
			assertDrained(t, inst, sink, messages)
		})
	}
}
