package sched

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// newPipe returns the read and write ends of a non-blocking pipe, closed
// at the end of the test.
func newPipe(t *testing.T) (r, w int) {
	t.Helper()
	fds := make([]int, 2)
	require.NoError(t, unix.Pipe2(fds, unix.O_CLOEXEC|unix.O_NONBLOCK))
	t.Cleanup(func() {
		unix.Close(fds[0])
		unix.Close(fds[1])
	})
	return fds[0], fds[1]
}

// testPoller returns a new poller, shut down at the end of the test.
func testPoller(t *testing.T) *poller {
	t.Helper()
	p, err := newPoller()
	require.NoError(t, err)
	t.Cleanup(p.shutdown)
	return p
}

// writeByte makes the read end of the pipe whose write end is w readable.
func writeByte(t *testing.T, w int) {
	t.Helper()
	_, err := unix.Write(w, []byte("x"))
	require.NoError(t, err)
}

// wait collects and dispatches once, as the loop does in one pass.
func wait(p *poller, timeout time.Duration) error {
	n, err := p.collect(timeout)
	if err != nil {
		return err
	}
	p.dispatch(n)
	return nil
}

func TestPoller_RunsHandlerOfReadyDescriptor(t *testing.T) {
	p := testPoller(t)
	quiet, _ := newPipe(t)
	ready, w := newPipe(t)
	var got []string
	require.NoError(t, p.watch(quiet, func() { got = append(got, "quiet") }, nil))
	require.NoError(t, p.watch(ready, func() { got = append(got, "ready") }, nil))

	writeByte(t, w)
	require.NoError(t, wait(p, time.Second))

	assert.Equal(t, []string{"ready"}, got)
}

func TestPoller_ForgottenDescriptorIsNotReported(t *testing.T) {
	p := testPoller(t)
	r, w := newPipe(t)
	calls := 0
	require.NoError(t, p.watch(r, func() { calls++ }, nil))
	writeByte(t, w)

	p.forget(r)
	require.NoError(t, wait(p, 0))

	assert.Equal(t, 0, calls)
}

func TestPoller_EventOfReusedDescriptorIsDropped(t *testing.T) {
	// Two descriptors are ready in one batch. The first handler to run
	// forgets the other and watches it again for a new owner: the event
	// already collected belongs to the old owner and must reach no handler.
	p := testPoller(t)
	r1, w1 := newPipe(t)
	r2, w2 := newPipe(t)
	oldCalls, newCalls := 0, 0
	swapped := false
	handler := func(other int) func() {
		return func() {
			oldCalls++
			if swapped {
				return
			}
			swapped = true
			p.forget(other)
			require.NoError(t, p.watch(other, func() { newCalls++ }, nil))
		}
	}
	require.NoError(t, p.watch(r1, handler(r2), nil))
	require.NoError(t, p.watch(r2, handler(r1), nil))
	writeByte(t, w1)
	writeByte(t, w2)

	require.NoError(t, wait(p, time.Second))

	assert.Equal(t, 1, oldCalls, "handlers of the old owners")
	assert.Equal(t, 0, newCalls, "handler of the new owner")
}

func TestPoller_ParkedDescriptorWatchedAgain(t *testing.T) {
	p := testPoller(t)
	r, w := newPipe(t)
	var got []string
	require.NoError(t, p.watch(r, func() { got = append(got, "first") }, nil))

	p.park(r)
	require.NoError(t, p.watch(r, func() { got = append(got, "second") }, nil))
	writeByte(t, w)
	require.NoError(t, wait(p, time.Second))

	assert.Equal(t, []string{"second"}, got)
}

func TestPoller_InputOnParkedDescriptorRemovesIt(t *testing.T) {
	p := testPoller(t)
	r, w := newPipe(t)
	calls := 0
	require.NoError(t, p.watch(r, func() { calls++ }, nil))
	p.park(r)

	writeByte(t, w)
	require.NoError(t, wait(p, time.Second))
	n, err := p.collect(0)
	require.NoError(t, err)

	assert.Equal(t, 0, calls, "handler of a parked descriptor")
	assert.Equal(t, 0, n, "events after the first: the unread input is reported again")

	// Watching it again adds it back to the set.
	require.NoError(t, p.watch(r, func() { calls++ }, nil))
	require.NoError(t, wait(p, time.Second))
	assert.Equal(t, 1, calls)
}

func TestPoller_ParkedDescriptorClosedAndReused(t *testing.T) {
	for _, marked := range []bool{false, true} {
		p := testPoller(t)
		fds := make([]int, 2)
		require.NoError(t, unix.Pipe2(fds, unix.O_CLOEXEC|unix.O_NONBLOCK))
		require.NoError(t, p.watch(fds[0], func() {}, nil))
		p.park(fds[0])
		unix.Close(fds[0])
		unix.Close(fds[1])

		// The next pipe gets the lowest free numbers, the same ones.
		r, w := newPipe(t)
		require.Equal(t, fds[0], r, "descriptor number reused")
		if marked {
			p.reused(r)
			assert.False(t, p.parked[int32(r)], "parked entry of the closed descriptor")
		}
		calls := 0
		require.NoError(t, p.watch(r, func() { calls++ }, nil))
		writeByte(t, w)
		require.NoError(t, wait(p, time.Second))

		assert.Equal(t, 1, calls, "handler calls, reuse marked: %v", marked)
	}
}

func TestPoller_WakeEndsSleep(t *testing.T) {
	p := testPoller(t)

	go func() {
		time.Sleep(50 * time.Millisecond)
		p.wake()
	}()
	start := time.Now()
	require.NoError(t, wait(p, 10*time.Second))

	assert.Less(t, time.Since(start), 5*time.Second)
}

func TestPoller_ShutdownClosesOwners(t *testing.T) {
	p, err := newPoller()
	require.NoError(t, err)
	r, _ := newPipe(t)
	closed := 0
	require.NoError(t, p.watch(r, func() {}, func() { closed++ }))

	p.shutdown()

	assert.Equal(t, 1, closed)
}

func TestTimers_CancelLeavesHeap(t *testing.T) {
	var h timerHeap
	now := time.Now()
	ran := false
	first := h.add(now.Add(time.Hour), func() { ran = true })
	h.add(now.Add(2*time.Hour), func() {})

	first.cancel()

	assert.Equal(t, 1, h.Len(), "a cancelled timer stays in the heap")
	h.runDue(now.Add(3 * time.Hour))
	assert.False(t, ran, "a cancelled timer ran")
	assert.Equal(t, 0, h.Len())
}
