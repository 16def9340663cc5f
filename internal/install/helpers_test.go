package install

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"oqmgr-go/internal/testbed"
)

// runScript runs one of the scripts in this directory with extra entries
// in front of PATH, and returns its combined output and exit status.
func runScript(t *testing.T, pathPrefix, script string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command("./"+script, args...)
	if pathPrefix != "" {
		cmd.Env = append(os.Environ(), "PATH="+pathPrefix+":"+os.Getenv("PATH"))
	}
	out, err := cmd.CombinedOutput()
	if exitErr, ok := err.(*exec.ExitError); ok {
		return string(out), exitErr.ExitCode()
	}
	require.NoError(t, err, "run %s %v", script, args)
	return string(out), 0
}

// processesRunning returns the pids of the processes whose executable is
// exe, read from /proc.
func processesRunning(exe string) []int {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	var pids []int
	for _, dir := range dirs {
		if target, err := os.Readlink(dir + "/exe"); err == nil && target == exe {
			pid, _ := strconv.Atoi(filepath.Base(dir))
			pids = append(pids, pid)
		}
	}
	return pids
}

// waitProcess waits until exactly one process runs exe and returns its pid.
func waitProcess(t *testing.T, exe string, timeout time.Duration) int {
	t.Helper()
	var pids []int
	require.Eventually(t, func() bool {
		pids = processesRunning(exe)
		return len(pids) == 1
	}, timeout, 50*time.Millisecond, "one process runs %s (found %v)", exe, pids)
	return pids[0]
}

// waitNoProcess waits until no process runs exe.
func waitNoProcess(t *testing.T, exe string, timeout time.Duration) {
	t.Helper()
	require.Eventually(t, func() bool {
		return len(processesRunning(exe)) == 0
	}, timeout, 50*time.Millisecond, "no process runs %s", exe)
}

// commandLine returns the argument vector of a process.
func commandLine(t *testing.T, pid int) []string {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	require.NoError(t, err)
	return strings.Split(strings.TrimRight(string(data), "\x00"), "\x00")
}

// queueIDs returns the names of the queue files in one queue directory of
// queueDir, hashed subdirectories included.
func queueIDs(t *testing.T, queueDir, queue string) []string {
	t.Helper()
	var ids []string
	err := filepath.WalkDir(filepath.Join(queueDir, queue), func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return nil // files move while Postfix runs
		}
		if d.Type().IsRegular() {
			ids = append(ids, d.Name())
		}
		return nil
	})
	require.NoError(t, err)
	return ids
}

// writeConfig writes a configuration directory with a main.cf whose
// daemon_directory is daemonDir and the given master.cf text.
func writeConfig(t *testing.T, daemonDir, masterCF string) string {
	t.Helper()
	dir := t.TempDir()
	mainCF := "compatibility_level = 3.6\ndaemon_directory = " + daemonDir + "\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "main.cf"), []byte(mainCF), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "master.cf"), []byte(masterCF), 0o644))
	return dir
}

// binary returns our queue manager for the install tests.
func binary(t *testing.T) string { return testbed.OurQmgr(t) }
