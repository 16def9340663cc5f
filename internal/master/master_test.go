package master

import (
	"encoding/binary"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestParseGeneration(t *testing.T) {
	tests := []struct {
		in      string
		want    uint32
		wantErr bool
	}{
		{"", 0, false},
		{"0", 0, false},
		{"1", 1, false},
		{"17", 15, false},
		{"777", 511, false},
		{"18", 1, false}, // the octal number stops at the first 8 or 9
		{"9", 0, false},
		{"37777777777", 0xffffffff, false},
		{"40000000001", 1, false}, // cut to 32 bits
		{"99999999999999999999999999", 0, false},
		{"7777777777777777777777777", 0xffffffff, false}, // saturates past 64 bits
		{"-1", 0, true},
		{" 17", 0, true},
		{"0x10", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseGeneration(tt.in)
		if tt.wantErr {
			assert.ErrorIs(t, err, ErrBadGeneration, "ParseGeneration(%q)", tt.in)
			continue
		}
		assert.NoError(t, err, "ParseGeneration(%q)", tt.in)
		assert.Equal(t, tt.want, got, "ParseGeneration(%q) = %d, want %d", tt.in, got, tt.want)
	}
}

// socketPair returns the child end (as master passes it on fd 5) and the
// master end of a status channel.
func socketPair(t *testing.T) (child, parent int) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	t.Cleanup(func() {
		unix.Close(fds[0])
		unix.Close(fds[1])
	})
	return fds[0], fds[1]
}

type statusRecord struct {
	pid, generation, status uint32
}

func readRecord(t *testing.T, fd int) statusRecord {
	t.Helper()
	var buf [statusRecordSize]byte
	n, err := unix.Read(fd, buf[:])
	require.NoError(t, err)
	require.Equal(t, statusRecordSize, n, "short status record")
	return statusRecord{
		pid:        binary.NativeEndian.Uint32(buf[0:4]),
		generation: binary.NativeEndian.Uint32(buf[4:8]),
		status:     binary.NativeEndian.Uint32(buf[8:12]),
	}
}

func TestStatus_Records(t *testing.T) {
	child, parent := socketPair(t)
	s, err := NewStatus(child, "17")
	require.NoError(t, err)
	assert.Equal(t, uint32(15), s.Generation())

	require.NoError(t, s.Taken())
	require.NoError(t, s.Available())

	pid := uint32(os.Getpid())
	assert.Equal(t, statusRecord{pid, 15, 0}, readRecord(t, parent), "taken record")
	assert.Equal(t, statusRecord{pid, 15, 1}, readRecord(t, parent), "available record")
	n, err := unix.IoctlGetInt(parent, unix.TIOCINQ)
	require.NoError(t, err)
	assert.Zero(t, n, "bytes left after two records")
}

func TestStatus_BadGeneration(t *testing.T) {
	child, _ := socketPair(t)
	_, err := NewStatus(child, "abc")
	assert.ErrorIs(t, err, ErrBadGeneration)
	assert.ErrorContains(t, err, `"abc"`)
}

func TestStatus_AvailableAfterMasterExit(t *testing.T) {
	child, parent := socketPair(t)
	s, err := NewStatus(child, "1")
	require.NoError(t, err)
	require.NoError(t, unix.Close(parent))

	err = s.Available()
	assert.ErrorIs(t, err, unix.EPIPE)
	assert.ErrorContains(t, err, "fd ")
}

func TestStatus_GoneOnPeerClose(t *testing.T) {
	child, parent := socketPair(t)
	s, err := NewStatus(child, "1")
	require.NoError(t, err)

	gone := s.Gone()
	assert.True(t, gone == s.Gone(), "every call returns the same channel")
	select {
	case <-gone:
		t.Fatal("Gone closed while master still holds its end")
	case <-time.After(50 * time.Millisecond):
	}

	// Status writes do not make the child's own end readable.
	require.NoError(t, s.Taken())
	select {
	case <-gone:
		t.Fatal("Gone closed after a status write")
	case <-time.After(50 * time.Millisecond):
	}

	require.NoError(t, unix.Close(parent))
	select {
	case <-gone:
	case <-time.After(5 * time.Second):
		t.Fatal("Gone not closed after master closed its end")
	}
}

func flowPipe(t *testing.T) *Flow {
	t.Helper()
	var p [2]int
	require.NoError(t, unix.Pipe2(p[:], unix.O_NONBLOCK|unix.O_CLOEXEC))
	t.Cleanup(func() {
		unix.Close(p[0])
		unix.Close(p[1])
	})
	return NewFlow(p[0], p[1])
}

func TestFlow_PutCountGet(t *testing.T) {
	f := flowPipe(t)
	n, err := f.Count()
	require.NoError(t, err)
	assert.Equal(t, 0, n, "a new pipe holds no tokens")

	require.NoError(t, f.Put(3))
	require.NoError(t, f.Put(2000)) // more than one chunk
	n, err = f.Count()
	require.NoError(t, err)
	assert.Equal(t, 2003, n)

	require.NoError(t, f.Get(1500))
	n, err = f.Count()
	require.NoError(t, err)
	assert.Equal(t, 503, n)
}

func TestFlow_TokensAreNULBytes(t *testing.T) {
	f := flowPipe(t)
	require.NoError(t, f.Put(4))
	buf := make([]byte, 10)
	n, err := unix.Read(f.readFD, buf)
	require.NoError(t, err)
	assert.Equal(t, []byte{0, 0, 0, 0}, buf[:n])
}

func TestFlow_GetFromShortPipe(t *testing.T) {
	f := flowPipe(t)
	require.NoError(t, f.Put(2))
	err := f.Get(5)
	assert.ErrorIs(t, err, ErrFlowEmpty)
	n, err := f.Count()
	require.NoError(t, err)
	assert.Equal(t, 0, n, "the tokens that were there are consumed")
}

func TestFlow_PutIntoFullPipe(t *testing.T) {
	f := flowPipe(t)
	size, err := unix.FcntlInt(uintptr(f.writeFD), unix.F_GETPIPE_SZ, 0)
	require.NoError(t, err)
	err = f.Put(size + 10)
	assert.ErrorIs(t, err, ErrFlowFull)
	n, err := f.Count()
	require.NoError(t, err)
	assert.Equal(t, size, n)
}

func TestFlow_InvalidCounts(t *testing.T) {
	f := flowPipe(t)
	assert.ErrorContains(t, f.Put(0), "invalid count 0")
	assert.ErrorContains(t, f.Get(-1), "invalid count -1")
}
