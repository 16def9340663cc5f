package transport

// Tests against the installed Postfix daemons, run in stand-alone mode (-S):
// the daemon serves one client on its standard input and output, which
// here are one end of a socket pair. Each test gets its own configuration
// and queue directory.
//
// In this mode trivial-rewrite, a multi-client server (multi_server.c),
// skips its protocol announcement and serves a single request, so those
// tests give the Resolver an already open connection. Delivery agents
// announce themselves as usual.

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"oqmgr-go/internal/attr"
)

const postfixDaemonDir = "/usr/lib/postfix/sbin"

// standalone is one Postfix daemon serving a single client connection.
type standalone struct {
	conn     *attr.Conn
	nc       net.Conn
	queueDir string
	stderr   *bytes.Buffer
	cmd      *exec.Cmd
}

// startStandalone runs daemon -S with a private main.cf and any further
// arguments, and returns the client end of its connection, labelled like
// the real service socket. It skips the test when the daemon is not
// installed.
func startStandalone(t *testing.T, daemon, label string, args ...string) *standalone {
	t.Helper()
	path := filepath.Join(postfixDaemonDir, daemon)
	if _, err := os.Stat(path); err != nil {
		t.Skipf("Postfix daemon %s not installed: %v", path, err)
	}

	configDir := t.TempDir()
	queueDir := t.TempDir()
	mainCF := "queue_directory = " + queueDir + "\n" +
		"compatibility_level = 3.6\n" +
		"myhostname = mx.example.net\n" +
		"mydomain = example.net\n"
	require.NoError(t, os.WriteFile(filepath.Join(configDir, "main.cf"), []byte(mainCF), 0o644))

	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	clientFile := os.NewFile(uintptr(fds[0]), "client")
	serverFile := os.NewFile(uintptr(fds[1]), "server")
	defer clientFile.Close()
	defer serverFile.Close()
	nc, err := net.FileConn(clientFile)
	require.NoError(t, err)

	s := &standalone{queueDir: queueDir, stderr: &bytes.Buffer{}}
	s.cmd = exec.Command(path, append([]string{"-S"}, args...)...)
	s.cmd.Env = []string{"MAIL_CONFIG=" + configDir, "PATH=/usr/bin:/bin"}
	s.cmd.Stdin = serverFile
	s.cmd.Stdout = serverFile
	s.cmd.Stderr = s.stderr
	require.NoError(t, s.cmd.Start())
	t.Cleanup(func() {
		nc.Close()
		done := make(chan struct{})
		go func() { _ = s.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = s.cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("%s stderr:\n%s", daemon, s.stderr.String())
		}
	})

	s.nc = nc
	s.conn = attr.NewConn(nc, label, 5*time.Second)
	return s
}

// agent returns an Agent on a duplicate of the daemon connection, with the
// announcement read, as the scheduler holds one after its poller saw it.
func (s *standalone) agent(t *testing.T, transport string) *Agent {
	t.Helper()
	f, err := s.nc.(*net.UnixConn).File()
	require.NoError(t, err)
	fd, err := unix.Dup(int(f.Fd()))
	f.Close()
	require.NoError(t, err)
	sock, err := attr.NewSocket(fd)
	require.NoError(t, err)
	agent := newAgent(sock, transport, 5*time.Second)
	t.Cleanup(func() { agent.Close() })
	readable(t, agent)
	require.NoError(t, agent.ReadAnnouncement())
	return agent
}

// resolver returns a Resolver that uses the already open connection.
func (s *standalone) resolver() *Resolver {
	r := NewResolver(s.queueDir, "rewrite", 5*time.Second)
	r.slots = []rewriteConn{{conn: s.conn, opened: time.Now()}}
	return r
}

func TestPostfix_TrivialRewriteResolve(t *testing.T) {
	tests := []struct {
		name    string
		address string
		want    Resolution
	}{
		{"remote domain", "user@example.com",
			Resolution{Transport: "smtp", Nexthop: "example.com", Recipient: "user@example.com", Flags: 4096}},
		{"local domain", "double-bounce@mx.example.net",
			Resolution{Transport: "local", Nexthop: "mx.example.net", Recipient: "double-bounce@mx.example.net", Flags: ResolveClassLocal}},
		{"bad syntax", "-user@mx.example.net",
			Resolution{Transport: "local", Nexthop: "mx.example.net", Recipient: "-user@mx.example.net", Flags: ResolveError | ResolveClassLocal}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := startStandalone(t, "trivial-rewrite", "private/rewrite socket")
			r := s.resolver()

			got, err := r.Resolve(context.Background(), "sender@example.org", tt.address, false)

			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestPostfix_TrivialRewriteRewrite(t *testing.T) {
	t.Parallel()
	s := startStandalone(t, "trivial-rewrite", "private/rewrite socket")
	r := s.resolver()

	got, err := r.Rewrite(context.Background(), "local", "user")

	require.NoError(t, err)
	assert.Equal(t, "user@mx.example.net", got)
}

func TestPostfix_DiscardUnopenableQueueFile(t *testing.T) {
	t.Parallel()
	s := startStandalone(t, "discard", "private/discard socket")
	agent := s.agent(t, "discard")

	reply, err := deliver(t, agent, sampleRequest())

	require.NoError(t, err)
	assert.Equal(t, DeliveryReply{Status: -1}, reply)
}

func TestPostfix_DiscardMarksRecipientDone(t *testing.T) {
	t.Parallel()
	s := startStandalone(t, "discard", "private/discard socket")

	// The agent opens active/<id> but reads no content, so a file that holds
	// a recipient record at a known offset is enough. It must be a regular
	// file with owner rwx permission, the "ready" mode of a queue file.
	const queueID = "4F2A81C3D"
	content := []byte("XXXXR\x0da@example.com")
	const rcptOffset = 4
	require.NoError(t, os.Mkdir(filepath.Join(s.queueDir, "active"), 0o700))
	queueFile := filepath.Join(s.queueDir, "active", queueID)
	require.NoError(t, os.WriteFile(queueFile, content, 0o700))

	req := sampleRequest()
	req.QueueID = queueID
	req.Flags = 3
	req.Recipients = []RequestRecipient{{Address: "a@example.com", Offset: rcptOffset}}
	agent := s.agent(t, "discard")

	reply, err := deliver(t, agent, req)

	require.NoError(t, err)
	assert.Equal(t, DeliveryReply{Status: 0}, reply)
	after, err := os.ReadFile(queueFile)
	require.NoError(t, err)
	assert.Equal(t, byte('D'), after[rcptOffset], "recipient record marked done in %q", after)
}

func TestPostfix_BounceDeferAppend(t *testing.T) {
	t.Parallel()
	s := startStandalone(t, "bounce", "private/defer socket", "-n", "defer")
	require.NoError(t, os.Mkdir(filepath.Join(s.queueDir, "defer"), 0o700))
	rcpt := RequestRecipient{OrigAddress: "o@example.com", Address: "a@example.com", Offset: 401}
	dsn := DSN{Status: "4.3.0", Reason: "mail transport unavailable"}
	request, err := encodeDeferAppend(0, "4F2A81C3D", rcpt, dsn)
	require.NoError(t, err)

	status, err := exchangeCommand(context.Background(), s.conn, request)

	require.NoError(t, err)
	assert.Equal(t, 0, status)
	logs, err := filepath.Glob(filepath.Join(s.queueDir, "defer", "*", "4F2A81C3D"))
	require.NoError(t, err)
	require.Len(t, logs, 1, "defer log written under the hashed defer directory")
	log, err := os.ReadFile(logs[0])
	require.NoError(t, err)
	assert.Equal(t, "\n<a@example.com>: mail transport unavailable\n"+
		"recipient=a@example.com\noriginal_recipient=o@example.com\noffset=401\n"+
		"status=4.3.0\naction=delayed\nreason=mail transport unavailable\n\n", string(log))
}
