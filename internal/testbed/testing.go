package testbed

import (
	"errors"

	"golang.org/x/sys/unix"
)

// TB is the part of testing.TB that New and StartSink use. Declaring it here
// keeps the testing package out of programs such as the demo. Any
// *testing.T, *testing.B or testing.TB satisfies it.
type TB interface {
	Helper()
	Cleanup(func())
	Failed() bool
	Logf(format string, args ...any)
	Fatalf(format string, args ...any)
	Skipf(format string, args ...any)
}

// New creates a stopped instance for a test, or skips the test when not run
// as root and fails it when Postfix is missing. The cleanup stops the
// instance and removes its directory, except after a failure: then the
// directory stays for inspection until its slot is reused.
func New(t TB, o Options) *Instance {
	t.Helper()
	RequireEnvironment(t)
	i, err := Create(o)
	if err != nil {
		t.Fatalf("create Postfix test instance: %v", err)
	}
	t.Cleanup(func() {
		keep := t.Failed()
		if keep {
			t.Logf("keeping Postfix test instance in %s (maillog: %s)", i.Dir, i.MaillogPath)
		}
		if err := i.Close(keep); err != nil {
			t.Fatalf("close Postfix test instance: %v", err)
		}
	})
	return i
}

// RequireEnvironment skips the test when not run as root and fails it when
// Postfix is missing, with a message to run `make deps`.
func RequireEnvironment(t TB) {
	t.Helper()
	err := CheckEnvironment()
	switch {
	case err == nil:
	case errors.Is(err, ErrNotRoot):
		t.Skipf("skipping: %v", err)
	default:
		t.Fatalf("%v", err)
	}
}

// StartSink starts an smtp-sink for a test (see StartSinkProcess) and stops
// it in the test's cleanup.
func StartSink(t TB, args ...string) *Sink {
	t.Helper()
	s, err := StartSinkProcess(args...)
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Logf("stop smtp-sink: %v", err)
		}
	})
	return s
}

func killPID(pid int) error {
	return unix.Kill(pid, unix.SIGKILL)
}
