package sched

import (
	"container/heap"
	"sync"
	"time"
)

// timerHandle lets the owner cancel a timer it armed.
type timerHandle struct {
	at       time.Time
	fn       func()
	canceled bool
	index    int        // position in owner, or -1 once out of it
	owner    *timerHeap // the heap the timer was armed in
}

// cancel disarms the timer and drops it from its heap at once, so that the
// long guard timers of finished deliveries hold no memory.
func (h *timerHandle) cancel() {
	if h == nil || h.canceled {
		return
	}
	h.canceled = true
	if h.index >= 0 {
		heap.Remove(h.owner, h.index)
	}
}

// timerHeap orders the loop's pending timers by deadline. The loop sleeps
// on one time.Timer reset to the earliest of them.
type timerHeap []*timerHandle

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *timerHeap) Push(x any) {
	t := x.(*timerHandle)
	t.index = len(*h)
	*h = append(*h, t)
}
func (h *timerHeap) Pop() any {
	old := *h
	n := len(old)
	t := old[n-1]
	*h = old[:n-1]
	t.index = -1
	return t
}

// add arms fn to run on the loop goroutine at time at.
func (h *timerHeap) add(at time.Time, fn func()) *timerHandle {
	t := &timerHandle{at: at, fn: fn, owner: h}
	heap.Push(h, t)
	return t
}

// untilNext returns how long the loop may sleep before the next timer.
func (h *timerHeap) untilNext(now time.Time) time.Duration {
	for h.Len() > 0 && (*h)[0].canceled {
		heap.Pop(h)
	}
	if h.Len() == 0 {
		return time.Hour
	}
	d := (*h)[0].at.Sub(now)
	if d < 0 {
		return 0
	}
	return d
}

// runDue runs every timer whose deadline has passed, in deadline order.
func (h *timerHeap) runDue(now time.Time) {
	for h.Len() > 0 {
		t := (*h)[0]
		if !t.canceled && t.at.After(now) {
			return
		}
		heap.Pop(h)
		if !t.canceled {
			t.canceled = true
			t.fn()
		}
	}
}

// workerGroup tracks the goroutines the loop starts, so Run returns only
// after every one of them has stopped.
type workerGroup struct {
	wg sync.WaitGroup
}

func (g *workerGroup) start(fn func()) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		fn()
	}()
}

func (g *workerGroup) wait() {
	g.wg.Wait()
}
