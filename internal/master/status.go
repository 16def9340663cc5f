package master

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Status values in a status record (MASTER_STAT_TAKEN and MASTER_STAT_AVAIL).
const (
	statTaken     = 0
	statAvailable = 1
)

// statusRecordSize is the size of struct MASTER_STATUS on Linux: int pid,
// unsigned generation, int avail, in host byte order without padding.
const statusRecordSize = 12

// Status writes the status records that tell master whether this process
// is serving a request (taken) or idle (available), and watches the status
// channel for the end of file that means master has exited or reloaded.
//
// Taken and Available may be called from any goroutine.
type Status struct {
	fd         int
	pid        int32
	generation uint32

	goneOnce sync.Once
	gone     chan struct{}
}

// NewStatus returns a Status that writes to fd, normally StatusFD.
// generationEnv is the value of the GENERATION environment variable that
// master sets for each child: the spawn counter in octal. An empty value
// means the variable is missing, and the generation is 0. A value with
// anything but decimal digits is invalid, as in trigger_server.c.
func NewStatus(fd int, generationEnv string) (*Status, error) {
	gen, err := ParseGeneration(generationEnv)
	if err != nil {
		return nil, err
	}
	return &Status{fd: fd, pid: int32(os.Getpid()), generation: gen, gone: make(chan struct{})}, nil
}

// ErrBadGeneration is returned by ParseGeneration and NewStatus for a
// GENERATION value that is not all digits.
var ErrBadGeneration = errors.New("bad generation")

// ParseGeneration decodes a GENERATION value the way Postfix does: it must
// be all decimal digits, and it is read as an octal number that stops at
// the first 8 or 9 (strtoul with base 8). A number too large for 32 bits
// is cut to its low 32 bits. Master compares the result with the
// generation it assigned, so a wrong value makes master ignore the records.
func ParseGeneration(s string) (uint32, error) {
	if s == "" {
		return 0, nil
	}
	if strings.Trim(s, "0123456789") != "" {
		return 0, fmt.Errorf("%w: %q", ErrBadGeneration, s)
	}
	var v uint64
	for _, c := range s {
		if c > '7' {
			break
		}
		if v > (1<<64-1)/8 {
			v = 1<<64 - 1 // strtoul saturates on overflow
			break
		}
		v = v*8 + uint64(c-'0')
	}
	return uint32(v), nil
}

// Generation returns the generation number written in every record.
func (s *Status) Generation() uint32 { return s.generation }

// Taken reports to master that this process is busy with a request.
func (s *Status) Taken() error { return s.write(statTaken) }

// Available reports to master that this process is idle again. An error
// means master is gone, and Postfix daemons then exit with status 0.
func (s *Status) Available() error { return s.write(statAvailable) }

// write sends one record with a single write, as master_notify does, so
// that master never reads a partial record.
func (s *Status) write(stat int32) error {
	var rec [statusRecordSize]byte
	binary.NativeEndian.PutUint32(rec[0:4], uint32(s.pid))
	binary.NativeEndian.PutUint32(rec[4:8], s.generation)
	binary.NativeEndian.PutUint32(rec[8:12], uint32(stat))

	n, err := unix.Write(s.fd, rec[:])
	for errors.Is(err, unix.EINTR) {
		n, err = unix.Write(s.fd, rec[:])
	}
	if err != nil {
		return fmt.Errorf("write status %d to master on fd %d: %w", stat, s.fd, err)
	}
	if n != len(rec) {
		return fmt.Errorf("write status %d to master on fd %d: short write of %d bytes", stat, s.fd, n)
	}
	return nil
}

// Gone returns a channel that is closed once the status descriptor becomes
// readable. Master never writes to it, so readability means end of file:
// master has exited, or `postfix reload` replaced the status channel and
// this process must exit. The first call starts a goroutine that waits in
// poll(2) for the rest of the process lifetime, or until the channel is
// closed.
func (s *Status) Gone() <-chan struct{} {
	s.goneOnce.Do(func() { go s.watch() })
	return s.gone
}

// watch waits without reading, so the descriptor and its blocking mode are
// left exactly as master passed them.
func (s *Status) watch() {
	defer close(s.gone)
	fds := []unix.PollFd{{Fd: int32(s.fd), Events: unix.POLLIN}}
	for {
		_, err := unix.Poll(fds, -1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		// Any readiness, POLLHUP, POLLNVAL or a poll failure ends the
		// wait, because none of them leaves a usable channel to master.
		return
	}
}
