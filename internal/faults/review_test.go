package faults

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"oqmgr-go/internal/testbed"
)

// A message that postsuper deletes or holds while its delivery is being
// deferred is not corrupt, and neither queue manager says it is.
func TestPostsuper_RemovedFileIsNotCorrupt(t *testing.T) {
	for _, op := range []string{"-d", "-h"} {
		for _, impl := range implementations(t) {
			t.Run(op+"/"+impl.name, func(t *testing.T) {
				// Wait 3 s at DATA, then reply 4xx to the final dot.
				sink := testbed.StartSink(t, "-w", "3", "-r", ".")
				inst := startInstance(t, impl.binary, testbed.Options{RelayPort: sink.Port})
				require.NoError(t, inst.SubmitSMTP("sender@example.org", []string{"rcpt@example.net"}, "Subject: x\n\nbody\n"))
				require.NoError(t, inst.WaitLog("(queue active)", 10*time.Second))
				time.Sleep(time.Second) // smtp(8) has the file open and waits at DATA
				out, err := exec.Command("postsuper", "-c", inst.ConfigDir, op, "ALL").CombinedOutput()
				require.NoError(t, err, "%s", out)
				require.NoError(t, inst.WaitLog("status=deferred", 20*time.Second))
				time.Sleep(2 * time.Second)

				lines, err := inst.LogLines("saving corrupt file")
				require.NoError(t, err)
				assert.Empty(t, lines, "a file that postsuper %s moved away is logged as corrupt", op)
				assert.Zero(t, corruptCount(t, inst), "files in corrupt")
			})
		}
	}
}

// When the rename from active to deferred fails with an error other than
// ENOENT, the queue manager exits fatally as the C oqmgr does; the next
// process moves the file back through incoming, so the message does not
// stay in active once the deferred queue is writable again.
func TestDeferRename_FailureLeavesNothingInActive(t *testing.T) {
	for _, impl := range implementations(t) {
		t.Run(impl.name, func(t *testing.T) {
			// Nothing listens at the relay port, so the delivery is deferred.
			inst := startInstance(t, impl.binary, testbed.Options{MainCF: fastRetry()})
			deferred := filepath.Join(inst.QueueDir, "deferred")
			setMode := func(mode os.FileMode) {
				_ = filepath.WalkDir(deferred, func(p string, d os.DirEntry, err error) error {
					if err == nil && d.IsDir() {
						_ = os.Chmod(p, mode)
					}
					return nil
				})
			}
			setMode(0o500) // the queue manager runs as the owner, postfix: no write
			require.NoError(t, inst.SubmitSMTP("sender@example.org", []string{"rcpt@example.net"}, "Subject: x\n\nbody\n"))
			require.NoError(t, inst.WaitLog("status=deferred", 20*time.Second))
			require.NoError(t, inst.WaitLog("fatal: qmgr_active_defer: rename", 20*time.Second))
			setMode(0o700)
			require.NoError(t, inst.Kick("I"))
			require.Eventually(t, func() bool {
				n, err := inst.QueueCount("active")
				return err == nil && n == 0
			}, 30*time.Second, 200*time.Millisecond, "message left active after the deferred queue became writable")
			n, err := inst.QueueCount("deferred")
			require.NoError(t, err)
			assert.Equal(t, 1, n, "the message waits in deferred")
		})
	}
}

// postkick dies of SIGPIPE when the C trigger server closes before its
// trailing NUL; the test bed must still count the kick as sent.
func TestKick_COqmgrRepeatedly(t *testing.T) {
	inst := startInstance(t, cOqmgr, testbed.Options{})
	failed := 0
	for range 100 {
		if err := inst.Kick("I"); err != nil {
			t.Logf("kick: %v", err)
			failed++
		}
	}
	assert.Zero(t, failed, "kicks of 100 that failed")
}
