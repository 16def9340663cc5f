package trigger

// The reading rules follow Postfix's trigger_server skeleton
// (src/master/trigger_server.c, functions trigger_server_accept_local,
// trigger_server_accept_fifo and trigger_server_wakeup).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// BufferSize is the largest number of bytes taken from the endpoint for one
// trigger (TRIGGER_BUF_SIZE). Longer input is served as several triggers.
const BufferSize = 1024

// DefaultReadTimeout is how long a socket client may stay silent after it
// connects before the server closes the connection unread, as
// trigger_server does with its 10-second read_wait.
const DefaultReadTimeout = 10 * time.Second

// Listener kinds accepted by NewServer: the master.cf service types that a
// trigger server can run as.
const (
	KindUnix = "unix"
	KindFIFO = "fifo"
)

// ErrMasterGone is wrapped by the error that Serve returns when the
// report to master that the process is available again fails. Postfix
// daemons exit with status 0 in that case.
var ErrMasterGone = errors.New("master is gone")

// Status receives the availability reports that wrap every trigger. The
// implementation for production is master.Status, which writes to fd 5.
type Status interface {
	Taken() error
	Available() error
}

// Logger receives the server's error and debug lines. *maillog.Logger
// implements it.
type Logger interface {
	Error(format string, a ...any)
	Debug(level int, format string, a ...any)
}

// Server reads trigger buffers from the listening endpoint that master
// passes on fd 6 and hands each decoded Request to a callback.
//
// Triggers are served one at a time, as in the single-threaded C skeleton:
// while one socket client is being read, the next ones wait in the listen
// backlog.
type Server struct {
	// ReadTimeout is how long a socket client may stay silent after it
	// connects. NewServer sets it to DefaultReadTimeout. It has no effect
	// on a FIFO.
	ReadTimeout time.Duration

	// Log receives accept errors and debug lines. Nil discards them.
	Log Logger

	// MasterFD, when not negative, is master's status channel. The server
	// stops accepting as soon as it turns readable, because after a reload
	// master sends its first wakeup to the new process: an old process
	// that took it would leave no process running until the next wakeup.
	MasterFD int

	kind     string
	listener *net.UnixListener // set when kind is KindUnix
	fifo     *os.File          // set when kind is KindFIFO
	status   Status

	closeOnce sync.Once
}

// NewServer prepares a server on listener, whose kind is KindUnix for a
// listening stream socket or KindFIFO for a FIFO opened for reading and
// writing. The server works on its own duplicate of the descriptor and does
// not change the blocking mode of listener. The caller still owns listener
// and may close it after NewServer returns.
func NewServer(listener *os.File, kind string, status Status) (*Server, error) {
	if listener == nil {
		return nil, errors.New("trigger: new server: listener is nil")
	}
	if status == nil {
		return nil, errors.New("trigger: new server: status is nil")
	}
	s := &Server{ReadTimeout: DefaultReadTimeout, MasterFD: -1, kind: kind, status: status}

	switch kind {
	case KindUnix:
		l, err := net.FileListener(listener)
		if err != nil {
			return nil, fmt.Errorf("trigger: use %s as unix listener: %w", listener.Name(), err)
		}
		ul, ok := l.(*net.UnixListener)
		if !ok {
			l.Close()
			return nil, fmt.Errorf("trigger: %s is a %s listener, not a unix one", listener.Name(), l.Addr().Network())
		}
		s.listener = ul
	case KindFIFO:
		f, err := dupFIFO(listener)
		if err != nil {
			return nil, err
		}
		s.fifo = f
	default:
		return nil, fmt.Errorf("trigger: new server: unsupported listener kind %q (want %q or %q)", kind, KindUnix, KindFIFO)
	}
	return s, nil
}

// dupFIFO returns a non-blocking duplicate of f that the Go runtime poller
// can wait on and whose read deadline can be set.
func dupFIFO(f *os.File) (*os.File, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("trigger: use %s as fifo: %w", f.Name(), err)
	}
	dup := -1
	var dupErr error
	err = rc.Control(func(fd uintptr) {
		dup, dupErr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	})
	if err == nil {
		err = dupErr
	}
	if err != nil {
		return nil, fmt.Errorf("trigger: duplicate fifo %s: %w", f.Name(), err)
	}
	if err := unix.SetNonblock(dup, true); err != nil {
		unix.Close(dup)
		return nil, fmt.Errorf("trigger: make fifo %s non-blocking: %w", f.Name(), err)
	}
	return os.NewFile(uintptr(dup), f.Name()), nil
}

// Serve reads triggers until ctx ends or a fatal error occurs, and calls
// handle once for every trigger buffer that contains at least one known
// request. handle runs on the Serve goroutine, so it should only pass the
// request on.
//
// Each trigger is wrapped in Taken and Available reports. A failed Taken is
// ignored. A failed Available means master is gone, and Serve returns an
// error that wraps ErrMasterGone. Accept errors are logged and retried with
// a growing pause. Serve returns nil when ctx ends. It closes the server's
// descriptor on return, so it may be called only once.
func (s *Server) Serve(ctx context.Context, handle func(Request)) error {
	defer s.closeOnce.Do(s.close)
	if s.kind == KindUnix {
		return s.serveSocket(ctx, handle)
	}
	return s.serveFIFO(ctx, handle)
}

func (s *Server) close() {
	if s.listener != nil {
		s.listener.Close()
	}
	if s.fifo != nil {
		s.fifo.Close()
	}
}

// pastDeadline is a time in the past, used to wake blocked waits when ctx ends.
var pastDeadline = time.Unix(1, 0)

const (
	minAcceptPause = 5 * time.Millisecond
	maxAcceptPause = time.Second
)

func (s *Server) serveSocket(ctx context.Context, handle func(Request)) error {
	stop := context.AfterFunc(ctx, func() { s.listener.SetDeadline(pastDeadline) })
	defer stop()

	var pause time.Duration
	for {
		if s.MasterFD >= 0 {
			gone, err := s.waitAcceptable(ctx)
			if err != nil {
				return err
			}
			if gone || ctx.Err() != nil {
				return nil
			}
		}
		conn, err := s.listener.AcceptUnix()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("trigger: accept connection: %w", err)
			}

			// Errors such as EMFILE repeat while the socket stays
			// readable, so pause instead of spinning.
			s.logError("accept connection: %v", err)
			pause = min(max(2*pause, minAcceptPause), maxAcceptPause)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(pause):
			}
			continue
		}
		pause = 0

		err = s.serveConn(ctx, conn, handle)
		conn.Close()
		if err != nil {
			return err
		}
	}
}

// serveConn waits for the client to write, then serves one buffer. A
// client that stays silent for ReadTimeout is dropped without a status
// report, as in trigger_server_accept_local.
//
// NOTE: unix_trigger clients write the request and its NUL terminator
// separately, and the connection is closed right after the first read, as
// in C. A client whose NUL arrives after the close gets EPIPE. postqueue
// and the Postfix daemons ignore SIGPIPE, but postkick(1) can die of it
// after its request was served.
func (s *Server) serveConn(ctx context.Context, conn *net.UnixConn, handle func(Request)) error {
	if err := conn.SetReadDeadline(time.Now().Add(s.ReadTimeout)); err != nil {
		s.debug("set trigger read deadline: %v", err)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetReadDeadline(pastDeadline) })
	defer stop()

	rc, err := conn.SyscallConn()
	if err != nil {
		s.debug("trigger connection: %v", err)
		return nil
	}
	if err := waitReadable(rc); err != nil {
		s.debug("trigger connection closed unread: %v", err)
		return nil
	}
	tail := &lastByteReader{r: conn}
	err = s.serveBuffer(tail, handle)
	if tail.n > 0 && tail.last != 0 {
		// Socket clients such as postkick write the request and its
		// terminating NUL in two writes and then wait for the close. A
		// close before the NUL arrives makes that second write fail with
		// EPIPE, which kills postkick, so wait briefly for it. The request
		// itself was taken from the first read, as in the C server.
		_ = conn.SetReadDeadline(time.Now().Add(trailerWait))
		var nul [BufferSize]byte
		_, _ = conn.Read(nul[:])
	}
	return err
}

// trailerWait bounds the wait for the NUL that ends a socket trigger.
const trailerWait = 100 * time.Millisecond

// lastByteReader remembers how much was read and the last byte.
type lastByteReader struct {
	r    io.Reader
	n    int
	last byte
}

func (l *lastByteReader) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	if n > 0 {
		l.n += n
		l.last = p[n-1]
	}
	return n, err
}

func (s *Server) serveFIFO(ctx context.Context, handle func(Request)) error {
	stop := context.AfterFunc(ctx, func() { s.fifo.SetReadDeadline(pastDeadline) })
	defer stop()

	rc, err := s.fifo.SyscallConn()
	if err != nil {
		return fmt.Errorf("trigger: fifo %s: %w", s.fifo.Name(), err)
	}
	for {
		if err := waitReadable(rc); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("trigger: wait for fifo %s: %w", s.fifo.Name(), err)
		}
		if err := s.serveBuffer(s.fifo, handle); err != nil {
			return err
		}
	}
}

// serveBuffer makes the single read of one trigger, wrapped in status
// reports, as trigger_server_wakeup does. An empty read (the client closed
// without writing) still counts as a trigger for master.
func (s *Server) serveBuffer(r io.Reader, handle func(Request)) error {
	_ = s.status.Taken() // the C skeleton ignores this failure too, because a lost report only skews master's process count

	buf := make([]byte, BufferSize)
	n, err := r.Read(buf)
	switch {
	case err == nil || errors.Is(err, io.EOF):
		req := Parse(buf[:n])
		s.debug("trigger %q: %v", buf[:n], req)
		if req != 0 {
			handle(req)
		}
	default:
		s.debug("read trigger: %v", err)
	}

	if err := s.status.Available(); err != nil {
		return fmt.Errorf("trigger: report available to master: %w: %w", ErrMasterGone, err)
	}
	return nil
}

// waitReadable blocks until the descriptor behind rc is readable, without
// reading from it, or until its read deadline passes. End of file and
// errors count as readable because the next read reports them.
func waitReadable(rc syscall.RawConn) error {
	var pollErr error
	err := rc.Read(func(fd uintptr) bool {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 0)
		for errors.Is(err, unix.EINTR) {
			n, err = unix.Poll(fds, 0)
		}
		if err != nil {
			pollErr = err
			return true
		}
		return n > 0
	})
	if err != nil {
		return err
	}
	return pollErr
}

func (s *Server) logError(format string, a ...any) {
	if s.Log != nil {
		s.Log.Error(format, a...)
	}
}

func (s *Server) debug(format string, a ...any) {
	if s.Log != nil {
		s.Log.Debug(1, format, a...)
	}
}

// waitAcceptable waits until a client is waiting on the listening socket
// and reports whether master's status channel turned readable first. Like
// the C event loop, which handles descriptor 5 before 6, it prefers the
// master channel when both are ready.
func (s *Server) waitAcceptable(ctx context.Context) (masterGone bool, err error) {
	rc, err := s.listener.SyscallConn()
	if err != nil {
		return false, fmt.Errorf("trigger: listener: %w", err)
	}
	var listenFD int
	if err := rc.Control(func(fd uintptr) { listenFD = int(fd) }); err != nil {
		return false, fmt.Errorf("trigger: listener: %w", err)
	}
	fds := []unix.PollFd{
		{Fd: int32(s.MasterFD), Events: unix.POLLIN},
		{Fd: int32(listenFD), Events: unix.POLLIN},
	}
	for ctx.Err() == nil {
		fds[0].Revents, fds[1].Revents = 0, 0
		n, err := unix.Poll(fds, 200)
		if errors.Is(err, unix.EINTR) || n == 0 {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("trigger: poll: %w", err)
		}
		if fds[0].Revents != 0 {
			return true, nil
		}
		if fds[1].Revents != 0 {
			return false, nil
		}
	}
	return false, nil
}
