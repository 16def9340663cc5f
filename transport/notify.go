package transport

// Requests to bounce(8), following Postfix's abounce.c (the queue
// manager's asynchronous flush, warn and trace requests), defer.c
// (defer_append) and mail_command_client.c (the one-shot exchange).

import (
	"context"
	"errors"
	"io"
	"strings"
	"time"

	"oqmgr-go/internal/attr"
)

// Request codes for [NotifyRequest.Request] (bounce.h). Code 4, a single
// recipient bounce, is used by delivery agents only.
const (
	NotifyAppend = 0 // add one recipient to a log; see DeferAppend
	NotifyFlush  = 1 // send the notice built from the log and delete the log
	NotifyWarn   = 2 // send a delay warning from the defer log and keep the log
	NotifyVERP   = 3 // like NotifyFlush, with one notice per recipient
	NotifyTrace  = 5 // send a delivery status report from the trace log
)

// Bounce flags for [NotifyRequest.Flags] (bounce.h). Trace requests carry
// the message's trace flags instead.
const (
	NotifyFlagClean   = 1 // the server deletes the log if it fails
	NotifyFlagDelRcpt = 2 // the server marks the reported recipients done
)

// NotifyRequest is a request to bounce(8) to send a notice built from one of
// its logs.
// The service the request goes to (bounce, defer or trace) selects the log.
type NotifyRequest struct {
	Request    int // Notify* code
	Flags      int // NotifyFlag* bits, or trace flags for NotifyTrace
	QueueName  string
	QueueID    string
	Encoding   string
	SMTPUTF8   int // send-options bits, sent as SendOptsAttr
	Sender     string
	EnvelopeID string
	RetFlags   int

	// VERPDelimiters is sent, as verp_delimiters, only with NotifyVERP.
	VERPDelimiters string
}

// encode builds the request list in the order that bounce(8) scans it.
func (req NotifyRequest) encode() ([]byte, error) {
	var b attr.Builder
	b.Int("nrequest", req.Request)
	b.Int("flags", req.Flags)
	b.Str("queue_name", cstr(req.QueueName))
	b.Str("queue_id", cstr(req.QueueID))
	b.Str("encoding", cstr(req.Encoding))
	b.Int(SendOptsAttr, req.SMTPUTF8)
	b.Str("sender", cstr(req.Sender))
	b.Str("envelope_id", cstr(req.EnvelopeID))
	b.Int("ret_flags", req.RetFlags)
	if req.Request == NotifyVERP {
		b.Str("verp_delimiters", cstr(req.VERPDelimiters))
	}
	b.End()
	return b.Bytes()
}

// NoticeTimeout bounds each wait of a [Notify] exchange, as the fixed
// reply timeout of Postfix's abounce.c does.
const NoticeTimeout = 1000 * time.Second

// Notify sends req to private/<service> under queueDir and returns the
// server's status: 0 on success. Timeout bounds the connect and each read
// and write; the C queue manager uses [NoticeTimeout] for these requests.
//
// On any failure Notify returns -1 and an error. A connect failure is an
// *attr.ConnectError reading "connect to private/<service>: <strerror>".
// The caller logs the C queue manager's message for a failed notice, such
// as "<id>: status=deferred (bounce failed)".
func Notify(ctx context.Context, queueDir, service string, req NotifyRequest, timeout time.Duration) (status int, err error) {
	request, err := req.encode()
	if err != nil {
		return -1, err
	}
	return commandClient(ctx, queueDir, service, request, timeout)
}

// DeferAppend records in the defer log of bounce(8), at private/<service>
// (normally private/defer), that one recipient was deferred, and returns
// the server's status: 0 on success. The C queue manager does this itself
// only when even the retry transport is unavailable.
//
// Like Postfix's defer_append, it sends the action "delayed" whatever
// dsn.Action holds, and replaces a status that is not a valid 4.x.y code
// with 4.0.0.
//
// TODO(postfix): defer_append also sends address verification probes
// (flags 256) to verify(8) and "sendmail -bv" requests (flags 512) to the
// trace service, logs the deferral, and sends the recipient's domain to
// flush(8). Routing those, the log line and the flush request
// are left to the caller.
func DeferAppend(ctx context.Context, queueDir, service string, flags int, queueID string,
	rcpt RequestRecipient, dsn DSN, timeout time.Duration) (status int, err error) {
	request, err := encodeDeferAppend(flags, queueID, rcpt, dsn)
	if err != nil {
		return -1, err
	}
	return commandClient(ctx, queueDir, service, request, timeout)
}

// encodeDeferAppend builds the request list of DeferAppend.
func encodeDeferAppend(flags int, queueID string, rcpt RequestRecipient, dsn DSN) ([]byte, error) {
	dsn.Action = "delayed"
	if !validDeferStatus(dsn.Status) {
		dsn.Status = "4.0.0"
	}

	var b attr.Builder
	b.Int("nrequest", NotifyAppend)
	b.Int("flags", flags)
	b.Str("queue_id", cstr(queueID))
	appendRecipient(&b, rcpt)
	dsn.appendTo(&b)
	b.End()
	return b.Bytes()
}

// commandClient performs one exchange with a bounce(8) service: connect,
// check the announcement, send request, read the status, close.
func commandClient(ctx context.Context, queueDir, service string, request []byte, timeout time.Duration) (int, error) {
	conn, err := attr.Dial(ctx, queueDir, classPrivate, service, timeout)
	if err != nil {
		return -1, err
	}
	defer conn.Close()
	return exchangeCommand(ctx, conn, request)
}

// exchangeCommand runs the exchange of commandClient on an open connection.
func exchangeCommand(ctx context.Context, conn *attr.Conn, request []byte) (int, error) {
	if err := conn.ExpectProtocol(ctx, protoBounce); err != nil {
		return -1, &readError{stage: "read protocol announcement", cause: err}
	}
	if err := conn.Write(ctx, request); err != nil {
		return -1, err
	}
	var status int
	if err := conn.Scan(ctx, attr.Int("status", &status)); err != nil {
		return -1, &readError{stage: "read status reply", cause: err}
	}
	return status, nil
}

// readError is a failed read of a bounce(8) service's announcement or reply.
type readError struct {
	stage string // "read protocol announcement" or "read status reply"
	cause error  // from the attribute reader
}

func (e *readError) Error() string { return e.stage + ": " + e.cause.Error() }
func (e *readError) Unwrap() error { return e.cause }

// NoticeWarning returns the warning the C queue manager logs when a
// [Notify] request fails, before its "status=deferred (bounce failed)"
// line, or "" when it logs none. A failed connect, a timeout and a closed
// connection are silent. A reply that ends in the middle or breaks the
// protocol gets the attribute reader's warning, e.g. "malformed numerical
// data from private/defer socket while reading input attribute value: ok".
// Other errors are returned whole.
func NoticeWarning(err error) string {
	var connectErr *attr.ConnectError
	if errors.As(err, &connectErr) || isTimeout(err) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return ""
	}
	if errors.Is(err, io.EOF) {
		// Seen with the C oqmgr of Postfix 3.7.11: a service that closes
		// the connection instead of replying gets no warning.
		return ""
	}
	var re *readError
	if errors.As(err, &re) && (errors.Is(err, attr.ErrProtocol) || errors.Is(err, io.ErrUnexpectedEOF)) {
		return readerText(re.cause)
	}
	return err.Error()
}

// validDeferStatus reports whether status is an enhanced status code of
// class 4 as dsn_valid in dsn_util.c accepts it: "4.", one to three digits,
// ".", one to three digits, then the end or white space.
func validDeferStatus(status string) bool {
	rest, ok := strings.CutPrefix(status, "4.")
	if !ok {
		return false
	}
	subject, rest, ok := strings.Cut(rest, ".")
	if !ok || !isDigits(subject) {
		return false
	}
	detail := rest
	if i := strings.IndexAny(rest, " \t\n\v\f\r"); i >= 0 {
		detail = rest[:i]
	}
	return isDigits(detail)
}

// isDigits reports whether s has one to three decimal digits and nothing else.
func isDigits(s string) bool {
	if len(s) < 1 || len(s) > 3 {
		return false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
