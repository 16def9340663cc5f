package sched

import (
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// poller is the loop's own epoll set, like the event loop of the C queue
// manager: the loop goroutine watches delivery-agent sockets itself, so a
// reply costs no hand-off between goroutines and no thread wake-up. Other
// goroutines reach a loop that sleeps in the poller through wake.
//
// Only the loop goroutine calls watch, park, reused, forget, collect and
// dispatch. wake is safe from any goroutine.
type poller struct {
	epfd    int
	wakefd  int // an eventfd, readable after wake
	watches map[int32]*watch
	// parked contains descriptors left in the epoll set without a watcher.
	// Watching one again costs one epoll_ctl, and closing one costs none.
	parked   map[int32]bool
	nextTag  int32
	readyBuf []unix.EpollEvent
}

// watch is one watched descriptor. The tag travels in the epoll event, so
// an event that was already collected for a descriptor that is forgotten
// and reused in the same pass is not delivered to the new watcher.
type watch struct {
	tag        int32
	ready      func()
	closeOwner func() // closes the descriptor's owner when the loop exits
}

func newPoller() (*poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create: %w", err)
	}
	wakefd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	p := &poller{
		epfd:     epfd,
		wakefd:   wakefd,
		watches:  make(map[int32]*watch),
		parked:   make(map[int32]bool),
		readyBuf: make([]unix.EpollEvent, 64),
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wakefd), Pad: -1}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakefd, &ev); err != nil {
		p.shutdown()
		return nil, fmt.Errorf("epoll_ctl: %w", err)
	}
	return p, nil
}

// watch calls ready on the loop goroutine each time fd has input, has hung
// up or has failed, until forget. closeFn closes fd's owner if the loop
// exits first.
func (p *poller) watch(fd int, ready, closeFn func()) error {
	p.nextTag++
	if p.nextTag < 0 {
		p.nextTag = 0
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd), Pad: p.nextTag}
	var err error = unix.ENOENT
	if p.parked[int32(fd)] {
		// ENOENT means the descriptor was closed after it was parked, and
		// its number now belongs to a new one.
		delete(p.parked, int32(fd))
		err = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_MOD, fd, &ev)
	}
	if errors.Is(err, unix.ENOENT) {
		err = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, fd, &ev)
	}
	if err != nil {
		return fmt.Errorf("epoll_ctl: %w", err)
	}
	p.watches[int32(fd)] = &watch{tag: p.nextTag, ready: ready, closeOwner: closeFn}
	return nil
}

// park stops calling fd's handler but leaves fd in the epoll set. It is
// for a descriptor that is about to be watched again or closed, since
// closing removes it from the set. Input on a parked descriptor removes it
// from the set as well.
func (p *poller) park(fd int) {
	if _, ok := p.watches[int32(fd)]; !ok {
		return
	}
	delete(p.watches, int32(fd))
	p.parked[int32(fd)] = true
}

// reused records that fd is a descriptor just opened, so a parked entry
// under its number belongs to one that was closed since. This saves the
// failing epoll_ctl that watch would otherwise try first.
func (p *poller) reused(fd int) {
	delete(p.parked, int32(fd))
}

// forget stops watching fd. Call it before fd is closed.
func (p *poller) forget(fd int) {
	_, watched := p.watches[int32(fd)]
	if !watched && !p.parked[int32(fd)] {
		return
	}
	delete(p.watches, int32(fd))
	delete(p.parked, int32(fd))
	_ = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, fd, nil)
}

// collect sleeps until a watched descriptor is ready, wake is called or
// timeout passes, and returns how many events dispatch is to handle. A
// timeout of zero only collects what is ready now.
func (p *poller) collect(timeout time.Duration) (int, error) {
	ms := 0
	if timeout > 0 {
		ms = int((timeout + time.Millisecond - 1) / time.Millisecond)
	}
	n, err := unix.EpollWait(p.epfd, p.readyBuf, ms)
	if err != nil {
		if errors.Is(err, unix.EINTR) {
			return 0, nil
		}
		return 0, fmt.Errorf("epoll_wait: %w", err)
	}
	return n, nil
}

// dispatch runs the handlers of the first n events that collect returned.
func (p *poller) dispatch(n int) {
	for _, ev := range p.readyBuf[:n] {
		if ev.Pad == -1 {
			var buf [8]byte
			_, _ = unix.Read(p.wakefd, buf[:])
			continue
		}
		w, ok := p.watches[ev.Fd]
		if !ok && p.parked[ev.Fd] {
			// Unread input would be reported again on every pass.
			p.forget(int(ev.Fd))
			continue
		}
		if !ok || w.tag != ev.Pad {
			continue
		}
		w.ready()
	}
}

// wake makes a collect in progress, or else the next one, return at once. It
// is safe from any goroutine.
func (p *poller) wake() {
	increment := [8]byte{1} // the eventfd counter, little-endian
	_, _ = unix.Write(p.wakefd, increment[:])
}

// shutdown closes every watched descriptor's owner and the poller itself.
func (p *poller) shutdown() {
	for fd, w := range p.watches {
		delete(p.watches, fd)
		if w.closeOwner != nil {
			w.closeOwner()
		}
	}
	unix.Close(p.wakefd)
	unix.Close(p.epfd)
}
