package attr

import (
	"io"
	"os"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Socket is a non-blocking AF_UNIX stream socket that bypasses the Go
// runtime's network poller. A read or write that would block waits in
// poll(2) on the calling goroutine's thread, up to the deadline, as a
// Postfix VSTREAM with a timeout does. The scheduling loop uses it for
// the peers it talks to itself: while it waits it has nothing else to do,
// and a thread that sleeps in the kernel costs less than a goroutine that
// the runtime parks and wakes.
//
// Only SetDeadline and Interrupt may be called from other goroutines.
type Socket struct {
	fd       int
	deadline atomic.Int64 // Unix nanoseconds, or 0 for none
}

// DialSocket connects to the socket at path without waiting for the
// server to accept, as Postfix's non-blocking mail_connect does. A full
// listen queue fails with EAGAIN. The error is the bare errno, for the
// caller to word.
func DialSocket(path string) (*Socket, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	err = unix.Connect(fd, &unix.SockaddrUnix{Name: path})
	// A connect interrupted by a signal completes in the background.
	if err != nil && err != unix.EINPROGRESS && err != unix.EINTR {
		unix.Close(fd)
		return nil, err
	}
	return &Socket{fd: fd}, nil
}

// NewSocket takes over fd, an open stream socket, and makes it
// non-blocking.
func NewSocket(fd int) (*Socket, error) {
	if err := unix.SetNonblock(fd, true); err != nil {
		return nil, err
	}
	return &Socket{fd: fd}, nil
}

// Fd returns the descriptor, for an event loop to watch.
func (s *Socket) Fd() int { return s.fd }

// SetDeadline bounds every later wait; the zero time removes the bound.
// A wait that reaches it fails with os.ErrDeadlineExceeded, as on a
// net.Conn.
func (s *Socket) SetDeadline(t time.Time) error {
	if t.IsZero() {
		s.deadline.Store(0)
	} else {
		s.deadline.Store(t.UnixNano())
	}
	return nil
}

// Interrupt ends a wait in progress and every later one by shutting the
// connection down; the connection is unusable afterwards.
func (s *Socket) Interrupt() {
	_ = unix.Shutdown(s.fd, unix.SHUT_RDWR)
}

// Read reads what has arrived, waiting when nothing has. The end of input
// is io.EOF.
func (s *Socket) Read(p []byte) (int, error) {
	for {
		n, err := unix.Read(s.fd, p)
		switch {
		case err == nil && n == 0 && len(p) > 0:
			return 0, io.EOF
		case err == nil:
			return n, nil
		case err == unix.EINTR:
		case err == unix.EAGAIN:
			if err := s.wait(unix.POLLIN); err != nil {
				return 0, err
			}
		default:
			return 0, os.NewSyscallError("read", err)
		}
	}
}

// Write sends all of p, waiting whenever the socket buffer is full.
// MSG_NOSIGNAL turns a closed peer into EPIPE instead of a signal.
func (s *Socket) Write(p []byte) (int, error) {
	done := 0
	for done < len(p) {
		n, err := unix.SendmsgN(s.fd, p[done:], nil, nil, unix.MSG_NOSIGNAL)
		switch {
		case err == nil:
			done += n
		case err == unix.EINTR:
		case err == unix.EAGAIN:
			if err := s.wait(unix.POLLOUT); err != nil {
				return done, err
			}
		default:
			return done, os.NewSyscallError("write", err)
		}
	}
	return done, nil
}

// wait blocks until the socket is ready for events or the deadline
// passes. An error or hang-up counts as ready, so that the next read or
// write reports it.
func (s *Socket) wait(events int16) error {
	for {
		ms := -1
		if d := s.deadline.Load(); d != 0 {
			left := time.Until(time.Unix(0, d))
			if left <= 0 {
				return os.ErrDeadlineExceeded
			}
			ms = int((left + time.Millisecond - 1) / time.Millisecond)
		}
		fds := []unix.PollFd{{Fd: int32(s.fd), Events: events}}
		n, err := unix.Poll(fds, ms)
		switch {
		case err == unix.EINTR:
		case err != nil:
			return os.NewSyscallError("poll", err)
		case n > 0:
			return nil
		}
		// A timeout goes round once more, so a deadline moved while the
		// wait ran is honoured.
	}
}

// PeerClosed reports without blocking whether input or the end of input
// is waiting, or the socket has failed.
func (s *Socket) PeerClosed() bool {
	var buf [1]byte
	_, _, err := unix.Recvfrom(s.fd, buf[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
	return err != unix.EAGAIN
}

// Close closes the socket.
func (s *Socket) Close() error { return unix.Close(s.fd) }
