package transport

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"oqmgr-go/internal/attr"
)

// sampleRequest is a delivery request with every field set, so the
// transcript test notices a field sent in the wrong place.
func sampleRequest() *DeliveryRequest {
	return &DeliveryRequest{
		Flags:      3 | 2048,
		QueueName:  "active",
		QueueID:    "4F2A81C3D",
		Offset:     712,
		Size:       1234,
		Nexthop:    "example.com",
		Encoding:   "8bit",
		SMTPUTF8:   1,
		Sender:     "sender@example.org",
		EnvelopeID: "env1",
		RetFlags:   2,
		Stats: Stats{
			IncomingArrival: time.Unix(1700000000, 123456789),
			ActiveArrival:   time.Unix(1700000005, 0),
		},
		LogClientName:    "client.example.org",
		LogClientAddress: "192.0.2.1",
		LogClientPort:    "54321",
		LogProtocolName:  "ESMTP",
		LogHeloName:      "helo.example.org",
		SASLMethod:       "PLAIN",
		SASLUsername:     "user",
		SASLSender:       "",
		LogIdent:         "4F2A81C3D",
		RewriteContext:   "local",
		Recipients: []RequestRecipient{
			{OrigAddress: "Orig@example.com", Address: "a@example.com", Offset: 401, DSNOrig: "rfc822;a@example.com", Notify: 14},
			{Address: "b@example.com", Offset: -1},
		},
	}
}

// sampleRequestWire is sampleRequest as the C queue manager of Postfix 3.7
// encodes it. The time value is the 88-byte MSG_STATS struct holding
// {1700000000, 123456} and {1700000005, 0}, followed by zeros.
const sampleRequestWire = "flags\x002051\x00queue_name\x00active\x00queue_id\x004F2A81C3D\x00" +
	"offset\x00712\x00size\x001234\x00nexthop\x00example.com\x00encoding\x008bit\x00" +
	"smtputf8\x001\x00sender\x00sender@example.org\x00envelope_id\x00env1\x00ret_flags\x002\x00" +
	"time\x00APFTZQAAAABA4gEAAAAAAAXxU2UAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==\x00" +
	"log_client_name\x00client.example.org\x00log_client_address\x00192.0.2.1\x00" +
	"log_client_port\x0054321\x00log_protocol_name\x00ESMTP\x00log_helo_name\x00helo.example.org\x00" +
	"sasl_method\x00PLAIN\x00sasl_username\x00user\x00sasl_sender\x00\x00log_ident\x004F2A81C3D\x00" +
	"rewrite_context\x00local\x00recipient_count\x002\x00\x00" +
	"original_recipient\x00Orig@example.com\x00recipient\x00a@example.com\x00offset\x00401\x00" +
	"dsn_orig_rcpt\x00rfc822;a@example.com\x00notify_flags\x0014\x00\x00" +
	"original_recipient\x00\x00recipient\x00b@example.com\x00offset\x0018446744073709551615\x00" +
	"dsn_orig_rcpt\x00\x00notify_flags\x000\x00\x00"

const deferReplyWire = "status\x004.4.1\x00diag_type\x00\x00diag_text\x00\x00mta_type\x00\x00" +
	"mta_mname\x00\x00action\x00\x00reason\x00connect to example.com: Connection refused\x00" +
	"status\x004294967295\x00\x00"

// readable waits up to ten seconds for the agent's socket to turn readable,
// as the scheduler's poller would.
func readable(t *testing.T, agent *Agent) {
	t.Helper()
	fds := []unix.PollFd{{Fd: int32(agent.Fd()), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, 10000)
	require.NoError(t, err)
	require.Equal(t, 1, n, "agent socket readable within ten seconds")
}

// openReady connects to the fake agent and reads its announcement.
func openReady(t *testing.T, queueDir string, timeout time.Duration) *Agent {
	t.Helper()
	agent, err := OpenAgent(queueDir, "smtp", timeout)
	require.NoError(t, err)
	t.Cleanup(func() { agent.Close() })
	readable(t, agent)
	require.NoError(t, agent.ReadAnnouncement())
	return agent
}

// deliver sends one request and reads the reply once it starts.
func deliver(t *testing.T, agent *Agent, req *DeliveryRequest) (DeliveryReply, error) {
	t.Helper()
	if err := agent.Send(req); err != nil {
		return DeliveryReply{}, err
	}
	readable(t, agent)
	return agent.ReadReply()
}

func TestDeliver_Transcript(t *testing.T) {
	requests := make(chan []byte, 1)
	fake := startFake(t, "smtp", func(p *peer) {
		p.announce("delivery_request_protocol")
		requests <- p.readLists(3)
		p.send(deferReplyWire)
	})

	agent := openReady(t, fake.queueDir, time.Second)
	reply, err := deliver(t, agent, sampleRequest())
	require.NoError(t, err)

	assert.Equal(t, sampleRequestWire, string(<-requests))
	assert.Equal(t, DeliveryReply{
		DSN:    DSN{Status: "4.4.1", Reason: "connect to example.com: Connection refused"},
		Status: -1,
	}, reply)
}

func TestDeliver_StringsEndAtNUL(t *testing.T) {
	req := sampleRequest()
	req.Sender = "sender@example.org\x00junk"

	wire, err := req.encode()
	require.NoError(t, err)
	assert.Equal(t, sampleRequestWire, string(wire))
}

func TestDeliver_NoRecipients(t *testing.T) {
	req := sampleRequest()
	req.Recipients = nil

	_, err := req.encode()
	assert.EqualError(t, err, "delivery request for 4F2A81C3D has no recipients")
}

func TestDeliver_BadReplies(t *testing.T) {
	tests := []struct {
		name   string
		reply  string
		wantIs error
	}{
		{"closed without reply", "", io.EOF},
		{"truncated", deferReplyWire[:40], io.ErrUnexpectedEOF},
		{"missing final status", strings.TrimSuffix(deferReplyWire, "status\x004294967295\x00\x00") + "\x00", attr.ErrProtocol},
		{"garbage", "hello world\r\n\x00x\x00\x00", attr.ErrProtocol},
		{"status not a number", strings.Replace(deferReplyWire, "4294967295", "-1", 1), attr.ErrProtocol},
		{"extra attribute", strings.TrimSuffix(deferReplyWire, "\x00") + "extra\x00x\x00\x00", attr.ErrProtocol},
		{"oversized reason", "status\x00\x00diag_type\x00\x00diag_text\x00\x00mta_type\x00\x00" +
			"mta_mname\x00\x00action\x00\x00reason\x00" + strings.Repeat("x", attr.MaxValueSize+1), attr.ErrTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := startFake(t, "smtp", func(p *peer) {
				p.announce("delivery_request_protocol")
				p.readLists(3)
				p.send(tt.reply)
			})

			agent := openReady(t, fake.queueDir, time.Second)
			_, err := deliver(t, agent, sampleRequest())

			assert.ErrorIs(t, err, ErrMalformedResponse)
			assert.ErrorIs(t, err, tt.wantIs)
			assert.EqualError(t, err, "private/smtp socket: malformed response")
		})
	}
}

func TestDeliver_ResetIsPrematureDisconnect(t *testing.T) {
	// Closing an AF_UNIX stream socket with unread input makes the peer's
	// next read fail with ECONNRESET on Linux.
	fake := startFake(t, "smtp", func(p *peer) {
		p.announce("delivery_request_protocol")
		buf := make([]byte, 10)
		_, _ = io.ReadFull(p.conn, buf)
	})

	agent := openReady(t, fake.queueDir, time.Second)
	_, err := deliver(t, agent, sampleRequest())

	assert.ErrorIs(t, err, ErrPrematureDisconnect)
	assert.ErrorIs(t, err, syscall.ECONNRESET)
	assert.EqualError(t, err, "private/smtp socket: premature disconnect")
}

func TestDeliver_WriteToClosedAgent(t *testing.T) {
	closed := make(chan struct{})
	fake := startFake(t, "smtp", func(p *peer) {
		p.announce("delivery_request_protocol")
		p.conn.Close()
		close(closed)
	})

	agent := openReady(t, fake.queueDir, time.Second)
	<-closed
	err := agent.Send(sampleRequest())

	assert.ErrorIs(t, err, ErrRequestWrite)
	assert.ErrorIs(t, err, syscall.EPIPE)
	assert.EqualError(t, err, "write to process (smtp): Broken pipe")
}

func TestDeliver_ReplyTimeoutText(t *testing.T) {
	fake := startFake(t, "smtp", func(p *peer) { p.announce("delivery_request_protocol") })
	agent := openReady(t, fake.queueDir, time.Second)

	err := agent.ReplyTimeout("4F2A81C3D")

	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.EqualError(t, err, "4F2A81C3D: timeout receiving delivery status from transport: smtp")
}

func TestDeliver_ReplyStalledMidway(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	fake := startFake(t, "smtp", func(p *peer) {
		p.announce("delivery_request_protocol")
		p.readLists(3)
		p.send(deferReplyWire[:30])
		<-release
	})

	agent := openReady(t, fake.queueDir, 50*time.Millisecond)
	start := time.Now()
	_, err := deliver(t, agent, sampleRequest())

	assert.Less(t, time.Since(start), 900*time.Millisecond, "the rest of the reply waits the I/O timeout, not the caller's")
	assert.ErrorIs(t, err, ErrMalformedResponse)
	assert.ErrorIs(t, err, os.ErrDeadlineExceeded)
	assert.EqualError(t, err, "private/smtp socket: malformed response")
}

func TestDeliver_OneRequestPerAgent(t *testing.T) {
	fake := startFake(t, "smtp", func(p *peer) {
		p.announce("delivery_request_protocol")
		p.readLists(3)
		p.send(deferReplyWire)
	})

	agent := openReady(t, fake.queueDir, time.Second)
	_, err := deliver(t, agent, sampleRequest())
	require.NoError(t, err)
	err = agent.Send(sampleRequest())

	assert.EqualError(t, err, "private/smtp socket: delivery agent connection already used")
}

func TestOpenAgent_AnnouncementErrors(t *testing.T) {
	tests := []struct {
		name    string
		script  func(p *peer)
		wantIs  error
		wantMsg string
	}{
		{"wrong protocol", func(p *peer) { p.announce("delivery_status_protocol") },
			ErrMalformedResponse, "private/smtp socket: malformed response"},
		{"closed without announcement", func(p *peer) {},
			ErrMalformedResponse, "private/smtp socket: malformed response"},
		{"announcement with extra attribute", func(p *peer) {
			p.send("protocol\x00delivery_request_protocol\x00x\x00y\x00\x00")
		}, ErrMalformedResponse, "private/smtp socket: malformed response"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := startFake(t, "smtp", tt.script)
			agent, err := OpenAgent(fake.queueDir, "smtp", time.Second)
			require.NoError(t, err)
			defer agent.Close()
			readable(t, agent)
			err = agent.ReadAnnouncement()
			assert.ErrorIs(t, err, tt.wantIs)
			assert.EqualError(t, err, tt.wantMsg)
		})
	}
}

func TestOpenAgent_NoSocket(t *testing.T) {
	_, err := OpenAgent(t.TempDir(), "smtp", time.Second)

	var connectErr *attr.ConnectError
	assert.ErrorAs(t, err, &connectErr)
	assert.ErrorIs(t, err, syscall.ENOENT)
	assert.EqualError(t, err, "connect to transport private/smtp: No such file or directory")
}

func TestOpenAgent_FullBacklog(t *testing.T) {
	// A listener that never accepts, with the shortest backlog: once it is
	// full, a non-blocking connect fails at once instead of waiting.
	queueDir := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(queueDir, "private"), 0o755))
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	defer unix.Close(fd)
	require.NoError(t, unix.Bind(fd, &unix.SockaddrUnix{Name: filepath.Join(queueDir, "private", "smtp")}))
	require.NoError(t, unix.Listen(fd, 0))

	var err2 error
	for range 10 {
		var agent *Agent
		agent, err2 = OpenAgent(queueDir, "smtp", time.Second)
		if err2 != nil {
			break
		}
		defer agent.Close()
	}

	assert.ErrorIs(t, err2, syscall.EAGAIN)
	assert.EqualError(t, err2, "connect to transport private/smtp: Resource temporarily unavailable")
}

func TestOpenAgent_AnnouncementTimeoutText(t *testing.T) {
	fake := startFake(t, "smtp", func(p *peer) {})
	agent, err := OpenAgent(fake.queueDir, "smtp", time.Second)
	require.NoError(t, err)
	defer agent.Close()

	err = agent.AnnouncementTimeout()

	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.EqualError(t, err, "timeout connecting to transport: smtp")
}

func TestStats_ZeroTimesAreZero(t *testing.T) {
	b := Stats{}.marshal()
	assert.Equal(t, make([]byte, msgStatsSize), b)
}
