package attr

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// Conn is a client connection to a Postfix service that speaks attribute
// lists. Every read or write gets its own deadline: the Conn's timeout from
// the start of that operation, or the context's deadline if that is earlier.
// Cancelling the context interrupts an operation in progress.
//
// A Conn is not safe for concurrent use.
type Conn struct {
	nc      stream
	r       *Reader
	label   string
	timeout time.Duration

	// For a Socket, one watch per context shuts the connection down when
	// the context ends, instead of one watch per operation.
	watched   context.Context
	stopWatch func() bool
}

// stream is the connection under a Conn: a net.Conn or a *Socket.
type stream interface {
	io.ReadWriteCloser
	SetDeadline(t time.Time) error
}

// NewConn wraps an established connection. Label names the peer in errors,
// in Postfix's form "private/rewrite socket". A timeout of zero or less
// means operations are bounded only by their context.
func NewConn(nc net.Conn, label string, timeout time.Duration) *Conn {
	return &Conn{nc: nc, r: NewReader(nc, label), label: label, timeout: timeout}
}

// Dial connects to the AF_UNIX stream socket class/service under queueDir,
// as Postfix's mail_connect does, for example private/rewrite. The returned
// Conn is labelled "class/service socket". A failure is a *[ConnectError].
//
// Dial does not read the protocol announcement; call [Conn.ExpectProtocol].
func Dial(ctx context.Context, queueDir, class, service string, timeout time.Duration) (*Conn, error) {
	endpoint := class + "/" + service
	dialer := net.Dialer{Timeout: timeout}
	nc, err := dialer.DialContext(ctx, "unix", filepath.Join(queueDir, class, service))
	if err != nil {
		return nil, &ConnectError{Endpoint: endpoint, Err: err}
	}
	return NewConn(nc, endpoint+" socket", timeout), nil
}

// DialDirect is [Dial] for a caller that waits on its own thread: the
// Conn's reads and writes wait in poll(2) (see [Socket]) instead of in the
// runtime's network poller. The connect itself never waits.
func DialDirect(queueDir, class, service string, timeout time.Duration) (*Conn, error) {
	endpoint := class + "/" + service
	sock, err := DialSocket(filepath.Join(queueDir, class, service))
	if err != nil {
		return nil, &ConnectError{Endpoint: endpoint, Err: err}
	}
	return &Conn{nc: sock, r: NewReaderSize(sock, endpoint+" socket", 1024), label: endpoint + " socket", timeout: timeout}, nil
}

// Label returns the name of the peer used in error messages.
func (c *Conn) Label() string { return c.label }

// Write sends encoded lists, usually the result of [Builder.Bytes].
func (c *Conn) Write(ctx context.Context, p []byte) error {
	err := c.do(ctx, func() error {
		_, err := c.nc.Write(p)
		return err
	})
	if err != nil {
		return fmt.Errorf("write %s: %w", c.label, err)
	}
	return nil
}

// ReadList reads one list, as [Reader.ReadList] does.
func (c *Conn) ReadList(ctx context.Context) ([]Attr, error) {
	var list []Attr
	err := c.do(ctx, func() error {
		if err := c.waitInput(); err != nil {
			return err
		}
		var err error
		list, err = c.r.ReadList()
		return err
	})
	return list, err
}

// Scan reads one list strictly, as [Reader.Scan] does.
func (c *Conn) Scan(ctx context.Context, fields ...Field) error {
	return c.do(ctx, func() error {
		if err := c.waitInput(); err != nil {
			return err
		}
		return c.r.Scan(fields...)
	})
}

// ExpectProtocol reads the announcement that a Postfix 3.6 or later server
// sends first on every connection: a list holding only protocol=name.
func (c *Conn) ExpectProtocol(ctx context.Context, name string) error {
	return c.Scan(ctx, Expect("protocol", name))
}

// WaitReadable blocks until input arrives or the peer closes the
// connection, bounded only by ctx and not by the Conn's timeout. A client
// uses it to wait for a reply that may take long, such as a delivery
// agent's, before reading the reply under the usual timeout.
func (c *Conn) WaitReadable(ctx context.Context) error {
	return c.doWithin(ctx, 0, func() error {
		_, err := c.r.br.Peek(1)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return c.r.readError(err, "input attribute name")
		}
		return nil
	})
}

// PeerClosed reports whether the server has closed the connection or sent
// something unasked, so a long-lived client should reconnect before its
// next request. It does not block. A connection without a file descriptor,
// such as one end of net.Pipe, reports false unless input is buffered.
func (c *Conn) PeerClosed() bool {
	if c.r.br.Buffered() > 0 {
		return true
	}
	if sock, ok := c.nc.(*Socket); ok {
		return sock.PeerClosed()
	}
	sc, ok := c.nc.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return true
	}

	// Peek without waiting. Data, the end of input and socket errors all
	// make the connection unfit for a new request, and EAGAIN means that
	// nothing has arrived.
	readable := false
	var buf [1]byte
	err = raw.Read(func(fd uintptr) bool {
		_, _, recvErr := unix.Recvfrom(int(fd), buf[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		readable = recvErr != unix.EAGAIN
		return true
	})
	return err != nil || readable
}

// Close closes the connection.
func (c *Conn) Close() error {
	if c.stopWatch != nil {
		c.stopWatch()
		c.stopWatch = nil
	}
	return c.nc.Close()
}

// do runs one I/O operation under the per-operation deadline and ctx.
func (c *Conn) do(ctx context.Context, op func() error) error {
	return c.doWithin(ctx, c.timeout, op)
}

// doWithin runs op with a deadline of timeout from now, or none if timeout
// is zero or less, and ends it early when ctx is done.
func (c *Conn) doWithin(ctx context.Context, timeout time.Duration, op func() error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", c.label, err)
	}

	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
	}
	ctxDeadline, hasCtxDeadline := ctx.Deadline()
	deadlineFromCtx := hasCtxDeadline && (deadline.IsZero() || ctxDeadline.Before(deadline))
	if deadlineFromCtx {
		deadline = ctxDeadline
	}
	if err := c.nc.SetDeadline(deadline); err != nil {
		return fmt.Errorf("%s: set deadline: %w", c.label, err)
	}

	var err error
	if sock, ok := c.nc.(*Socket); ok {
		// A wait in poll(2) does not see a new deadline, so a cancelled
		// context shuts the connection down instead.
		c.watch(ctx, sock)
		err = op()
	} else {
		// A cancelled context moves the deadline into the past, which makes
		// the blocked read or write return at once.
		stop := context.AfterFunc(ctx, func() { _ = c.nc.SetDeadline(time.Unix(1, 0)) })
		err = op()
		stop()
	}
	if err == nil {
		return nil
	}

	// The socket deadline can pass a moment before the context notices its
	// own, so a timeout at the context's deadline counts as the context's.
	if cause := context.Cause(ctx); cause != nil {
		return fmt.Errorf("%w: %w", err, cause)
	}
	if deadlineFromCtx && errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("%w: %w", err, context.DeadlineExceeded)
	}
	return err
}

// watch arranges for sock to be shut down when ctx ends, once per context.
func (c *Conn) watch(ctx context.Context, sock *Socket) {
	if ctx == c.watched || ctx.Done() == nil {
		return
	}
	if c.stopWatch != nil {
		c.stopWatch()
	}
	c.watched = ctx
	c.stopWatch = context.AfterFunc(ctx, sock.Interrupt)
}

// waitInput waits for the first byte of a reply on a Socket with nothing
// buffered. Polling before the read saves the read that would only find
// the socket empty.
func (c *Conn) waitInput() error {
	sock, ok := c.nc.(*Socket)
	if !ok || c.r.br.Buffered() > 0 {
		return nil
	}
	if err := sock.wait(unix.POLLIN); err != nil {
		return c.r.readError(err, "input attribute name")
	}
	return nil
}

// ConnectError reports a failed connection to a Postfix service. Its text
// matches what Postfix logs for the same failure, for example
// "connect to private/bounce: No such file or directory", or with Kind
// "transport", "connect to transport private/smtp: Connection refused".
type ConnectError struct {
	Kind     string // optional word before the endpoint, such as "transport"
	Endpoint string // class/service, such as "private/smtp"
	Err      error
}

func (e *ConnectError) Error() string {
	what := e.Endpoint
	if e.Kind != "" {
		what = e.Kind + " " + e.Endpoint
	}
	return "connect to " + what + ": " + Strerror(e.Err)
}

func (e *ConnectError) Unwrap() error { return e.Err }

// Strerror returns the C library's text for the system error inside err, as
// Postfix prints it with %m, or err's own text when it holds no system error.
// An I/O deadline that passed counts as ETIMEDOUT, which is the errno that
// Postfix's own stream timeouts set.
//
// NOTE: Go's messages are glibc's with the first letter in lower case, so
// this restores the capital. That holds for the connect errors seen here
// (ENOENT, ECONNREFUSED, EAGAIN, EACCES, ENOTSOCK) but is not checked for
// every errno.
func Strerror(err error) string {
	var errno syscall.Errno
	if errors.Is(err, os.ErrDeadlineExceeded) {
		errno = syscall.ETIMEDOUT
	} else if !errors.As(err, &errno) {
		return err.Error()
	}
	text := errno.Error()
	first, size := utf8.DecodeRuneInString(text)
	return string(unicode.ToUpper(first)) + text[size:]
}
