package main

import (
	"context"
	"sync"
	"time"
)

// watchdog ends a process that stays in one unit of work for too long, as
// Postfix's watchdog(3) does. start arms it for timeout, and the next
// start or stop disarms it. When the time runs out, expire runs, which
// logs "fatal: watchdog timeout" and exits. The queue manager's timeout
// is qmgr_daemon_timeout.
type watchdog struct {
	timeout time.Duration
	expire  func()

	mu    sync.Mutex // guards timer
	timer *time.Timer
}

func newWatchdog(timeout time.Duration, expire func()) *watchdog {
	return &watchdog{timeout: timeout, expire: expire}
}

// start arms the watchdog for a new unit of work.
func (w *watchdog) start() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.timer != nil {
		w.timer.Stop()
	}
	w.timer = time.AfterFunc(w.timeout, w.expire)
}

// stop disarms the watchdog.
func (w *watchdog) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.timer != nil {
		w.timer.Stop()
		w.timer = nil
	}
}

// watchPasses runs expire once the pass that started() reports has lasted
// timeout. It looks three times per timeout, as watchdog(3) counts three
// alarms, so expire runs between timeout and four thirds of it after the
// pass began. A zero start means no pass has begun.
func watchPasses(ctx context.Context, started func() time.Time, timeout time.Duration, expire func()) {
	ticker := time.NewTicker(max(timeout/3, time.Millisecond))
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-ticker.C:
			if start := started(); !start.IsZero() && now.Sub(start) >= timeout {
				expire()
				return
			}
		}
	}
}
