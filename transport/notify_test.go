package transport

import (
	"context"
	"io"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"oqmgr-go/internal/attr"
)

func TestNotify_Transcript(t *testing.T) {
	tests := []struct {
		name string
		req  NotifyRequest
		want string
	}{
		{
			name: "bounce flush",
			req: NotifyRequest{Request: NotifyFlush, QueueName: "active", QueueID: "4F2A81C3D",
				Encoding: "8bit", Sender: "s@example.org", RetFlags: 1, VERPDelimiters: "+="},
			want: "nrequest\x001\x00flags\x000\x00queue_name\x00active\x00queue_id\x004F2A81C3D\x00" +
				"encoding\x008bit\x00smtputf8\x000\x00sender\x00s@example.org\x00envelope_id\x00\x00" +
				"ret_flags\x001\x00\x00",
		},
		{
			name: "defer flush with VERP",
			req: NotifyRequest{Request: NotifyVERP, Flags: NotifyFlagDelRcpt, QueueName: "active",
				QueueID: "4F2A81C3D", SMTPUTF8: 3, Sender: "s@example.org", EnvelopeID: "e1",
				VERPDelimiters: "+="},
			want: "nrequest\x003\x00flags\x002\x00queue_name\x00active\x00queue_id\x004F2A81C3D\x00" +
				"encoding\x00\x00smtputf8\x003\x00sender\x00s@example.org\x00envelope_id\x00e1\x00" +
				"ret_flags\x000\x00verp_delimiters\x00+=\x00\x00",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			requests := make(chan []byte, 1)
			fake := startFake(t, "bounce", func(p *peer) {
				p.announce("delivery_status_protocol")
				requests <- p.readLists(1)
				p.send("status\x000\x00\x00")
			})

			status, err := Notify(context.Background(), fake.queueDir, "bounce", tt.req, time.Second)

			require.NoError(t, err)
			assert.Equal(t, 0, status)
			assert.Equal(t, tt.want, string(<-requests))
		})
	}
}

func TestNotify_ServerStatusPassedOn(t *testing.T) {
	fake := startFake(t, "trace", func(p *peer) {
		p.announce("delivery_status_protocol")
		p.readLists(1)
		p.send("status\x004294967295\x00\x00")
	})

	status, err := Notify(context.Background(), fake.queueDir, "trace",
		NotifyRequest{Request: NotifyTrace, Flags: 1024, QueueName: "active", QueueID: "X"}, time.Second)

	require.NoError(t, err)
	assert.Equal(t, -1, status)
}

func TestNotify_Failures(t *testing.T) {
	tests := []struct {
		name        string
		script      func(p *peer)
		timeout     time.Duration
		wantIs      error
		wantMsg     string
		wantWarning string
	}{
		{"wrong protocol", func(p *peer) { p.announce("delivery_request_protocol") }, time.Second, attr.ErrProtocol,
			"read protocol announcement: unexpected protocol delivery_request_protocol from private/defer socket (expected: delivery_status_protocol)",
			"unexpected protocol delivery_request_protocol from private/defer socket (expected: delivery_status_protocol)"},
		{"malformed status", func(p *peer) {
			p.announce("delivery_status_protocol")
			p.readLists(1)
			p.send("status\x00ok\x00\x00")
		}, time.Second, attr.ErrProtocol,
			"read status reply: malformed numerical data from private/defer socket while reading input attribute value: ok",
			"malformed numerical data from private/defer socket while reading input attribute value: ok"},
		{"closed without reply", func(p *peer) {
			p.announce("delivery_status_protocol")
			p.readLists(1)
		}, time.Second, io.EOF,
			"read status reply: end of input from private/defer socket: EOF", ""},
		{"hung after request", func(p *peer) {
			p.announce("delivery_status_protocol")
			p.readLists(1)
			time.Sleep(time.Second)
		}, 50 * time.Millisecond, os.ErrDeadlineExceeded, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := startFake(t, "defer", tt.script)

			status, err := Notify(context.Background(), fake.queueDir, "defer",
				NotifyRequest{Request: NotifyWarn, QueueName: "active", QueueID: "X"}, tt.timeout)

			assert.Equal(t, -1, status)
			assert.ErrorIs(t, err, tt.wantIs)
			if tt.wantMsg != "" {
				assert.EqualError(t, err, tt.wantMsg)
			}
			assert.Equal(t, tt.wantWarning, NoticeWarning(err), "warning the C queue manager logs")
		})
	}
}

func TestNotify_NoServer(t *testing.T) {
	status, err := Notify(context.Background(), t.TempDir(), "bounce", NotifyRequest{}, time.Second)

	assert.Equal(t, -1, status)
	assert.EqualError(t, err, "connect to private/bounce: No such file or directory")
	assert.Empty(t, NoticeWarning(err), "the C queue manager logs no warning for a failed connect")
}

func TestDeferAppend_Transcript(t *testing.T) {
	requests := make(chan []byte, 1)
	fake := startFake(t, "defer", func(p *peer) {
		p.announce("delivery_status_protocol")
		requests <- p.readLists(1)
		p.send("status\x000\x00\x00")
	})
	rcpt := RequestRecipient{OrigAddress: "o@example.com", Address: "a@example.com", Offset: 401, Notify: 2}
	dsn := DSN{Status: "5.1.1", Action: "failed", Reason: "mail transport unavailable"}

	status, err := DeferAppend(context.Background(), fake.queueDir, "defer", 0, "4F2A81C3D", rcpt, dsn, time.Second)

	require.NoError(t, err)
	assert.Equal(t, 0, status)
	assert.Equal(t, "nrequest\x000\x00flags\x000\x00queue_id\x004F2A81C3D\x00"+
		"original_recipient\x00o@example.com\x00recipient\x00a@example.com\x00offset\x00401\x00"+
		"dsn_orig_rcpt\x00\x00notify_flags\x002\x00"+
		"status\x004.0.0\x00diag_type\x00\x00diag_text\x00\x00mta_type\x00\x00mta_mname\x00\x00"+
		"action\x00delayed\x00reason\x00mail transport unavailable\x00\x00", string(<-requests))
}

func TestValidDeferStatus(t *testing.T) {
	tests := []struct {
		status string
		want   bool
	}{
		{"4.3.0", true},
		{"4.100.999", true},
		{"4.4.1 extra text", true},
		{"5.1.1", false},
		{"2.0.0", false},
		{"4.3", false},
		{"4..0", false},
		{"4.3.0000", false},
		{"4.1000.0", false},
		{"4.3.x", false},
		{"", false},
	}
	for _, tt := range tests {
		t.Run(tt.status, func(t *testing.T) {
			assert.Equal(t, tt.want, validDeferStatus(tt.status))
		})
	}
}
