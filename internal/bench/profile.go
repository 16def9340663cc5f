package bench

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// perfCommand is the Linux profiler that samples the queue manager. Go
// binaries keep their symbol table, so perf(1) names Go functions without
// help from the program, which this package must not change.
const perfCommand = "perf"

// perfFrequency is the sampling rate in Hz: about 1,000 samples per second
// of queue-manager CPU time.
const perfFrequency = "997"

// startPerf starts `perf record` with call graphs on pid, writing to path.
// The returned function stops it and waits until the file is written.
func startPerf(pid int, path string) (func(), error) {
	if _, err := exec.LookPath(perfCommand); err != nil {
		return nil, fmt.Errorf("profile: %w (install the Debian package linux-perf)", err)
	}
	cmd := exec.Command(perfCommand, "record", "-q", "-g", "-F", perfFrequency, "-p", fmt.Sprint(pid), "-o", path)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("profile: start perf record: %w", err)
	}
	return func() {
		// perf record writes its file when interrupted.
		_ = cmd.Process.Signal(syscall.SIGINT)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}, nil
}

// perfReport writes the flat profile of a perf.data file, hottest symbols
// first, to path.
func perfReport(data, path string) error {
	out, err := exec.Command(perfCommand, "report", "-i", data, "--stdio", "--no-children",
		"--sort", "symbol", "-g", "none", "--percent-limit", "0.5").CombinedOutput()
	if err != nil {
		return fmt.Errorf("perf report -i %s: %w: %s", data, err, bytes.TrimSpace(out))
	}
	var kept []string
	for line := range strings.Lines(string(out)) {
		if t := strings.TrimSpace(line); t != "" && !strings.HasPrefix(t, "#") {
			kept = append(kept, strings.TrimRight(line, "\n"))
		}
	}
	return os.WriteFile(path, []byte(strings.Join(kept, "\n")+"\n"), 0o644)
}
