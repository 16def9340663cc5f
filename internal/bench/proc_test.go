package bench

import (
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseStat(t *testing.T) {
	// Fields after the command name: state, ppid, pgrp, session, tty_nr,
	// tpgid, flags, minflt, cminflt, majflt, cmajflt, utime (14), stime (15),
	// cutime, cstime, priority, nice, num_threads, itrealvalue, starttime (22).
	const rest = " S 1 2 3 0 -1 4194560 100 0 0 0 250 125 7 8 20 0 5 0 123456 1000 200"
	tests := []struct {
		name        string
		stat        string
		wantCPU     time.Duration
		wantStarted time.Duration
		wantChild   time.Duration
		wantErr     string
	}{
		{name: "plain", stat: "4321 (qmgr)" + rest, wantCPU: 3750 * time.Millisecond, wantChild: 150 * time.Millisecond, wantStarted: 1234560 * time.Millisecond},
		{name: "spaces and parentheses in name", stat: "4321 (q m) (x))" + rest, wantCPU: 3750 * time.Millisecond, wantChild: 150 * time.Millisecond, wantStarted: 1234560 * time.Millisecond},
		{name: "no closing parenthesis", stat: "4321 (qmgr S 1", wantErr: "no ')'"},
		{name: "truncated", stat: "4321 (qmgr) S 1 2 3", wantErr: "fields after the command name"},
		{name: "bad number", stat: "4321 (qmgr) S 1 2 3 0 -1 4194560 100 0 0 0 x 125 7 8 20 0 5 0 123456", wantErr: "field 14"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStat([]byte(tt.stat))
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.wantCPU, got.CPU, "utime+stime")
			assert.Equal(t, tt.wantChild, got.ChildCPU, "cutime+cstime")
			assert.Equal(t, tt.wantStarted, got.Started, "starttime")
		})
	}
}

func TestParseMachineStat(t *testing.T) {
	// user nice system idle iowait irq softirq steal guest guest_nice, in
	// ticks of 10 ms; guest time is part of user time already.
	got, err := parseMachineStat([]byte("cpu  100 20 50 700 30 5 15 10 40 0\ncpu0 50 10 25 350 15 2 8 5 20 0\n"))
	require.NoError(t, err)
	assert.Equal(t, 2000*time.Millisecond, got.Busy, "user+nice+system+irq+softirq+steal")
	assert.Equal(t, 9300*time.Millisecond, got.Total, "busy+idle+iowait")

	_, err = parseMachineStat([]byte("cpu0 50 10 25 350 15 2 8 5 20 0\n"))
	assert.ErrorContains(t, err, `want "cpu" and at least 8 counters`)
	_, err = parseMachineStat([]byte("cpu  100 20 x 700 30 5 15 10\n"))
	assert.ErrorContains(t, err, "field 3")
}

func TestReadMachine_MovesForward(t *testing.T) {
	first, err := readMachine()
	require.NoError(t, err)
	deadline := time.Now().Add(50 * time.Millisecond)
	for time.Now().Before(deadline) {
	}
	second, err := readMachine()
	require.NoError(t, err)
	assert.Greater(t, second.Busy, first.Busy, "50 ms of spinning shows as busy time")
	assert.GreaterOrEqual(t, second.Total-first.Total, second.Busy-first.Busy)
}

func TestStatusBytes(t *testing.T) {
	status := []byte("Name:\tqmgr\nVmPeak:\t   20000 kB\nVmHWM:\t    9400 kB\nVmRSS:\t    9000 kB\nBad:\t12 MB\n")
	tests := []struct {
		key     string
		want    int64
		wantErr string
	}{
		{key: "VmHWM:", want: 9400 * 1024},
		{key: "VmRSS:", want: 9000 * 1024},
		{key: "Bad:", wantErr: "invalid Bad: line"},
		{key: "VmSwap:", wantErr: "no VmSwap: line"},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			got, err := statusBytes(status, tt.key)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestParseSchedstat(t *testing.T) {
	wait, err := parseSchedstat([]byte("1533278046 2563690213 40586\n"))
	require.NoError(t, err)
	assert.Equal(t, 2563690213*time.Nanosecond, wait)

	_, err = parseSchedstat([]byte("1533278046 2563690213\n"))
	assert.EqualError(t, err, "2 fields, want 3")
	_, err = parseSchedstat([]byte("1 x 3"))
	assert.ErrorContains(t, err, "run queue wait")
}

func TestRunQueueWait_Self(t *testing.T) {
	// Keep both cores busy so that some thread of this process waits.
	stop := time.Now().Add(50 * time.Millisecond)
	done := make(chan struct{})
	for range 4 {
		go func() {
			for time.Now().Before(stop) {
			}
			done <- struct{}{}
		}()
	}
	for range 4 {
		<-done
	}
	wait, err := runQueueWait(os.Getpid())
	require.NoError(t, err)
	assert.Positive(t, wait, "run queue wait of four spinning goroutines")
}

func TestReadProc_Self(t *testing.T) {
	s, err := readProc(os.Getpid())
	require.NoError(t, err)
	assert.Greater(t, s.PeakRSS, int64(1<<20), "VmHWM of the test binary")
	assert.GreaterOrEqual(t, s.PeakRSS, s.RSS, "VmHWM below VmRSS")
	assert.Less(t, s.Started, sinceBoot(), "start time after now")
}

func TestFindProcess_Self(t *testing.T) {
	exe, err := os.Readlink("/proc/self/exe")
	require.NoError(t, err)
	// Another copy of this test binary could run at the same time, and the
	// younger one wins, so accept any process running the same file.
	pid := findProcess(exe)
	require.NotZero(t, pid)
	link, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
	require.NoError(t, err)
	assert.Equal(t, exe, link)
	assert.Zero(t, findProcess("/nonexistent/qmgr"))
}
