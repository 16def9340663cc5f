package bench

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// clockTicksPerSecond is USER_HZ, the unit of the CPU times and the start
// time in /proc/PID/stat.
//
// NOTE: Go cannot call sysconf(_SC_CLK_TCK) without cgo. USER_HZ is 100 on
// every Linux architecture that Debian ships, so the value is fixed here.
const clockTicksPerSecond = 100

// procSample is one reading of a process from /proc.
type procSample struct {
	CPU time.Duration // user plus system time so far
	// ChildCPU is the user plus system time of children that exited and
	// were reaped by this process.
	ChildCPU time.Duration
	Started  time.Duration // start time, as time since boot
	PeakRSS  int64         // VmHWM in bytes
	RSS      int64         // VmRSS in bytes
}

// readProc reads the CPU times and start time of pid from /proc/PID/stat
// and its peak and current resident set size from /proc/PID/status.
func readProc(pid int) (procSample, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procSample{}, err
	}
	s, err := parseStat(stat)
	if err != nil {
		return procSample{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return procSample{}, err
	}
	if s.PeakRSS, err = statusBytes(status, "VmHWM:"); err != nil {
		return procSample{}, fmt.Errorf("/proc/%d/status: %w", pid, err)
	}
	if s.RSS, err = statusBytes(status, "VmRSS:"); err != nil {
		return procSample{}, fmt.Errorf("/proc/%d/status: %w", pid, err)
	}
	return s, nil
}

// parseStat extracts utime, stime, cutime, cstime and starttime from the text of
// /proc/PID/stat (proc(5)). The command name in parentheses may contain
// spaces and parentheses itself, so fields are counted from the last ')'.
func parseStat(data []byte) (procSample, error) {
	end := bytes.LastIndexByte(data, ')')
	if end < 0 {
		return procSample{}, errors.New("no ')' after the command name")
	}
	// fields[0] is field 3 (state), so field n is fields[n-3].
	fields := strings.Fields(string(data[end+1:]))
	const utime, stime, cutime, cstime, starttime = 14, 15, 16, 17, 22
	if len(fields) <= starttime-3 {
		return procSample{}, fmt.Errorf("%d fields after the command name, want at least %d", len(fields), starttime-2)
	}
	var ticks [5]uint64
	for i, field := range []int{utime, stime, cutime, cstime, starttime} {
		v, err := strconv.ParseUint(fields[field-3], 10, 64)
		if err != nil {
			return procSample{}, fmt.Errorf("field %d: %w", field, err)
		}
		ticks[i] = v
	}
	return procSample{
		CPU:      ticksToDuration(ticks[0] + ticks[1]),
		ChildCPU: ticksToDuration(ticks[2] + ticks[3]),
		Started:  ticksToDuration(ticks[4]),
	}, nil
}

func ticksToDuration(ticks uint64) time.Duration {
	return time.Duration(ticks) * (time.Second / clockTicksPerSecond)
}

// statusBytes returns a "kB" line of /proc/PID/status, such as
// "VmHWM:    9400 kB", in bytes.
func statusBytes(status []byte, key string) (int64, error) {
	for line := range strings.Lines(string(status)) {
		rest, ok := strings.CutPrefix(line, key)
		if !ok {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) != 2 || fields[1] != "kB" {
			return 0, fmt.Errorf("invalid %s line %q", key, strings.TrimSpace(line))
		}
		kb, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("invalid %s line %q: %w", key, strings.TrimSpace(line), err)
		}
		return kb * 1024, nil
	}
	return 0, fmt.Errorf("no %s line", key)
}

// runQueueWait returns how long the threads of pid that still exist have
// been ready to run while waiting for a CPU: the sum of the second fields
// of /proc/PID/task/*/schedstat, in nanoseconds (the kernel's
// Documentation/scheduler/sched-stats.rst).
func runQueueWait(pid int) (time.Duration, error) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0, err
	}
	var total time.Duration
	for _, task := range tasks {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, task.Name()))
		if err != nil {
			// The thread exited meanwhile.
			continue
		}
		wait, err := parseSchedstat(data)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/task/%s/schedstat: %w", pid, task.Name(), err)
		}
		total += wait
	}
	return total, nil
}

// parseSchedstat returns the run-queue wait of one schedstat line: the
// time on the CPU, the time waiting on a run queue, and the number of time
// slices, all since the thread started.
func parseSchedstat(data []byte) (time.Duration, error) {
	fields := strings.Fields(string(data))
	if len(fields) != 3 {
		return 0, fmt.Errorf("%d fields, want 3", len(fields))
	}
	ns, err := strconv.ParseInt(fields[1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("run queue wait: %w", err)
	}
	return time.Duration(ns), nil
}

// sinceBoot returns the time since boot on the clock that /proc/PID/stat
// start times use (CLOCK_BOOTTIME since Linux 5.3).
func sinceBoot() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

// findProcess returns the pid of the one process whose executable is exe,
// or 0 when none runs. A process being replaced by a new one can make two
// match for a moment; the younger one (highest start time) wins.
func findProcess(exe string) int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	best, bestStart := 0, time.Duration(-1)
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		link, err := os.Readlink("/proc/" + e.Name() + "/exe")
		if err != nil || link != exe {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s, err := parseStat(stat)
		if err != nil {
			continue
		}
		if s.Started > bestStart {
			best, bestStart = pid, s.Started
		}
	}
	return best
}

// instanceCPU returns the CPU time used so far by the processes of one
// Postfix instance: every process whose executable lies in daemonDir, plus
// the children that master has reaped, such as delivery agents that
// reached max_use.
func instanceCPU(daemonDir string) time.Duration {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	var total time.Duration
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		link, err := os.Readlink("/proc/" + e.Name() + "/exe")
		if err != nil || !strings.HasPrefix(link, daemonDir+"/") {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s, err := parseStat(stat)
		if err != nil {
			continue
		}
		total += s.CPU
		if link == daemonDir+"/master" {
			total += s.ChildCPU
		}
	}
	return total
}

// machineSample is the CPU time of all cores of the machine so far, from
// the "cpu" line of /proc/stat (proc(5)).
type machineSample struct {
	Busy  time.Duration // user, nice, system, irq, softirq and steal
	Total time.Duration // Busy plus idle and iowait
}

// readMachine returns the CPU time the machine has spent so far.
func readMachine() (machineSample, error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return machineSample{}, err
	}
	s, err := parseMachineStat(data)
	if err != nil {
		return machineSample{}, fmt.Errorf("/proc/stat: %w", err)
	}
	return s, nil
}

// parseMachineStat reads the first line of /proc/stat, the sum over all
// cores. Guest time is left out: the kernel counts it in user and nice
// already.
func parseMachineStat(data []byte) (machineSample, error) {
	line, _, _ := bytes.Cut(data, []byte("\n"))
	fields := strings.Fields(string(line))
	if len(fields) < 9 || fields[0] != "cpu" {
		return machineSample{}, fmt.Errorf("invalid first line %q: want \"cpu\" and at least 8 counters", line)
	}
	const user, nice, system, idle, iowait, irq, softirq, steal = 1, 2, 3, 4, 5, 6, 7, 8
	var ticks [9]uint64
	for i := user; i <= steal; i++ {
		v, err := strconv.ParseUint(fields[i], 10, 64)
		if err != nil {
			return machineSample{}, fmt.Errorf("field %d: %w", i, err)
		}
		ticks[i] = v
	}
	busy := ticks[user] + ticks[nice] + ticks[system] + ticks[irq] + ticks[softirq] + ticks[steal]
	return machineSample{
		Busy:  ticksToDuration(busy),
		Total: ticksToDuration(busy + ticks[idle] + ticks[iowait]),
	}, nil
}

// processesCPU returns the CPU time used so far by the processes in pids
// that still run.
func processesCPU(pids []int) time.Duration {
	var total time.Duration
	for _, pid := range pids {
		if s, err := readProc(pid); err == nil {
			total += s.CPU
		}
	}
	return total
}

// selfCPU returns the user plus system time of this process so far, all
// threads included.
func selfCPU() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
