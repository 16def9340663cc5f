package transport

// The delivery request and reply follow Postfix's qmgr_deliver.c
// (qmgr_deliver_send_request, qmgr_deliver_final_reply) and the attribute
// helpers rcpt_print.c, dsb_scan.c and msg_stats_print.c.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"oqmgr-go/internal/attr"
)

var (
	// ErrMalformedResponse matches errors from [Agent.ReadAnnouncement]
	// and [Agent.ReadReply] when the agent's announcement or reply is missing,
	// truncated or not what the protocol requires. The agent closing the
	// connection without a reply is also a malformed response, as in the C
	// queue manager. The error text is "private/<transport> socket:
	// malformed response".
	ErrMalformedResponse = errors.New("malformed response")

	// ErrPrematureDisconnect matches errors from
	// [Agent.ReadAnnouncement] and [Agent.ReadReply] when reading from the agent fails at the socket
	// level, for example with a connection reset. The error text is
	// "private/<transport> socket: premature disconnect".
	//
	// NOTE: on Linux the C queue manager logs a reset as a malformed
	// response, because its pre-read check (peekfd, an FIONREAD ioctl) only
	// fails for a bad descriptor. We keep the two apart because the caller
	// handles both the same way and the distinction helps an operator.
	ErrPrematureDisconnect = errors.New("premature disconnect")

	// ErrRequestWrite matches errors from [Agent.Send] when the request
	// could not be sent. The C queue manager then marks the transport
	// unavailable, not just the message for retry. The error text is
	// "write to process (<transport>): <strerror>".
	ErrRequestWrite = errors.New("request write failed")
)

// agentError shows msg only, so the text matches the C queue manager's
// warning, while errors.Is and errors.As still reach the sentinel and the
// underlying cause.
type agentError struct {
	msg   string
	kind  error
	cause error
}

func (e *agentError) Error() string   { return e.msg }
func (e *agentError) Unwrap() []error { return []error{e.kind, e.cause} }

// Agent is one connection to a delivery agent on private/<transport>,
// driven by the caller's event loop as the C queue manager drives its
// agents: the caller watches [Agent.Fd] and, each time it turns readable,
// makes the one call the conversation is waiting for. First
// [Agent.ReadAnnouncement], then [Agent.Send] with one request and, once
// readable again, [Agent.ReadReply]. Each read or write that would block
// waits at most the timeout given to [OpenAgent]; the waits for the
// announcement and the reply to start are the caller's to bound.
type Agent struct {
	sock      *attr.Socket
	timeout   time.Duration
	r         *attr.Reader
	transport string
	label     string
	used      bool
}

// OpenAgent connects to the delivery agent private/<transport> under
// queueDir without waiting for the agent to accept. The connection sits in
// the listen backlog until master(8) has a free agent process, and the
// agent's announcement makes it readable.
//
// A connect failure, including a full backlog (EAGAIN), is an
// *attr.ConnectError reading "connect to transport private/<transport>:
// <strerror>". The C queue manager then marks the transport unavailable.
func OpenAgent(queueDir, transport string, timeout time.Duration) (*Agent, error) {
	endpoint := classPrivate + "/" + transport
	sock, err := attr.DialSocket(filepath.Join(queueDir, endpoint))
	if err != nil {
		return nil, &attr.ConnectError{Kind: "transport", Endpoint: endpoint, Err: err}
	}
	return newAgent(sock, transport, timeout), nil
}

func newAgent(sock *attr.Socket, transport string, timeout time.Duration) *Agent {
	label := classPrivate + "/" + transport + " socket"
	// Announcements and replies are short; a longer value still reads
	// whole, through more than one fill of the buffer.
	r := attr.NewReaderSize(sock, label, 512)
	return &Agent{sock: sock, timeout: timeout, r: r, transport: transport, label: label}
}

// Fd returns the socket for the caller's event loop to watch for input.
// It stays owned by the Agent; only [Agent.Close] closes it.
func (a *Agent) Fd() int { return a.sock.Fd() }

// startIO bounds the read or write that follows by the timeout.
func (a *Agent) startIO() {
	if a.timeout > 0 {
		_ = a.sock.SetDeadline(time.Now().Add(a.timeout))
	}
}

// ReadAnnouncement reads the agent's protocol announcement. A bad one
// matches [ErrMalformedResponse] or [ErrPrematureDisconnect].
func (a *Agent) ReadAnnouncement() error {
	a.startIO()
	if err := a.r.Scan(attr.Expect("protocol", protoDeliver)); err != nil {
		return a.replyError(err)
	}
	return nil
}

// AnnouncementTimeout is the error for an agent that did not announce
// itself within the caller's limit (daemon_timeout in the C queue
// manager). It matches context.DeadlineExceeded.
func (a *Agent) AnnouncementTimeout() error {
	return &agentError{
		msg:   "timeout connecting to transport: " + a.transport,
		kind:  context.DeadlineExceeded,
		cause: context.DeadlineExceeded,
	}
}

// Stats carries the times sent in the request's "time" attribute.
type Stats struct {
	IncomingArrival time.Time // from the queue file's T record
	ActiveArrival   time.Time // when the message was read into memory
}

// msgStatsSize is sizeof(MSG_STATS) on LP64 Linux: five struct timeval of
// two int64 each, an int reuse count and four bytes of padding. The agent
// rejects any other size.
const msgStatsSize = 88

// marshal lays out the C struct MSG_STATS (msg_stats.h) for a little-endian
// LP64 host. The agent hand-off, connection set-up and delivery times and
// the reuse count are filled in by the agent, so they are sent as zero.
//
// TODO(postfix): msg_stats_print sends the host's own struct layout; this
// encoding is right for linux/amd64 and linux/arm64 only.
func (s Stats) marshal() []byte {
	b := make([]byte, msgStatsSize)
	putTimeval(b[0:16], s.IncomingArrival)
	putTimeval(b[16:32], s.ActiveArrival)
	return b
}

func putTimeval(b []byte, t time.Time) {
	if t.IsZero() {
		return
	}
	putInt64(b[0:8], t.Unix())
	putInt64(b[8:16], int64(t.Nanosecond()/1000))
}

func putInt64(b []byte, v int64) {
	for i := range 8 {
		b[i] = byte(v >> (8 * i))
	}
}

// RequestRecipient is one recipient of a delivery request (rcpt_print.c).
type RequestRecipient struct {
	OrigAddress string // original recipient (O record), or empty
	Address     string // recipient to deliver to
	Offset      int64  // file offset of the R record, or -1 for "do not mark done"
	DSNOrig     string // DSN ORCPT, or empty
	Notify      int    // DSN NOTIFY bits, or 0
}

// DeliveryRequest is the data the queue manager sends a delivery agent for
// one delivery. Strings are sent up to their first NUL byte, as the
// C queue manager's NUL-terminated strings would be.
type DeliveryRequest struct {
	Flags      int    // trace flags, connection-cache bits, and 2 (inspect) or 3 (default)
	QueueName  string // normally "active"
	QueueID    string
	Offset     int64 // start of the message content in the queue file
	Size       int64 // length of the message content
	Nexthop    string
	Encoding   string // "7bit", "8bit" or empty
	SMTPUTF8   int    // send-options bits, sent as [SendOptsAttr]
	Sender     string
	EnvelopeID string // DSN ENVID, or empty
	RetFlags   int    // DSN RET bits, or 0
	Stats      Stats

	LogClientName    string
	LogClientAddress string
	LogClientPort    string
	LogProtocolName  string
	LogHeloName      string
	SASLMethod       string
	SASLUsername     string
	SASLSender       string
	LogIdent         string
	RewriteContext   string // normally "local"

	Recipients []RequestRecipient // at least one
}

// encode builds the request: one list of 23 attributes in the order the
// agent scans them strictly, then one list per recipient.
func (req *DeliveryRequest) encode() ([]byte, error) {
	if len(req.Recipients) == 0 {
		return nil, fmt.Errorf("delivery request for %s has no recipients", req.QueueID)
	}

	var b attr.Builder
	b.Int("flags", req.Flags)
	b.Str("queue_name", cstr(req.QueueName))
	b.Str("queue_id", cstr(req.QueueID))
	b.Long("offset", req.Offset)
	b.Long("size", req.Size)
	b.Str("nexthop", cstr(req.Nexthop))
	b.Str("encoding", cstr(req.Encoding))
	b.Int(SendOptsAttr, req.SMTPUTF8)
	b.Str("sender", cstr(req.Sender))
	b.Str("envelope_id", cstr(req.EnvelopeID))
	b.Int("ret_flags", req.RetFlags)
	b.Data("time", req.Stats.marshal())
	b.Str("log_client_name", cstr(req.LogClientName))
	b.Str("log_client_address", cstr(req.LogClientAddress))
	b.Str("log_client_port", cstr(req.LogClientPort))
	b.Str("log_protocol_name", cstr(req.LogProtocolName))
	b.Str("log_helo_name", cstr(req.LogHeloName))
	b.Str("sasl_method", cstr(req.SASLMethod))
	b.Str("sasl_username", cstr(req.SASLUsername))
	b.Str("sasl_sender", cstr(req.SASLSender))
	b.Str("log_ident", cstr(req.LogIdent))
	b.Str("rewrite_context", cstr(req.RewriteContext))
	b.Int("recipient_count", len(req.Recipients))
	b.End()

	for _, rcpt := range req.Recipients {
		appendRecipient(&b, rcpt)
		b.End()
	}
	return b.Bytes()
}

// appendRecipient adds the five recipient attributes without ending the list.
func appendRecipient(b *attr.Builder, rcpt RequestRecipient) {
	b.Str("original_recipient", cstr(rcpt.OrigAddress))
	b.Str("recipient", cstr(rcpt.Address))
	b.Long("offset", rcpt.Offset)
	b.Str("dsn_orig_rcpt", cstr(rcpt.DSNOrig))
	b.Int("notify_flags", rcpt.Notify)
}

// cstr cuts s at its first NUL byte, the end of the string in C.
func cstr(s string) string {
	if i := strings.IndexByte(s, 0); i >= 0 {
		return s[:i]
	}
	return s
}

// DSN is the seven delivery-status strings of an agent reply (dsn_print.c).
// They are all empty unless the agent reports a problem with the
// destination as a whole.
type DSN struct {
	Status   string // enhanced status code such as "4.4.1"
	DiagType string
	DiagText string
	MTAType  string
	MTAName  string
	Action   string
	Reason   string
}

// fields returns scan targets for the seven strings in wire order.
func (d *DSN) fields() []attr.Field {
	return []attr.Field{
		attr.Str("status", &d.Status),
		attr.Str("diag_type", &d.DiagType),
		attr.Str("diag_text", &d.DiagText),
		attr.Str("mta_type", &d.MTAType),
		attr.Str("mta_mname", &d.MTAName),
		attr.Str("action", &d.Action),
		attr.Str("reason", &d.Reason),
	}
}

// appendTo adds the seven strings without ending the list.
func (d DSN) appendTo(b *attr.Builder) {
	b.Str("status", cstr(d.Status))
	b.Str("diag_type", cstr(d.DiagType))
	b.Str("diag_text", cstr(d.DiagText))
	b.Str("mta_type", cstr(d.MTAType))
	b.Str("mta_mname", cstr(d.MTAName))
	b.Str("action", cstr(d.Action))
	b.Str("reason", cstr(d.Reason))
}

// DeliveryReply is a delivery agent's reply to one request.
type DeliveryReply struct {
	DSN    DSN
	Status int // 0 if every recipient reached a final state, else retry is needed
}

// Send writes the one request this connection takes. A failure matches
// [ErrRequestWrite] and reads "write to process (<transport>): <strerror>".
func (a *Agent) Send(req *DeliveryRequest) error {
	if a.used {
		return fmt.Errorf("%s: delivery agent connection already used", a.label)
	}
	a.used = true

	request, err := req.encode()
	if err != nil {
		return err
	}
	a.startIO()
	if _, err := a.sock.Write(request); err != nil {
		return &agentError{
			msg:   fmt.Sprintf("write to process (%s): %s", a.transport, attr.Strerror(err)),
			kind:  ErrRequestWrite,
			cause: err,
		}
	}
	return nil
}

// ReadReply reads the agent's reply to the request. A reply that is
// missing, truncated or not what the protocol requires matches
// [ErrMalformedResponse]; a socket error matches [ErrPrematureDisconnect].
func (a *Agent) ReadReply() (DeliveryReply, error) {
	var reply DeliveryReply
	fields := append(reply.DSN.fields(), attr.Int("status", &reply.Status))
	a.startIO()
	if err := a.r.Scan(fields...); err != nil {
		return DeliveryReply{}, a.replyError(err)
	}
	return reply, nil
}

// ReplyTimeout is the error for an agent that did not reply within the
// caller's limit (daemon_timeout in the C queue manager). It matches
// context.DeadlineExceeded.
func (a *Agent) ReplyTimeout(queueID string) error {
	return &agentError{
		msg:   queueID + ": timeout receiving delivery status from transport: " + a.transport,
		kind:  context.DeadlineExceeded,
		cause: context.DeadlineExceeded,
	}
}

// Close closes the connection, which the caller does after the reply or
// instead of a request.
func (a *Agent) Close() error { return a.sock.Close() }

// replyError turns a failed read of the announcement or reply into the
// C queue manager's two warnings.
func (a *Agent) replyError(err error) error {
	kind := ErrMalformedResponse
	if isSocketError(err) {
		kind = ErrPrematureDisconnect
	}
	return &agentError{msg: a.label + ": " + kind.Error(), kind: kind, cause: err}
}

// isSocketError reports whether a read failed in the socket layer rather
// than through the end of input, a timeout or bad content.
func isSocketError(err error) bool {
	return !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) &&
		!errors.Is(err, attr.ErrProtocol) && !errors.Is(err, context.DeadlineExceeded) &&
		!errors.Is(err, context.Canceled) && !isTimeout(err)
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// ReaderWarning returns the warning the attribute reader logs when an
// agent's reply cannot be read, which the C queue manager logs before its
// "malformed response" line, or "" when err carries none.
func ReaderWarning(err error) string {
	var ae *agentError
	if !errors.As(err, &ae) || ae.cause == nil {
		return ""
	}
	if !errors.Is(ae.cause, attr.ErrProtocol) && !errors.Is(ae.cause, io.ErrUnexpectedEOF) {
		return ""
	}
	return readerText(ae.cause)
}

// readerText returns the text of an attribute reader error without the
// sentinel it wraps for errors.Is, which is not part of the C warning.
func readerText(err error) string {
	text := err.Error()
	if inner := errors.Unwrap(err); inner != nil {
		text = strings.TrimSuffix(text, ": "+inner.Error())
	}
	return text
}
