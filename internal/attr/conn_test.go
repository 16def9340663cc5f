package attr

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// listenService creates queueDir/private/name and listens on it. Accepted
// connections are passed to serve in their own goroutine.
func listenService(t *testing.T, queueDir, name string, serve func(net.Conn)) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Join(queueDir, "private"), 0o755))
	ln, err := net.Listen("unix", filepath.Join(queueDir, "private", name))
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })

	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serve(c)
		}
	}()
}

func TestDial_Errors(t *testing.T) {
	queueDir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(queueDir, "private"), 0o755))

	// A socket file with no listener behind it refuses connections.
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(queueDir, "private", "dead"), Net: "unix"})
	require.NoError(t, err)
	ln.SetUnlinkOnClose(false)
	require.NoError(t, ln.Close())

	tests := []struct {
		service   string
		wantErrno syscall.Errno
		wantMsg   string
	}{
		{"absent", syscall.ENOENT, "connect to private/absent: No such file or directory"},
		{"dead", syscall.ECONNREFUSED, "connect to private/dead: Connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.service, func(t *testing.T) {
			_, err := Dial(context.Background(), queueDir, "private", tt.service, time.Second)
			var connectErr *ConnectError
			require.ErrorAs(t, err, &connectErr)
			assert.ErrorIs(t, err, tt.wantErrno)
			assert.EqualError(t, err, tt.wantMsg)
		})
	}
}

func TestConnectError_Kind(t *testing.T) {
	err := &ConnectError{Kind: "transport", Endpoint: "private/smtp", Err: syscall.EAGAIN}
	assert.EqualError(t, err, "connect to transport private/smtp: Resource temporarily unavailable")
}

func TestConn_ExchangesLists(t *testing.T) {
	queueDir := t.TempDir()
	received := make(chan []Attr, 1)
	listenService(t, queueDir, "echo", func(c net.Conn) {
		defer c.Close()
		_, _ = c.Write([]byte("protocol\x00echo_protocol\x00\x00"))
		list, _ := NewReader(c, "server").ReadList()
		received <- list
		_, _ = c.Write([]byte("status\x000\x00\x00"))
	})

	ctx := context.Background()
	c, err := Dial(ctx, queueDir, "private", "echo", time.Second)
	require.NoError(t, err)
	defer c.Close()
	assert.Equal(t, "private/echo socket", c.Label())

	require.NoError(t, c.ExpectProtocol(ctx, "echo_protocol"))
	var b Builder
	b.Str("request", "ping")
	b.End()
	request, err := b.Bytes()
	require.NoError(t, err)
	require.NoError(t, c.Write(ctx, request))
	var status int
	require.NoError(t, c.Scan(ctx, Int("status", &status)))

	assert.Equal(t, []Attr{{Name: "request", Value: "ping"}}, <-received)
	assert.Equal(t, 0, status)
}

// silentService accepts connections and never writes, until the test ends.
func silentService(t *testing.T, queueDir, name string) {
	t.Helper()
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	listenService(t, queueDir, name, func(c net.Conn) {
		<-done
		c.Close()
	})
}

func TestConn_TimeoutOnSilentPeer(t *testing.T) {
	queueDir := t.TempDir()
	silentService(t, queueDir, "silent")

	c, err := Dial(context.Background(), queueDir, "private", "silent", 50*time.Millisecond)
	require.NoError(t, err)
	defer c.Close()

	start := time.Now()
	err = c.ExpectProtocol(context.Background(), "x")

	assert.ErrorIs(t, err, os.ErrDeadlineExceeded)
	assert.EqualError(t, err,
		"timeout on private/silent socket while reading input attribute name: read unix @->"+
			filepath.Join(queueDir, "private", "silent")+": i/o timeout")
	assert.Less(t, time.Since(start), 2*time.Second)
}

func TestConn_ContextCancelInterruptsRead(t *testing.T) {
	queueDir := t.TempDir()
	silentService(t, queueDir, "silent")

	c, err := Dial(context.Background(), queueDir, "private", "silent", time.Hour)
	require.NoError(t, err)
	defer c.Close()

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err = c.ReadList(ctx)

	assert.ErrorIs(t, err, context.Canceled)
}

func TestConn_ContextDeadlineBoundsRead(t *testing.T) {
	queueDir := t.TempDir()
	silentService(t, queueDir, "silent")

	c, err := Dial(context.Background(), queueDir, "private", "silent", time.Hour)
	require.NoError(t, err)
	defer c.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = c.ReadList(ctx)

	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.ErrorIs(t, err, os.ErrDeadlineExceeded)
}

func TestConn_PeerClosed(t *testing.T) {
	queueDir := t.TempDir()
	closeNow := make(chan struct{})
	closed := make(chan struct{})
	listenService(t, queueDir, "closer", func(c net.Conn) {
		<-closeNow
		c.Close()
		close(closed)
	})

	c, err := Dial(context.Background(), queueDir, "private", "closer", time.Second)
	require.NoError(t, err)
	defer c.Close()

	assert.False(t, c.PeerClosed(), "open and quiet connection")
	close(closeNow)
	<-closed
	assert.Eventually(t, c.PeerClosed, time.Second, 10*time.Millisecond, "closed by server")
}
