package testbed

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// sinkMarker starts every message in a sink's dump file. smtp-sink's -S
// option takes it with C escapes, so the control character keeps message
// text from imitating it by accident.
const (
	sinkMarker     = "\x01oqmgr-testbed-message\n"
	sinkMarkerFlag = `\001oqmgr-testbed-message\n`
)

// Sink is an smtp-sink(1) process on 127.0.0.1 that acts as the remote SMTP
// server and appends every message it receives to a dump file.
type Sink struct {
	Port     int    // listening port on 127.0.0.1
	Dir      string // holds the dump file
	DumpPath string // messages received, each preceded by a marker line

	cmd    *exec.Cmd
	exited chan struct{} // closed when the process has been reaped
	stderr *bytes.Buffer // smtp-sink's output and fatal errors, read only after exited is closed
	once   sync.Once
}

// StartSinkProcess starts smtp-sink on a free loopback port with extra
// smtp-sink options, one per argument, e.g. "-Q", "CONNECT" to reply 421 at
// connect. It returns once the port accepts connections, and that readiness
// probe counts as one session without mail. Call Stop when done.
//
// NOTE: smtp-sink serves at most 256 sessions at once (its -m default),
// and further connections wait in the listen backlog.
//
// When run as root, smtp-sink runs as nobody, because it refuses to run as
// root. The process gets SIGKILL if the thread that started it exits.
func StartSinkProcess(args ...string) (*Sink, error) {
	return startSinkProcess(0, args)
}

// StartSinkProcessOnPort is StartSinkProcess on a given loopback port, for
// a test that replaces a failing sink with a healthy one at the same
// address.
func StartSinkProcessOnPort(port int, args ...string) (*Sink, error) {
	return startSinkProcess(port, args)
}

func startSinkProcess(port int, args []string) (*Sink, error) {
	dir, err := os.MkdirTemp("", "oqmgr-sink-")
	if err != nil {
		return nil, fmt.Errorf("start smtp-sink: %w", err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start smtp-sink: %w", err)
	}
	if os.Geteuid() == 0 {
		if err := chownToUser(dir, "nobody"); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("start smtp-sink: %w", err)
		}
	}

	// Another process may take the free port before smtp-sink binds it, so
	// try a few ports.
	var lastErr error
	for range 3 {
		s, err := startSinkOnce(dir, args, port)
		if err == nil {
			return s, nil
		}
		lastErr = err
	}
	os.RemoveAll(dir)
	return nil, lastErr
}

func startSinkOnce(dir string, extra []string, port int) (*Sink, error) {
	if port == 0 {
		free, err := freePort()
		if err != nil {
			return nil, err
		}
		port = free
	}
	s := &Sink{
		Port:     port,
		Dir:      dir,
		DumpPath: filepath.Join(dir, "dump"),
		exited:   make(chan struct{}),
		stderr:   new(bytes.Buffer),
	}

	var args []string
	if os.Geteuid() == 0 {
		args = append(args, "-u", "nobody")
	}
	args = append(args, "-D", s.DumpPath, "-S", sinkMarkerFlag)
	args = append(args, extra...)
	args = append(args, "127.0.0.1:"+strconv.Itoa(port), "256")

	s.cmd = exec.Command(smtpSinkCommand, args...)
	s.cmd.Stdout = s.stderr
	s.cmd.Stderr = s.stderr
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start smtp-sink: %w", err)
	}
	go func() {
		_ = s.cmd.Wait()
		close(s.exited)
	}()

	deadline := time.Now().Add(5 * time.Second)
	for {
		select {
		case <-s.exited:
			return nil, fmt.Errorf("smtp-sink %s exited at start: %s", strings.Join(args, " "), bytes.TrimSpace(s.stderr.Bytes()))
		default:
		}
		conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
		if err == nil {
			conn.Close()
			return s, nil
		}
		if time.Now().After(deadline) {
			s.kill()
			return nil, fmt.Errorf("smtp-sink on port %d not accepting connections after 5s", port)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Messages returns every message the sink received, each with the headers
// smtp-sink adds (X-Client-Addr, X-Mail-Args, X-Rcpt-Args, Received). A
// message is dumped when its final dot arrives, before the sink replies, so
// one rejected at the dot (-r . or -f .) is counted too.
func (s *Sink) Messages() ([]string, error) {
	data, err := os.ReadFile(s.DumpPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read smtp-sink dump: %w", err)
	}
	parts := strings.Split(string(data), sinkMarker)
	return parts[1:], nil
}

// Delivered returns the number of messages received so far, or -1 when the
// dump file cannot be read (Messages returns the error).
func (s *Sink) Delivered() int {
	msgs, err := s.Messages()
	if err != nil {
		return -1
	}
	return len(msgs)
}

// WaitDelivered waits until the sink has received at least n messages.
func (s *Sink) WaitDelivered(n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		got := s.Delivered()
		if got >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("smtp-sink on port %d received %d of %d messages within %s", s.Port, got, n, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Pid returns the process id of smtp-sink, which serves every session
// in that one process.
func (s *Sink) Pid() int {
	return s.cmd.Process.Pid
}

// Stop kills the sink and removes its directory. It is safe to call twice.
func (s *Sink) Stop() error {
	var err error
	s.once.Do(func() {
		s.kill()
		err = os.RemoveAll(s.Dir)
	})
	return err
}

func (s *Sink) kill() {
	_ = s.cmd.Process.Kill()
	<-s.exited
}
