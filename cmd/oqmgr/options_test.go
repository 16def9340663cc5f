package main

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// option is one result of getopt.next, for comparisons.
type option struct {
	letter byte
	arg    string
}

func TestGetopt_Sequence(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		want     []option
		err      string
		operands []string
	}{
		{name: "master qmgr entry", args: []string{"-l", "-t", "unix", "-u"}, want: []option{{'l', ""}, {'t', "unix"}, {'u', ""}}},
		{name: "grouped letters", args: []string{"-lvu"}, want: []option{{'l', ""}, {'v', ""}, {'u', ""}}},
		{name: "attached argument", args: []string{"-tfifo", "-oname=value"}, want: []option{{'t', "fifo"}, {'o', "name=value"}}},
		{name: "argument after group", args: []string{"-lt", "unix"}, want: []option{{'l', ""}, {'t', "unix"}}},
		{name: "argument starting with dash", args: []string{"-o", "-x"}, want: []option{{'o', "-x"}}},
		{name: "double dash ends options", args: []string{"-l", "--", "-v"}, want: []option{{'l', ""}}, operands: []string{"-v"}},
		{name: "first operand ends options", args: []string{"-l", "extra", "-v"}, want: []option{{'l', ""}}, operands: []string{"extra", "-v"}},
		{name: "lone dash is an operand", args: []string{"-"}, operands: []string{"-"}},
		{name: "unknown letter", args: []string{"-l", "-x"}, want: []option{{'l', ""}}, err: "invalid option: x"},
		{name: "missing argument", args: []string{"-l", "-n"}, want: []option{{'l', ""}}, err: "invalid option: n"},
		{name: "long option", args: []string{"--verbose"}, err: "invalid option: -"},
		{name: "colon is no option", args: []string{"-:"}, err: "invalid option: :"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := &getopt{args: tt.args}
			var got []option
			var gotErr string
			for {
				letter, arg, ok, err := g.next()
				if err != nil {
					gotErr = err.Error()
					break
				}
				if !ok {
					break
				}
				got = append(got, option{letter, arg})
			}
			assert.Equal(t, tt.want, got, "options of %q", tt.args)
			assert.Equal(t, tt.err, gotErr, "error for %q", tt.args)
			if tt.err == "" {
				assert.Equal(t, tt.operands, nilIfEmpty(g.operands()), "operands of %q", tt.args)
			}
		})
	}
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

func TestAtoi_LikeC(t *testing.T) {
	tests := []struct {
		in   string
		want int
	}{
		{"3", 3}, {"3x", 3}, {" 12", 12}, {"+7", 7}, {"-2", -2}, {"abc", 0}, {"", 0},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, atoi(tt.in), "atoi(%q)", tt.in)
	}
}

func TestWatchdog_ExpiresOnlyWhenArmed(t *testing.T) {
	var fired atomic.Int32
	w := newWatchdog(300*time.Millisecond, func() { fired.Add(1) })

	w.start()
	time.Sleep(50 * time.Millisecond)
	w.stop()
	time.Sleep(500 * time.Millisecond)
	assert.Zero(t, fired.Load(), "expiries after stop within the timeout")

	w.start()
	time.Sleep(200 * time.Millisecond)
	w.start() // re-arming starts the timeout over
	time.Sleep(200 * time.Millisecond)
	assert.Zero(t, fired.Load(), "expiries 400ms after the first start, 200ms after re-arming")

	assert.Eventually(t, func() bool { return fired.Load() == 1 }, 2*time.Second, 5*time.Millisecond, "one expiry once armed for longer than the timeout")
}

func TestWatchPasses_ExpiresOnlyForLongPass(t *testing.T) {
	const timeout = 300 * time.Millisecond
	var start atomic.Int64 // Unix nanoseconds, 0 while the loop sleeps
	started := func() time.Time {
		if ns := start.Load(); ns != 0 {
			return time.Unix(0, ns)
		}
		return time.Time{}
	}
	var fired atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go watchPasses(ctx, started, timeout, func() { fired.Add(1) })

	// Short passes and a long sleep between them.
	for range 8 {
		start.Store(time.Now().UnixNano())
		time.Sleep(50 * time.Millisecond)
	}
	start.Store(0)
	time.Sleep(2 * timeout)
	assert.Zero(t, fired.Load(), "expiries for short passes and a sleep")

	start.Store(time.Now().UnixNano())
	assert.Eventually(t, func() bool { return fired.Load() == 1 }, 2*time.Second, 5*time.Millisecond, "one expiry for a pass longer than the timeout")
}
