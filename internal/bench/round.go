package bench

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"oqmgr-go/internal/testbed"
)

// Poll intervals while a round runs. The end of a drain is seen at most
// pollInterval plus postlogd's delay after the last removal.
const (
	pollInterval     = 10 * time.Millisecond
	progressInterval = 500 * time.Millisecond
	startTimeout     = 10 * time.Second
	// stallTimeout ends a round whose progress has not changed for this
	// long, so that a stuck contender does not hold the run until Timeout.
	stallTimeout = time.Minute
	// logSettle bounds the wait for delivery-agent log lines after the
	// queue is empty.
	logSettle = 2 * time.Second
)

// Measurement is one contender's result in one round of one workload.
type Measurement struct {
	Round int `json:"round"`
	// Seconds runs from the start of the queue manager process to the
	// moment the last message was removed, or, for the active workload, to
	// the moment the active queue held qmgr_message_active_limit files.
	Seconds           float64 `json:"seconds"`
	MessagesPerSecond float64 `json:"messages_per_second"`
	// CPUSeconds is the queue manager's user plus system time at the end.
	CPUSeconds float64 `json:"cpu_seconds"`
	CPUPer1000 float64 `json:"cpu_seconds_per_1000_messages"`
	// OtherCPUSeconds is the CPU time of the instance's other processes
	// (master, delivery agents, trivial-rewrite, postlogd, ...) from master's
	// start to the end of the measurement. Compared with Seconds it shows
	// whether the machine's cores or the queue manager limit the round.
	OtherCPUSeconds float64 `json:"other_daemons_cpu_seconds"`
	// QmgrWaitSeconds is how long the queue manager's threads were ready to
	// run but waited for a CPU. Much of it means the cores were busy, so
	// the other processes of the machine slowed the queue manager down.
	QmgrWaitSeconds float64 `json:"qmgr_run_queue_wait_seconds,omitempty"`
	// SinkCPUSeconds is the CPU time of the workload's smtp-sink processes
	// while the queue manager was measured.
	SinkCPUSeconds float64 `json:"sink_cpu_seconds,omitempty"`
	// MachineBusyPercent is the CPU time of every process and of the
	// kernel on the whole machine while the queue manager was measured, in
	// percent of the elapsed time, where n cores offer n*100%. Its gap to
	// n*100% is the time the cores stood idle.
	MachineBusyPercent float64 `json:"machine_busy_percent,omitempty"`
	// BenchBusyPercent is the part of MachineBusyPercent that this
	// benchmark spent itself, polling the maillog, the queue and /proc.
	BenchBusyPercent float64 `json:"bench_busy_percent,omitempty"`
	PeakRSSBytes     int64   `json:"peak_rss_bytes"`
	Delivered        int     `json:"delivered"` // status=sent log lines
	Error            string  `json:"error,omitempty"`
}

// roundSpec is the input of runRound besides the instance.
type roundSpec struct {
	w        workload
	archive  string
	sinkPids []int // the smtp-sink processes, whose CPU time is measured too
	timeout  time.Duration
	profile  string // perf.data path, or "" for no profile
	progress func(line string)
}

// logCounts are the maillog lines of one round that the benchmark counts.
type logCounts struct {
	// activated counts the queue manager's "(queue active)" lines, one per
	// file it read into the active queue.
	activated, removed, sent, deferred, bounced int
	partial                                     []byte // a line not yet complete
}

func (c *logCounts) add(data []byte) {
	data = append(c.partial, data...)
	for {
		nl := bytes.IndexByte(data, '\n')
		if nl < 0 {
			break
		}
		line := data[:nl]
		data = data[nl+1:]
		switch {
		case bytes.Contains(line, []byte("/qmgr[")) && bytes.HasSuffix(line, []byte(": removed")):
			c.removed++
		case bytes.Contains(line, []byte("/qmgr[")) && bytes.HasSuffix(line, []byte(" (queue active)")):
			c.activated++
		case bytes.Contains(line, []byte(", status=sent ")):
			c.sent++
		case bytes.Contains(line, []byte(", status=deferred ")):
			c.deferred++
		case bytes.Contains(line, []byte(", status=bounced ")):
			c.bounced++
		}
	}
	c.partial = append([]byte(nil), data...)
}

// runRound restores the workload's queue files into a stopped instance,
// starts it and measures its queue manager until the workload is done,
// then stops the instance again.
func runRound(inst *testbed.Instance, spec roundSpec) (m Measurement) {
	fail := func(err error) Measurement {
		m.Error = err.Error()
		return m
	}
	defer func() {
		if err := inst.Stop(); err != nil && m.Error == "" {
			m.Error = err.Error()
		}
	}()

	if err := restore(inst.QueueDir, spec.archive); err != nil {
		return fail(fmt.Errorf("restore queue: %w", err))
	}
	log, err := openLogAtEnd(inst.MaillogPath)
	if err != nil {
		return fail(err)
	}
	defer log.close()
	if err := inst.Start(); err != nil {
		return fail(err)
	}

	exe, err := filepath.EvalSymlinks(filepath.Join(inst.DaemonDir, "qmgr"))
	if err != nil {
		return fail(err)
	}
	pid, sample, err := waitProcess(exe)
	if err != nil {
		return fail(err)
	}
	// The process start time is in ticks since boot; map it to the wall clock.
	started := time.Now().Add(-(sinceBoot() - sample.Started))
	// The machine and the sinks are measured from here, a poll interval
	// or so after the queue manager started.
	machineStart, err := readMachine()
	if err != nil {
		return fail(err)
	}
	sinkStart := processesCPU(spec.sinkPids)
	benchStart := selfCPU()

	if spec.profile != "" {
		stop, err := startPerf(pid, spec.profile)
		if err != nil {
			return fail(err)
		}
		defer stop()
	}

	var counts logCounts
	var end time.Time
	nextProgress := time.Now()
	deadline := time.Now().Add(spec.timeout)
	lastProgress, lastChange := "", time.Now()
	for end.IsZero() {
		time.Sleep(pollInterval)
		now := time.Now()
		if err := log.readNew(&counts); err != nil {
			return fail(err)
		}
		s, err := readProc(pid)
		if err != nil {
			return fail(fmt.Errorf("queue manager pid %d exited while measured: %w", pid, err))
		}
		sample = s

		done, progress, err := roundDone(inst, spec.w, counts)
		if err != nil {
			return fail(err)
		}
		if done {
			end = now
			break
		}
		if progress != lastProgress {
			lastProgress, lastChange = progress, now
		}
		if now.After(deadline) || now.Sub(lastChange) > stallTimeout {
			queued, _ := inst.QueueCounts()
			return fail(fmt.Errorf("not done after %.0fs, no progress for %.0fs: %s, queue files %v",
				now.Sub(started).Seconds(), now.Sub(lastChange).Seconds(), progress, queued))
		}
		if spec.progress != nil && now.After(nextProgress) {
			spec.progress(fmt.Sprintf("%s, %.1fs", progress, now.Sub(started).Seconds()))
			nextProgress = now.Add(progressInterval)
		}
	}

	// The sample taken with the last poll is at most pollInterval old; a
	// fresh one also covers the work done since.
	if s, err := readProc(pid); err == nil {
		sample = s
	}
	m.OtherCPUSeconds = (instanceCPU(filepath.Dir(exe)) - sample.CPU).Seconds()
	m.SinkCPUSeconds = (processesCPU(spec.sinkPids) - sinkStart).Seconds()
	if machineEnd, err := readMachine(); err == nil {
		busy := machineEnd.Busy - machineStart.Busy
		total := machineEnd.Total - machineStart.Total
		m.MachineBusyPercent = 100 * float64(runtime.NumCPU()) * ratio(busy.Seconds(), total.Seconds())
		elapsed := total.Seconds() / float64(runtime.NumCPU())
		m.BenchBusyPercent = 100 * ratio((selfCPU()-benchStart).Seconds(), elapsed)
	}
	if wait, err := runQueueWait(pid); err == nil {
		m.QmgrWaitSeconds = wait.Seconds()
	}
	m.Seconds = end.Sub(started).Seconds()
	done := spec.w.messages
	if spec.w.activeLimit > 0 {
		done = spec.w.activeLimit
	}
	m.MessagesPerSecond = float64(done) / m.Seconds
	m.CPUSeconds = sample.CPU.Seconds()
	m.CPUPer1000 = m.CPUSeconds * 1000 / float64(done)
	m.PeakRSSBytes = sample.PeakRSS

	if spec.w.activeLimit > 0 {
		m.Delivered = counts.sent
		return m
	}
	want := spec.w.messages * spec.w.recipients
	settle := time.Now().Add(logSettle)
	for counts.sent < want && time.Now().Before(settle) {
		time.Sleep(pollInterval)
		if err := log.readNew(&counts); err != nil {
			return fail(err)
		}
	}
	m.Delivered = counts.sent
	if counts.sent != want {
		return fail(fmt.Errorf("delivered %d of %d recipients (%d deferred, %d bounced)", counts.sent, want, counts.deferred, counts.bounced))
	}
	return m
}

// roundDone reports whether the workload is finished: every message
// removed and the queue empty, or, for the active workload, the active
// queue holding its limit. It also returns the progress so far as text.
func roundDone(inst *testbed.Instance, w workload, counts logCounts) (bool, string, error) {
	if w.activeLimit > 0 {
		// Counting a directory of thousands of files every poll would
		// take a fifth of a core from the contenders, so the directory is
		// counted only once the log shows enough files read.
		if counts.activated < w.activeLimit {
			return false, fmt.Sprintf("%d/%d read into active", counts.activated, w.activeLimit), nil
		}
		n, err := countEntries(filepath.Join(inst.QueueDir, "active"))
		return n >= w.activeLimit, fmt.Sprintf("%d/%d active", n, w.activeLimit), err
	}
	progress := fmt.Sprintf("%d/%d removed", counts.removed, w.messages)
	if counts.removed < w.messages {
		return false, progress, nil
	}
	// Removal lines alone could count a message twice; the queue decides.
	for _, q := range []string{"incoming", "active", "deferred"} {
		n, err := inst.QueueCount(q)
		if err != nil || n > 0 {
			return false, progress, err
		}
	}
	return true, progress, nil
}

// countEntries counts the names in a flat directory.
func countEntries(dir string) (int, error) {
	f, err := os.Open(dir)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	return len(names), err
}

// waitProcess waits until master has started the process running exe and
// returns its pid and a first sample.
func waitProcess(exe string) (int, procSample, error) {
	deadline := time.Now().Add(startTimeout)
	for {
		if pid := findProcess(exe); pid > 0 {
			if s, err := readProc(pid); err == nil {
				return pid, s, nil
			}
		}
		if time.Now().After(deadline) {
			return 0, procSample{}, fmt.Errorf("master did not start %s within %s", exe, startTimeout)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// logTail reads what postlogd appends to a maillog.
type logTail struct {
	path   string
	f      *os.File // nil until the file exists
	offset int64    // read position, kept while the file is missing
	buf    []byte
}

// openLogAtEnd starts reading the maillog at its current end. A missing
// file is opened once postlogd creates it, and read from its beginning.
func openLogAtEnd(path string) (*logTail, error) {
	t := &logTail{path: path, buf: make([]byte, 256*1024)}
	info, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return t, nil
	case err != nil:
		return nil, fmt.Errorf("open maillog: %w", err)
	}
	t.offset = info.Size()
	return t, nil
}

// readNew feeds the bytes appended since the last call to counts.
func (t *logTail) readNew(counts *logCounts) error {
	if t.f == nil {
		f, err := os.Open(t.path)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("open maillog: %w", err)
		}
		t.f = f
	}
	for {
		n, err := t.f.ReadAt(t.buf, t.offset)
		t.offset += int64(n)
		counts.add(t.buf[:n])
		if errors.Is(err, io.EOF) || n == 0 {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read maillog: %w", err)
		}
	}
}

func (t *logTail) close() {
	if t.f != nil {
		t.f.Close()
	}
}
