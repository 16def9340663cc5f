package trigger

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// fakeStatus records the status reports and the handled requests in the
// order the server makes them.
type fakeStatus struct {
	events   chan string
	availErr error
}

func newFakeStatus() *fakeStatus {
	return &fakeStatus{events: make(chan string, 100)}
}

func (f *fakeStatus) Taken() error     { f.events <- "taken"; return nil }
func (f *fakeStatus) Available() error { f.events <- "available"; return f.availErr }

// running is a server started by a test, with everything it reported.
type running struct {
	path   string
	status *fakeStatus
	done   chan struct{} // closed when Serve returns
	err    error         // returned by Serve, valid once done is closed
	cancel context.CancelFunc
}

const waitLimit = 5 * time.Second

func serve(t *testing.T, srv *Server, path string, status *fakeStatus) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{path: path, status: status, done: make(chan struct{}), cancel: cancel}
	go func() {
		r.err = srv.Serve(ctx, func(req Request) { status.events <- "handle " + req.String() })
		close(r.done)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(waitLimit):
			t.Error("Serve did not return after cancel")
		}
	})
	return r
}

// startSocket runs a server on a listening unix socket in a temporary
// directory, as master passes it on fd 6.
func startSocket(t *testing.T, readTimeout time.Duration, status *fakeStatus) *running {
	t.Helper()
	path := filepath.Join(t.TempDir(), "qmgr")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	f, err := l.File()
	require.NoError(t, err)

	srv, err := NewServer(f, KindUnix, status)
	require.NoError(t, err)
	require.NoError(t, f.Close(), "the caller may close its listener after NewServer")
	srv.ReadTimeout = readTimeout
	return serve(t, srv, path, status)
}

// startFIFO runs a server on a FIFO opened the way master opens it.
func startFIFO(t *testing.T, status *fakeStatus) *running {
	t.Helper()
	path := filepath.Join(t.TempDir(), "qmgr")
	require.NoError(t, unix.Mkfifo(path, 0o622))
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_NONBLOCK, 0)
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })

	srv, err := NewServer(f, KindFIFO, status)
	require.NoError(t, err)
	return serve(t, srv, path, status)
}

// kickSocket connects, writes payload and waits until the server closes
// the connection, as Postfix's unix_trigger client does.
func kickSocket(t *testing.T, path, payload string) {
	t.Helper()
	conn, err := net.DialTimeout("unix", path, waitLimit)
	require.NoError(t, err)
	defer conn.Close()
	if payload != "" {
		_, err = io.WriteString(conn, payload)
		require.NoError(t, err)
	}
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(waitLimit)))
	_, err = io.Copy(io.Discard, conn)
	if err != nil && !errors.Is(err, unix.ECONNRESET) {
		t.Fatalf("waiting for the server to close the connection: %v", err)
	}
}

func diedOfSIGPIPE(err error) bool {
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) {
		return false
	}
	ws, ok := exitErr.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGPIPE
}

func kickFIFO(t *testing.T, path, payload string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	require.NoError(t, err)
	defer f.Close()
	_, err = io.WriteString(f, payload)
	require.NoError(t, err)
}

// expectTrigger waits for the events of one trigger: taken, at most one
// handled request, then available. It returns the request, or 0 when none
// was handled.
func (r *running) expectTrigger(t *testing.T) Request {
	t.Helper()
	require.Equal(t, "taken", r.nextEvent(t))
	e := r.nextEvent(t)
	var req Request
	if name, ok := strings.CutPrefix(e, "handle "); ok {
		req = requestByName(t, name)
		e = r.nextEvent(t)
	}
	require.Equal(t, "available", e)
	return req
}

func requestByName(t *testing.T, name string) Request {
	t.Helper()
	for r := Request(1); r <= FlushDead<<1; r++ {
		if r.String() == name {
			return r
		}
	}
	t.Fatalf("no request is named %q", name)
	return 0
}

func (r *running) nextEvent(t *testing.T) string {
	t.Helper()
	select {
	case e := <-r.status.events:
		return e
	case <-time.After(waitLimit):
		t.Fatal("no status report from the server")
		return ""
	}
}

func (r *running) assertQuiet(t *testing.T) {
	t.Helper()
	select {
	case e := <-r.status.events:
		t.Errorf("unexpected event %q", e)
	default:
	}
}

var payloadTests = []struct {
	name    string
	payload string
	want    Request
}{
	{"wakeup", "W\x00", ScanIncoming},
	{"incoming", "I\x00", ScanIncoming},
	{"deferred", "D\x00", ScanDeferred},
	{"postqueue flush", "FADI\x00", ScanIncoming | ScanDeferred | ScanAll | FlushDead},
	{"repeated bytes collapse", "IIDDIIDD\x00", ScanIncoming | ScanDeferred},
	{"garbage", "hello\r\n\x00", 0},
}

func TestServerSocket_Payloads(t *testing.T) {
	r := startSocket(t, time.Second, newFakeStatus())
	for _, tt := range payloadTests {
		t.Run(tt.name, func(t *testing.T) {
			kickSocket(t, r.path, tt.payload)
			got := r.expectTrigger(t)
			assert.Equal(t, tt.want, got, "trigger %q handled as %v, want %v", tt.payload, got, tt.want)
		})
	}
}

func TestServerSocket_ConnectionsAreSeparateTriggers(t *testing.T) {
	r := startSocket(t, time.Second, newFakeStatus())
	kickSocket(t, r.path, "I\x00")
	kickSocket(t, r.path, "I\x00")
	kickSocket(t, r.path, "D\x00")
	assert.Equal(t, ScanIncoming, r.expectTrigger(t))
	assert.Equal(t, ScanIncoming, r.expectTrigger(t))
	assert.Equal(t, ScanDeferred, r.expectTrigger(t))
}

func TestServerSocket_SilentClientClosedAfterTimeout(t *testing.T) {
	const timeout = 100 * time.Millisecond
	r := startSocket(t, timeout, newFakeStatus())

	start := time.Now()
	kickSocket(t, r.path, "")
	elapsed := time.Since(start)
	assert.GreaterOrEqual(t, elapsed, timeout, "server closed a silent client after %v, before the %v timeout", elapsed, timeout)
	assert.Less(t, elapsed, waitLimit)
	r.assertQuiet(t)

	// The server goes on with the next client.
	kickSocket(t, r.path, "I\x00")
	assert.Equal(t, ScanIncoming, r.expectTrigger(t))
}

func TestServerSocket_ClientClosesWithoutWriting(t *testing.T) {
	r := startSocket(t, time.Second, newFakeStatus())
	conn, err := net.Dial("unix", r.path)
	require.NoError(t, err)
	require.NoError(t, conn.Close())

	// End of file is a readable event, so master still sees a trigger.
	assert.Equal(t, Request(0), r.expectTrigger(t))
}

func TestServerSocket_OnlyFirstBufferIsRead(t *testing.T) {
	r := startSocket(t, time.Second, newFakeStatus())
	kickSocket(t, r.path, strings.Repeat("x", BufferSize)+"D\x00")
	assert.Equal(t, Request(0), r.expectTrigger(t), "bytes after the first %d must be dropped", BufferSize)
	r.assertQuiet(t)
}

func TestServerSocket_MasterGone(t *testing.T) {
	status := newFakeStatus()
	status.availErr = unix.EPIPE
	r := startSocket(t, time.Second, status)
	kickSocket(t, r.path, "I\x00")

	assert.Equal(t, ScanIncoming, r.expectTrigger(t), "the trigger read before the failure is still handled")
	select {
	case <-r.done:
		assert.ErrorIs(t, r.err, ErrMasterGone)
		assert.ErrorIs(t, r.err, unix.EPIPE)
	case <-time.After(waitLimit):
		t.Fatal("Serve kept running after Available failed")
	}
}

func TestServerSocket_CancelDuringSilentClient(t *testing.T) {
	r := startSocket(t, DefaultReadTimeout, newFakeStatus())
	conn, err := net.Dial("unix", r.path)
	require.NoError(t, err)
	defer conn.Close()
	time.Sleep(50 * time.Millisecond) // let the server accept and start waiting

	r.cancel()
	select {
	case <-r.done:
		assert.NoError(t, r.err)
	case <-time.After(2 * time.Second):
		t.Fatal("Serve did not return promptly after cancel")
	}
}

func TestServerFIFO_Payloads(t *testing.T) {
	r := startFIFO(t, newFakeStatus())
	for _, tt := range payloadTests {
		t.Run(tt.name, func(t *testing.T) {
			kickFIFO(t, r.path, tt.payload)
			got := r.expectTrigger(t)
			assert.Equal(t, tt.want, got, "trigger %q handled as %v, want %v", tt.payload, got, tt.want)
		})
	}
}

func TestServerFIFO_LongInputIsSeveralTriggers(t *testing.T) {
	r := startFIFO(t, newFakeStatus())
	kickFIFO(t, r.path, strings.Repeat("x", BufferSize)+"D")
	assert.Equal(t, Request(0), r.expectTrigger(t))
	assert.Equal(t, ScanDeferred, r.expectTrigger(t))
}

func TestServerFIFO_Cancel(t *testing.T) {
	r := startFIFO(t, newFakeStatus())
	r.cancel()
	select {
	case <-r.done:
		assert.NoError(t, r.err)
	case <-time.After(2 * time.Second):
		t.Fatal("Serve did not return promptly after cancel")
	}
}

func TestNewServer_Errors(t *testing.T) {
	f, err := os.Open(os.DevNull)
	require.NoError(t, err)
	defer f.Close()

	_, err = NewServer(f, "inet", newFakeStatus())
	assert.ErrorContains(t, err, `unsupported listener kind "inet"`)
	_, err = NewServer(f, KindUnix, nil)
	assert.ErrorContains(t, err, "status is nil")
	_, err = NewServer(f, KindUnix, newFakeStatus())
	assert.Error(t, err, "/dev/null is not a socket")
}

// TestServer_Postkick drives the server with Postfix's own postkick(1)
// client, on both kinds of endpoint.
func TestServer_Postkick(t *testing.T) {
	postkick, err := exec.LookPath("postkick")
	if err != nil {
		postkick = "/usr/sbin/postkick"
	}
	if _, err := os.Stat(postkick); err != nil {
		t.Skip("postkick(1) is not installed")
	}

	tests := []struct {
		name    string
		kind    string
		request string
		want    Request
	}{
		{"socket flush", KindUnix, "FADI", ScanIncoming | ScanDeferred | ScanAll | FlushDead},
		{"socket deferred", KindUnix, "D", ScanDeferred},
		{"fifo wakeup", KindFIFO, "W", ScanIncoming},
		{"fifo flush", KindFIFO, "FADI", ScanIncoming | ScanDeferred | ScanAll | FlushDead},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r *running
			if tt.kind == KindUnix {
				r = startSocket(t, time.Second, newFakeStatus())
			} else {
				r = startFIFO(t, newFakeStatus())
			}

			// postkick looks for $queue_directory/public/<service>.
			queueDir := t.TempDir()
			require.NoError(t, os.Mkdir(filepath.Join(queueDir, "public"), 0o755))
			require.NoError(t, os.Symlink(r.path, filepath.Join(queueDir, "public", "qmgr")))
			configDir := t.TempDir()
			mainCF := fmt.Sprintf("queue_directory = %s\ncompatibility_level = 3.6\n", queueDir)
			require.NoError(t, os.WriteFile(filepath.Join(configDir, "main.cf"), []byte(mainCF), 0o644))

			out, err := exec.Command(postkick, "-c", configDir, "public", "qmgr", tt.request).CombinedOutput()
			if diedOfSIGPIPE(err) {
				// postkick writes the request and its NUL terminator in
				// two writes. When the server has read the request and
				// closed the socket in between, the second write raises
				// SIGPIPE. The C trigger server closes the same way.
				t.Logf("postkick died of SIGPIPE after the server closed the connection")
			} else {
				require.NoError(t, err, "postkick output: %s", out)
			}
			got := r.expectTrigger(t)
			assert.Equal(t, tt.want, got, "postkick %q handled as %v, want %v", tt.request, got, tt.want)
		})
	}
}
