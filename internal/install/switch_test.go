package install

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

// cOqmgr is the reference queue manager from Debian's postfix package.
const cOqmgr = "/usr/lib/postfix/sbin/oqmgr"

// removedBy returns the queue ids of the "removed" log lines that the
// process pid wrote with the tag postfix/qmgr.
func removedBy(t *testing.T, inst *testbed.Instance, pid int) []string {
	t.Helper()
	re := regexp.MustCompile(fmt.Sprintf(`postfix/qmgr\[%d\]: ([0-9A-Za-z]+): removed$`, pid))
	lines, err := inst.LogLines(fmt.Sprintf("postfix/qmgr[%d]:", pid))
	require.NoError(t, err)
	var ids []string
	for _, line := range lines {
		if m := re.FindStringSubmatch(line); m != nil {
			ids = append(ids, m[1])
		}
	}
	return ids
}

// runSwitch runs the installed switch command and requires success.
func runSwitch(t *testing.T, command, configDir, action string) string {
	t.Helper()
	out, err := exec.Command(command, "-c", configDir, action).CombinedOutput()
	require.NoError(t, err, "oqmgr-go-switch %s: %s", action, out)
	return string(out)
}

// submit sends n messages to remote recipients through the instance's smtpd.
func submit(t *testing.T, inst *testbed.Instance, label string, n int) {
	t.Helper()
	for i := range n {
		body := fmt.Sprintf("Subject: %s %d\n\nbody\n", label, i)
		require.NoError(t, inst.SubmitSMTP("sender@example.org", []string{fmt.Sprintf("%s%d@example.net", label, i)}, body))
	}
}

// waitDeferred waits until the deferred queue holds exactly n
// files and returns their queue ids.
func waitDeferred(t *testing.T, inst *testbed.Instance, n int) []string {
	t.Helper()
	var ids []string
	require.Eventually(t, func() bool {
		ids = queueIDs(t, inst.QueueDir, "deferred")
		return len(ids) == n
	}, 60*time.Second, 100*time.Millisecond, "%d files in deferred", n)
	return ids
}

// TestSwitch_RoundTripOnPrivateInstance installs our build into a private
// instance that runs the C oqmgr, then switches over and back. Mail queued
// on either side of each switch must be delivered by the queue manager that
// runs at the time, which logs under the tag postfix/qmgr.
func TestSwitch_RoundTripOnPrivateInstance(t *testing.T) {
	testbed.RequireEnvironment(t)
	bin := binary(t)
	inst := testbed.New(t, testbed.Options{
		QmgrBinary: cOqmgr,
		MainCF: map[string]string{
			"queue_run_delay":      "1s",
			"minimal_backoff_time": "1s",
			"maximal_backoff_time": "2s",
		},
	})
	require.NoError(t, inst.Start())
	masterCFPath := filepath.Join(inst.ConfigDir, "master.cf")
	original, err := os.ReadFile(masterCFPath)
	require.NoError(t, err)
	cExe := filepath.Join(inst.DaemonDir, "qmgr")
	goExe := filepath.Join(inst.DaemonDir, "oqmgr-go", "qmgr")
	prefix := filepath.Join(inst.Dir, "usr")
	switchCommand := filepath.Join(prefix, "sbin", "oqmgr-go-switch")

	// The C oqmgr defers mail while nothing listens on the relay port.
	submit(t, inst, "before-on", 3)
	beforeOn := waitDeferred(t, inst, 3)
	cPID := waitProcess(t, cExe, 10*time.Second)

	// Install the way `make install DAEMON_DIR=... PREFIX=...` does.
	out, status := runScript(t, "", "install.sh", "-b", bin, "-d", inst.DaemonDir, "-p", prefix)
	require.Equal(t, 0, status, "install.sh: %s", out)
	for _, path := range []string{goExe, filepath.Join(inst.DaemonDir, "oqmgr-go", "oqmgr"), switchCommand, filepath.Join(prefix, "share/man/man8/oqmgr-go.8")} {
		assert.FileExists(t, path)
	}

	// Switch on.
	out = runSwitch(t, switchCommand, inst.ConfigDir, "on")
	assert.Contains(t, out, "reloaded Postfix")
	entry, err := exec.Command("postconf", "-c", inst.ConfigDir, "-Fh", "qmgr/unix/command").Output()
	require.NoError(t, err)
	assert.Equal(t, "oqmgr-go/qmgr\n", string(entry), "qmgr command after switch on")
	afterOn, err := os.ReadFile(masterCFPath)
	require.NoError(t, err)

	// A second "on" changes nothing.
	out = runSwitch(t, switchCommand, inst.ConfigDir, "on")
	assert.Contains(t, out, "nothing to do")
	again, err := os.ReadFile(masterCFPath)
	require.NoError(t, err)
	assert.Equal(t, string(afterOn), string(again), "master.cf after a second switch on")

	// Mail arriving after the switch wakes the new queue manager.
	waitNoProcess(t, cExe, 30*time.Second)
	sink, err := testbed.StartSinkProcessOnPort(inst.RelayPort)
	require.NoError(t, err)
	submit(t, inst, "after-on", 2)
	goPID := waitProcess(t, goExe, 30*time.Second)
	argv := commandLine(t, goPID)
	assert.Equal(t, "oqmgr-go/qmgr", argv[0], "argv[0] of our process")
	assert.NotContains(t, argv, "-n", "master passes no service name when the base name is qmgr")

	require.NoError(t, sink.WaitDelivered(5, 60*time.Second))
	require.NoError(t, inst.WaitQueueEmpty(30*time.Second))
	removedByGo := removedBy(t, inst, goPID)
	assert.Len(t, removedByGo, 5, "messages removed by postfix/qmgr[%d], our process", goPID)
	for _, id := range beforeOn {
		assert.Contains(t, removedByGo, id, "message queued before the switch on")
	}
	cActive, err := inst.LogLines(fmt.Sprintf("postfix/qmgr[%d]: ", cPID))
	require.NoError(t, err)
	// Retries under queue_run_delay=1s can add more attempts than messages.
	assert.GreaterOrEqual(t, len(cActive), 3, "log lines of the C oqmgr before the switch: %v", cActive)
	for _, line := range cActive {
		assert.Contains(t, line, "(queue active)", "log line of the C oqmgr before the switch")
	}
	require.NoError(t, sink.Stop())

	// Our queue manager defers mail while the relay is down again.
	submit(t, inst, "before-off", 3)
	beforeOff := waitDeferred(t, inst, 3)

	// Switch off: master.cf comes back byte for byte.
	out = runSwitch(t, switchCommand, inst.ConfigDir, "off")
	assert.Contains(t, out, "reloaded Postfix")
	restored, err := os.ReadFile(masterCFPath)
	require.NoError(t, err)
	assert.Equal(t, string(original), string(restored), "master.cf after switch off")
	out = runSwitch(t, switchCommand, inst.ConfigDir, "off")
	assert.Contains(t, out, "nothing to do")

	waitNoProcess(t, goExe, 30*time.Second)
	sink, err = testbed.StartSinkProcessOnPort(inst.RelayPort)
	require.NoError(t, err)
	t.Cleanup(func() { _ = sink.Stop() })
	submit(t, inst, "after-off", 2)
	cPID = waitProcess(t, cExe, 30*time.Second)
	require.NoError(t, sink.WaitDelivered(5, 60*time.Second))
	require.NoError(t, inst.WaitQueueEmpty(30*time.Second))
	removedByC := removedBy(t, inst, cPID)
	assert.Len(t, removedByC, 5, "messages removed by postfix/qmgr[%d], the C oqmgr", cPID)
	for _, id := range beforeOff {
		assert.Contains(t, removedByC, id, "message queued before the switch off")
	}

	// Uninstall removes every file, and master.cf stays as it was.
	out, status = runScript(t, "", "install.sh", "-u", "-d", inst.DaemonDir, "-p", prefix)
	require.Equal(t, 0, status, "install.sh -u: %s", out)
	for _, path := range []string{filepath.Join(inst.DaemonDir, "oqmgr-go"), switchCommand, filepath.Join(prefix, "share/man/man8/oqmgr-go.8")} {
		assert.NoFileExists(t, path)
		assert.NoDirExists(t, path)
	}
	final, err := os.ReadFile(masterCFPath)
	require.NoError(t, err)
	assert.Equal(t, string(original), string(final), "master.cf after uninstall")
	corrupt, err := inst.QueueCount("corrupt")
	require.NoError(t, err)
	assert.Zero(t, corrupt, "files in corrupt")
}

// TestUninstall_RejectsRunningBinary checks that install.sh -u keeps the
// binary while a process runs it.
func TestUninstall_RejectsRunningBinary(t *testing.T) {
	testbed.RequireEnvironment(t)
	bin := binary(t)
	inst := testbed.New(t, testbed.Options{QmgrBinary: cOqmgr})
	require.NoError(t, inst.Start())
	prefix := filepath.Join(inst.Dir, "usr")
	out, status := runScript(t, "", "install.sh", "-b", bin, "-d", inst.DaemonDir, "-p", prefix)
	require.Equal(t, 0, status, "install.sh: %s", out)
	out, status = runScript(t, "", "oqmgr-go-switch", "-c", inst.ConfigDir, "on")
	require.Equal(t, 0, status, "switch on: %s", out)
	require.NoError(t, inst.Kick("I"))
	goExe := filepath.Join(inst.DaemonDir, "oqmgr-go", "qmgr")
	pid := waitProcess(t, goExe, 30*time.Second)

	out, status = runScript(t, "", "install.sh", "-u", "-d", inst.DaemonDir, "-p", prefix)
	assert.Equal(t, 1, status, "install.sh -u exit status: %s", out)
	assert.Contains(t, out, fmt.Sprintf("process %d runs %s", pid, goExe))
	assert.FileExists(t, goExe)

	out, status = runScript(t, "", "oqmgr-go-switch", "-c", inst.ConfigDir, "off")
	require.Equal(t, 0, status, "switch off: %s", out)
	waitNoProcess(t, goExe, 30*time.Second)
	out, status = runScript(t, "", "install.sh", "-u", "-d", inst.DaemonDir, "-p", prefix)
	assert.Equal(t, 0, status, "install.sh -u after switch off: %s", out)
	assert.NoFileExists(t, goExe)
}

// debianMasterCFLines are the lines of Debian's master.cf around qmgr,
// with its column layout, which postconf does not reproduce.
const debianMasterCFLines = `pickup    unix  n       -       y       60      1       pickup
cleanup   unix  n       -       y       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
#qmgr     unix  n       -       n       300     1       oqmgr
tlsmgr    unix  -       -       y       1000?   1       tlsmgr
`

// fakeDaemonDir returns a daemon directory that holds oqmgr-go's binaries,
// which these tests never run.
func fakeDaemonDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(dir, "oqmgr-go"), 0o755))
	for _, name := range []string{"qmgr", "oqmgr"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, "oqmgr-go", name), []byte("#!/bin/sh\n"), 0o755))
	}
	return dir
}

func TestSwitch_StoppedInstance(t *testing.T) {
	tests := []struct {
		name       string
		masterCF   string
		edit       []string // postconf arguments run between on and off
		wantOn     string   // qmgr entry after on
		wantOff    string   // qmgr entry after off
		wantSameCF bool     // master.cf restored byte for byte
	}{
		{
			name:       "debian layout restored byte for byte",
			masterCF:   debianMasterCFLines,
			wantOn:     "qmgr       unix  n       -       n       300     1       oqmgr-go/qmgr",
			wantOff:    "qmgr       unix  n       -       n       300     1       qmgr",
			wantSameCF: true,
		},
		{
			name:     "oqmgr command keeps its name and arguments",
			masterCF: "qmgr unix n - n 300 1 oqmgr -o { qmgr_message_active_limit = 200 }\n",
			wantOn:   "qmgr       unix  n       -       n       300     1       oqmgr-go/oqmgr -o qmgr_message_active_limit=200",
			wantOff:  "qmgr       unix  n       -       n       300     1       oqmgr -o qmgr_message_active_limit=200",
		},
		{
			name:     "fifo service",
			masterCF: "qmgr fifo n - n 300 1 qmgr\n",
			wantOn:   "qmgr       fifo  n       -       n       300     1       oqmgr-go/qmgr",
			wantOff:  "qmgr       fifo  n       -       n       300     1       qmgr",
		},
		{
			name:     "later edits survive off",
			masterCF: debianMasterCFLines,
			edit:     []string{"-F", "qmgr/unix/wakeup=120"},
			wantOn:   "qmgr       unix  n       -       n       300     1       oqmgr-go/qmgr",
			wantOff:  "qmgr       unix  n       -       n       120     1       qmgr",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeConfig(t, fakeDaemonDir(t), tc.masterCF)
			masterCF := func() string {
				data, err := os.ReadFile(filepath.Join(dir, "master.cf"))
				require.NoError(t, err)
				return string(data)
			}
			qmgrEntry := func() string {
				out, err := exec.Command("postconf", "-c", dir, "-M", "qmgr").Output()
				require.NoError(t, err)
				return strings.TrimSpace(string(out))
			}

			before := qmgrEntry()
			out, status := runScript(t, "", "oqmgr-go-switch", "-c", dir, "on")
			require.Equal(t, 0, status, "on: %s", out)
			assert.Contains(t, out, "is not running; the change takes effect when it starts")
			assert.Equal(t, tc.wantOn, qmgrEntry(), "entry after on")
			saved, err := os.ReadFile(filepath.Join(dir, "oqmgr-go-switch", "qmgr-entry.before-on"))
			require.NoError(t, err)
			assert.Equal(t, before+"\n", string(saved), "entry saved by on")

			if tc.edit != nil {
				postconf := append([]string{"-c", dir}, tc.edit...)
				require.NoError(t, exec.Command("postconf", postconf...).Run())
			}
			out, status = runScript(t, "", "oqmgr-go-switch", "-c", dir, "off")
			require.Equal(t, 0, status, "off: %s", out)
			assert.Equal(t, tc.wantOff, qmgrEntry(), "entry after off")
			if tc.wantSameCF {
				assert.Equal(t, tc.masterCF, masterCF(), "master.cf after off")
			}
		})
	}
}

func TestSwitch_Rejects(t *testing.T) {
	// oldPostfix contains a postconf that reports an old Postfix version
	// and runs the real postconf for everything else.
	oldPostfix := t.TempDir()
	fake := "#!/bin/sh\ncase \"$*\" in *mail_version*) echo 3.6.4; exit 0;; esac\nexec /usr/sbin/postconf \"$@\"\n"
	require.NoError(t, os.WriteFile(filepath.Join(oldPostfix, "postconf"), []byte(fake), 0o755))

	tests := []struct {
		name      string
		masterCF  string
		daemonDir string // "" means a directory with oqmgr-go's binaries
		path      string
		action    string
		want      string
	}{
		{name: "no qmgr service", masterCF: "pickup unix n - n 60 1 pickup\n", action: "on", want: "has no qmgr service"},
		{name: "no qmgr service for off", masterCF: "pickup unix n - n 60 1 pickup\n", action: "off", want: "has no qmgr service"},
		{name: "two qmgr services", masterCF: "qmgr unix n - n 300 1 qmgr\nqmgr fifo n - n 300 1 qmgr\n", action: "on", want: "more than one qmgr service"},
		{name: "postfix older than 3.7", masterCF: "qmgr unix n - n 300 1 qmgr\n", path: oldPostfix, action: "on", want: "Postfix 3.6.4 is older than 3.7"},
		{name: "unknown program", masterCF: "qmgr unix n - n 300 1 nqmgr\n", action: "on", want: `runs "nqmgr", not qmgr or oqmgr`},
		{name: "binary not installed", masterCF: "qmgr unix n - n 300 1 qmgr\n", daemonDir: "/nonexistent", action: "on", want: "/nonexistent/oqmgr-go/qmgr not found or not executable"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			daemonDir := tc.daemonDir
			if daemonDir == "" {
				daemonDir = fakeDaemonDir(t)
			}
			dir := writeConfig(t, daemonDir, tc.masterCF)

			out, status := runScript(t, tc.path, "oqmgr-go-switch", "-c", dir, tc.action)
			assert.Equal(t, 1, status, "exit status; output: %s", out)
			assert.Contains(t, out, tc.want)
			data, err := os.ReadFile(filepath.Join(dir, "master.cf"))
			require.NoError(t, err)
			assert.Equal(t, tc.masterCF, string(data), "master.cf is unchanged")
			entries, _ := os.ReadDir(filepath.Join(dir, "oqmgr-go-switch"))
			assert.Empty(t, entries, "no saved copies")
		})
	}
}

func TestSwitch_OffWorksOnOldPostfix(t *testing.T) {
	oldPostfix := t.TempDir()
	fake := "#!/bin/sh\ncase \"$*\" in *mail_version*) echo 3.6.4; exit 0;; esac\nexec /usr/sbin/postconf \"$@\"\n"
	require.NoError(t, os.WriteFile(filepath.Join(oldPostfix, "postconf"), []byte(fake), 0o755))
	dir := writeConfig(t, fakeDaemonDir(t), "qmgr unix n - n 300 1 oqmgr-go/qmgr\n")

	out, status := runScript(t, oldPostfix, "oqmgr-go-switch", "-c", dir, "off")
	require.Equal(t, 0, status, "off: %s", out)
	assert.Contains(t, out, "older than 3.7; switching back")
	cmd, err := exec.Command("postconf", "-c", dir, "-Fh", "qmgr/unix/command").Output()
	require.NoError(t, err)
	assert.Equal(t, "qmgr\n", string(cmd), "qmgr command after off")
}

// drainWithKicks waits until the queue is empty and meanwhile sends the
// queue manager an incoming-scan request every 2 s. A queue manager that
// starts while a delivery agent still holds a file in active moves the file
// to incoming with a time 60 s ahead. It picks the file up on a later
// incoming scan, which master.cf's wakeup column or new mail triggers on a
// live system and these requests trigger here.
func drainWithKicks(t *testing.T, inst *testbed.Instance, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if err := inst.WaitQueueEmpty(2 * time.Second); err == nil {
			return
		} else if time.Now().After(deadline) {
			require.NoError(t, err)
		}
		// Right after a reload the qmgr socket may have no reader yet, so
		// a failed kick is retried on the next round.
		if err := inst.Kick("I"); err != nil {
			t.Logf("kick: %v", err)
		}
	}
}

// TestSwitch_KeepsMailInActive switches in both directions while deliveries
// are in progress, so that queue files sit in active when the old queue
// manager exits, and checks that each message reaches the sink once.
func TestSwitch_KeepsMailInActive(t *testing.T) {
	testbed.RequireEnvironment(t)
	bin := binary(t)
	// The sink waits 2 s before it replies to DATA, without pipelining.
	sink := testbed.StartSink(t, "-p", "-w", "2")
	inst := testbed.New(t, testbed.Options{QmgrBinary: cOqmgr, RelayPort: sink.Port})
	require.NoError(t, inst.Start())
	prefix := filepath.Join(inst.Dir, "usr")
	out, status := runScript(t, "", "install.sh", "-b", bin, "-d", inst.DaemonDir, "-p", prefix)
	require.Equal(t, 0, status, "install.sh: %s", out)
	switchCommand := filepath.Join(prefix, "sbin", "oqmgr-go-switch")

	const perSwitch = 4
	total := 0
	for _, action := range []string{"on", "off"} {
		submit(t, inst, "active-"+action, perSwitch)
		total += perSwitch
		require.Eventually(t, func() bool {
			n, err := inst.QueueCount("active")
			return err == nil && n == perSwitch
		}, 30*time.Second, 20*time.Millisecond, "%d files in active before switch %s", perSwitch, action)
		runSwitch(t, switchCommand, inst.ConfigDir, action)
		drainWithKicks(t, inst, 120*time.Second)
		assert.Equal(t, total, sink.Delivered(), "messages at the sink after switch %s", action)
	}

	messages, err := sink.Messages()
	require.NoError(t, err)
	seen := map[string]int{}
	for _, m := range messages {
		for _, line := range strings.Split(m, "\n") {
			if strings.HasPrefix(line, "Subject: ") {
				seen[strings.TrimSpace(line)]++
			}
		}
	}
	for subject, n := range seen {
		assert.Equal(t, 1, n, "copies of %q at the sink", subject)
	}
	assert.Len(t, seen, total, "distinct messages at the sink")
}
