package main

import (
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"oqmgr-go/internal/testbed"
)

// qmgrPIDs returns the pids of the running processes whose program is
// the instance's queue manager.
func qmgrPIDs(t *testing.T, inst *testbed.Instance) []int {
	t.Helper()
	want := filepath.Join(inst.DaemonDir, "qmgr")
	entries, err := os.ReadDir("/proc")
	require.NoError(t, err)
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe")); err == nil && exe == want {
			pids = append(pids, pid)
		}
	}
	return pids
}

// waitOneQmgr waits until exactly one queue manager runs and returns its pid.
func waitOneQmgr(t *testing.T, inst *testbed.Instance) int {
	t.Helper()
	var pids []int
	require.Eventually(t, func() bool {
		pids = qmgrPIDs(t, inst)
		return len(pids) == 1
	}, 15*time.Second, 50*time.Millisecond, "one queue manager process, have %v", pids)
	return pids[0]
}

// createInstance builds a stopped instance with our queue manager, so that
// a test can edit its files before Start.
func createInstance(t *testing.T, o testbed.Options) *testbed.Instance {
	t.Helper()
	testbed.RequireEnvironment(t)
	o.QmgrBinary = testbed.OurQmgr(t)
	return testbed.New(t, o)
}

// editFile replaces old by new in path, which must contain old.
func editFile(t *testing.T, path, old, new string) {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Contains(t, string(data), old, "text to replace in %s", path)
	require.NoError(t, os.WriteFile(path, []byte(strings.Replace(string(data), old, new, 1)), 0o644))
}

// requireNoQmgrTrouble fails when master logged an abnormal queue manager
// exit or the queue manager logged a fatal error.
func requireNoQmgrTrouble(t *testing.T, inst *testbed.Instance) {
	t.Helper()
	log, err := inst.Log()
	require.NoError(t, err)
	for _, line := range strings.Split(log, "\n") {
		bad := strings.Contains(line, "/qmgr pid") || // "process ... pid N exit status 1" or "killed by signal"
			strings.Contains(line, "postfix/qmgr[") && (strings.Contains(line, "fatal:") || strings.Contains(line, "panic:"))
		assert.False(t, bad, "maillog line: %s", line)
	}
}

// deferOne submits a message while nothing listens on the relay port and
// waits until it sits in the deferred queue.
func deferOne(t *testing.T, inst *testbed.Instance) {
	t.Helper()
	require.NoError(t, inst.SubmitSMTP("sender@example.org", []string{"rcpt@example.net"}, "Subject: later\n\nbody\n"))
	require.Eventually(t, func() bool {
		n, err := inst.QueueCount("deferred")
		return err == nil && n == 1
	}, 30*time.Second, 100*time.Millisecond, "one file in deferred")
}

// startSinkOnRelay starts a healthy smtp-sink on the instance's relay port.
func startSinkOnRelay(t *testing.T, inst *testbed.Instance) *testbed.Sink {
	t.Helper()
	sink, err := testbed.StartSinkProcessOnPort(inst.RelayPort)
	require.NoError(t, err)
	t.Cleanup(func() { _ = sink.Stop() })
	return sink
}

func TestLifecycle_ReloadAppliesNewMainCF(t *testing.T) {
	inst := createInstance(t, testbed.Options{MainCF: map[string]string{
		"queue_run_delay":      "1000s",
		"minimal_backoff_time": "1s",
		"maximal_backoff_time": "1s",
	}})
	require.NoError(t, inst.Start())
	oldPID := waitOneQmgr(t, inst)
	deferOne(t, inst)

	editFile(t, filepath.Join(inst.ConfigDir, "main.cf"), "queue_run_delay = 1000s", "queue_run_delay = 2s")
	require.NoError(t, inst.Reload())
	require.Eventually(t, func() bool {
		pids := qmgrPIDs(t, inst)
		return len(pids) == 1 && pids[0] != oldPID
	}, 15*time.Second, 50*time.Millisecond, "a new queue manager replaces pid %d", oldPID)

	// The new process retries at start-up while the relay is still down.
	// Only the new queue_run_delay of 2s brings the next retry, which
	// finds the sink: with 1000s the message would wait.
	require.Eventually(t, func() bool {
		lines, err := inst.LogLines("status=deferred")
		return err == nil && len(lines) >= 2
	}, 30*time.Second, 100*time.Millisecond, "second deferral, by the new process")
	sink := startSinkOnRelay(t, inst)
	require.NoError(t, sink.WaitDelivered(1, 20*time.Second))
	require.NoError(t, inst.WaitQueueEmpty(20*time.Second))
	requireNoQmgrTrouble(t, inst)
}

func TestLifecycle_OverrideFromMasterCF(t *testing.T) {
	inst := startInstance(t, testbed.Options{
		QmgrArgs: "-o queue_run_delay=2s",
		MainCF: map[string]string{
			"queue_run_delay":      "1000s",
			"minimal_backoff_time": "1s",
			"maximal_backoff_time": "1s",
		},
	})
	deferOne(t, inst)

	sink := startSinkOnRelay(t, inst)
	require.NoError(t, sink.WaitDelivered(1, 20*time.Second), "retry after the -o queue_run_delay of 2s")
	require.NoError(t, inst.WaitQueueEmpty(20*time.Second))
}

func TestLifecycle_StopKeepsQueue(t *testing.T) {
	inst := startInstance(t, testbed.Options{MainCF: map[string]string{
		"minimal_backoff_time": "1s",
		"maximal_backoff_time": "1s",
	}})
	deferOne(t, inst)
	require.NotEmpty(t, qmgrPIDs(t, inst), "queue manager before stop")

	require.NoError(t, inst.Stop())
	assert.Empty(t, qmgrPIDs(t, inst), "queue manager processes after stop")
	n, err := inst.QueueCount("deferred")
	require.NoError(t, err)
	assert.Equal(t, 1, n, "files in deferred after stop")
	requireNoQmgrTrouble(t, inst)

	// The kept file is delivered after a restart.
	sink := startSinkOnRelay(t, inst)
	require.NoError(t, inst.Start())
	require.NoError(t, kickIgnoringEPIPE(inst, "D"))
	require.NoError(t, sink.WaitDelivered(1, 30*time.Second))
	require.NoError(t, inst.WaitQueueEmpty(20*time.Second))
}

func TestLifecycle_ReloadDuringSlowDelivery(t *testing.T) {
	// The sink replies to every command 3 seconds late, so a delivery is in
	// progress when master closes the status channel.
	sink := testbed.StartSink(t, "-p", "-w", "3")
	inst := startInstance(t, testbed.Options{RelayPort: sink.Port})
	oldPID := waitOneQmgr(t, inst)

	require.NoError(t, inst.SubmitSMTP("sender@example.org", []string{"rcpt@example.net"}, "Subject: slow\n\nbody\n"))
	require.NoError(t, inst.WaitLog("(queue active)", 20*time.Second))
	require.NoError(t, inst.Reload())

	// The C queue manager exits at once and leaves the delivery to the
	// agent. An old process that waits for it would run next to the new one.
	require.Eventually(t, func() bool {
		for _, pid := range qmgrPIDs(t, inst) {
			if pid == oldPID {
				return false
			}
		}
		return true
	}, 2*time.Second, 20*time.Millisecond, "old queue manager pid %d gone within 2s of the reload", oldPID)

	require.NoError(t, sink.WaitDelivered(1, 60*time.Second))

	// A new process that found the file still locked by the agent logged
	// "skipped, still being delivered" and put it back in incoming with a
	// time stamp a minute ahead. "A" ignores that time stamp, and the
	// trigger also starts a queue manager if none runs, so the file is
	// finished now and not after the next wakeup.
	require.NoError(t, kickIgnoringEPIPE(inst, "AI"))
	require.NoError(t, inst.WaitQueueEmpty(20*time.Second))
	assert.Equal(t, 1, sink.Delivered(), "messages at the sink")
	requireNoQmgrTrouble(t, inst)
}

func TestLifecycle_TriggersOnBothServiceTypes(t *testing.T) {
	for _, serviceType := range []string{"unix", "fifo"} {
		t.Run(serviceType, func(t *testing.T) {
			inst := startInstance(t, testbed.Options{
				ServiceType: serviceType,
				MainCF: map[string]string{
					"queue_run_delay":      "1000s",
					"minimal_backoff_time": "1s",
					"maximal_backoff_time": "1s",
				},
			})
			pid := waitOneQmgr(t, inst)

			// cleanup's trigger after each new message.
			deferOne(t, inst)
			sink := startSinkOnRelay(t, inst)

			// Each client below must bring a deferred message out
			// long before the queue_run_delay of 1000s.
			flushers := []struct {
				name string
				run  func() error
			}{
				{"postkick D", func() error { return kickIgnoringEPIPE(inst, "D") }},
				{"postqueue -f", func() error {
					return exec.Command("/usr/sbin/postqueue", "-c", inst.ConfigDir, "-f").Run()
				}},
				{"sendmail -q", func() error {
					return exec.Command("/usr/sbin/sendmail", "-C", inst.ConfigDir, "-q").Run()
				}},
			}
			for i, f := range flushers {
				if i > 0 {
					require.NoError(t, sink.Stop())
					deferOne(t, inst)
					sink = startSinkOnRelay(t, inst)
				}
				require.NoError(t, f.run(), f.name)
				require.NoError(t, sink.WaitDelivered(1, 15*time.Second), "delivery after %s", f.name)
				require.NoError(t, inst.WaitQueueEmpty(15*time.Second), "queue after %s", f.name)
			}
			assert.Equal(t, []int{pid}, qmgrPIDs(t, inst), "the same queue manager served every trigger")
			requireNoQmgrTrouble(t, inst)
		})
	}
}

func TestLifecycle_WakeupsKeepServing(t *testing.T) {
	inst := createInstance(t, testbed.Options{QmgrArgs: "-v"})
	editFile(t, filepath.Join(inst.ConfigDir, "master.cf"), "n - n 300 1 qmgr", "n - n 1 1 qmgr")
	require.NoError(t, inst.Start())
	pid := waitOneQmgr(t, inst)

	// master sends "W" and a NUL every second on the socket.
	var lines []string
	require.Eventually(t, func() bool {
		lines, _ = inst.LogLines(`trigger "W\x00": ScanIncoming`)
		return len(lines) >= 3
	}, 20*time.Second, 100*time.Millisecond, "three wakeups served, have %d", len(lines))
	assert.Equal(t, []int{pid}, qmgrPIDs(t, inst), "one long-lived queue manager")
	requireNoQmgrTrouble(t, inst)
}

func TestLifecycle_ChrootAndMailOwner(t *testing.T) {
	sink := testbed.StartSink(t)
	inst := createInstance(t, testbed.Options{RelayPort: sink.Port})
	// The chroot column: master then passes -c. Debian's master.cf runs
	// qmgr like this.
	editFile(t, filepath.Join(inst.ConfigDir, "master.cf"), "n - n 300 1 qmgr", "n - y 300 1 qmgr")
	require.NoError(t, inst.Start())
	pid := waitOneQmgr(t, inst)

	// The process changes its root and user during start-up.
	var root string
	require.Eventually(t, func() bool {
		root, _ = os.Readlink(filepath.Join("/proc", strconv.Itoa(pid), "root"))
		return root == inst.QueueDir
	}, 10*time.Second, 20*time.Millisecond, "root directory of the queue manager: %s", root)
	postfix, err := user.Lookup("postfix")
	require.NoError(t, err)
	// The user changes after the root directory, so the root alone does
	// not mean that the user changed yet.
	uids := "\nUid:\t" + postfix.Uid + "\t" + postfix.Uid + "\t" + postfix.Uid + "\t" + postfix.Uid + "\n"
	assert.Eventually(t, func() bool {
		status, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
		return err == nil && strings.Contains(string(status), uids)
	}, 10*time.Second, 20*time.Millisecond, "user IDs (-u) of the queue manager, want %q", uids)

	require.NoError(t, inst.SubmitSMTP("sender@example.org", []string{"rcpt@example.net"}, "Subject: jail\n\nbody\n"))
	require.NoError(t, sink.WaitDelivered(1, 30*time.Second))
	require.NoError(t, inst.WaitQueueEmpty(20*time.Second))
	assert.Len(t, idsMatching(t, inst, removedLine), 1, "removed lines logged from inside the jail")
	requireNoQmgrTrouble(t, inst)
}

// kickIgnoringEPIPE sends a trigger with postkick(1) and accepts its death
// by SIGPIPE, which TestLifecycle_PostkickExitsZero covers.
func kickIgnoringEPIPE(inst *testbed.Instance, request string) error {
	err := inst.Kick(request)
	if err != nil && strings.Contains(err.Error(), "signal: broken pipe") {
		return nil
	}
	return err
}

func TestLifecycle_PostkickExitsZero(t *testing.T) {
	inst := startInstance(t, testbed.Options{})
	waitOneQmgr(t, inst)

	failures := 0
	const kicks = 20
	for range kicks {
		if err := inst.Kick("I"); err != nil {
			t.Logf("postkick: %v", err)
			failures++
		}
	}
	assert.Zero(t, failures, "postkick runs of %d that failed", kicks)
}
