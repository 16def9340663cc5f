package master

// Token handling follows src/master/mail_flow.c.

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// ErrFlowEmpty is returned by Flow.Get when the pipe holds fewer tokens
// than requested. The tokens it did hold are consumed.
var ErrFlowEmpty = errors.New("flow pipe has too few tokens")

// ErrFlowFull is returned by Flow.Put when the pipe cannot take all the
// tokens. The tokens written before it filled stay in the pipe.
var ErrFlowFull = errors.New("flow pipe is full")

// Flow gives access to master's flow-control pipe. A token is one NUL
// byte. cleanup(8) takes a token for each message it accepts and waits
// in_flow_delay when none is left, and the queue manager puts tokens back,
// which throttles message arrival to the speed of delivery.
type Flow struct {
	readFD, writeFD int
}

// NewFlow returns a Flow on the given ends of the pipe, normally
// FlowReadFD and FlowWriteFD, which master makes non-blocking.
func NewFlow(readFD, writeFD int) *Flow {
	return &Flow{readFD: readFD, writeFD: writeFD}
}

// tokenChunk bounds the buffer used for one read or write.
const tokenChunk = 1024

// Count returns the number of tokens in the pipe (FIONREAD on the read end, like peekfd in Postfix).
func (f *Flow) Count() (int, error) {
	n, err := unix.IoctlGetInt(f.readFD, unix.TIOCINQ) // FIONREAD is TIOCINQ on Linux
	if err != nil {
		return 0, fmt.Errorf("count flow tokens on fd %d: %w", f.readFD, err)
	}
	return n, nil
}

// Put writes n tokens to the pipe.
func (f *Flow) Put(n int) error {
	if n <= 0 {
		return fmt.Errorf("put flow tokens: invalid count %d", n)
	}
	buf := make([]byte, min(n, tokenChunk))
	for left := n; left > 0; {
		w, err := unix.Write(f.writeFD, buf[:min(left, len(buf))])
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if errors.Is(err, unix.EAGAIN) {
			return fmt.Errorf("put %d flow tokens on fd %d: %w after %d", n, f.writeFD, ErrFlowFull, n-left)
		}
		if err != nil {
			return fmt.Errorf("put %d flow tokens on fd %d: %w", n, f.writeFD, err)
		}
		left -= w
	}
	return nil
}

// Get takes n tokens from the pipe and discards them.
func (f *Flow) Get(n int) error {
	if n <= 0 {
		return fmt.Errorf("get flow tokens: invalid count %d", n)
	}
	buf := make([]byte, min(n, tokenChunk))
	for left := n; left > 0; {
		r, err := unix.Read(f.readFD, buf[:min(left, len(buf))])
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if errors.Is(err, unix.EAGAIN) || (err == nil && r == 0) {
			return fmt.Errorf("get %d flow tokens on fd %d: %w, got %d", n, f.readFD, ErrFlowEmpty, n-left)
		}
		if err != nil {
			return fmt.Errorf("get %d flow tokens on fd %d: %w", n, f.readFD, err)
		}
		left -= r
	}
	return nil
}
