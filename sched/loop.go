package sched

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"oqmgr-go/conf"
	"oqmgr-go/internal/maillog"
	"oqmgr-go/queue"
	"oqmgr-go/transport"
	"oqmgr-go/trigger"
)

// Resolver maps a recipient address to a transport, nexthop and final
// address; transport.Resolver (trivial-rewrite) is the production one.
type Resolver interface {
	Resolve(ctx context.Context, sender, address string, verify bool) (transport.Resolution, error)
	Rewrite(ctx context.Context, rule, address string) (string, error)
	// Batch starts a batch that spreads its requests over at most depth
	// connections; it holds the resolver until the batch's Wait returns.
	Batch(ctx context.Context, depth int) ResolveBatch
}

// ResolveBatch is a run of resolve requests sent to trivial-rewrite ahead
// of their replies; *transport.ResolveBatch is the production one.
type ResolveBatch interface {
	// Add sends one request, as Resolver.Resolve would.
	Add(sender, address string, verify bool)
	// Wait returns the results in the order of Add, stopping before the
	// first request that failed, with err saying why.
	Wait() (results []transport.Resolution, err error)
	// Abandon drops the requests in flight and releases the resolver, in
	// place of Wait.
	Abandon()
}

// Agent is one delivery-agent connection that the loop drives from its
// poller: the announcement, then one request and its reply.
// *transport.Agent is the production one.
type Agent interface {
	// Fd is watched for input; the Agent keeps ownership of it.
	Fd() int
	ReadAnnouncement() error
	AnnouncementTimeout() error
	Send(req *transport.DeliveryRequest) error
	ReadReply() (transport.DeliveryReply, error)
	ReplyTimeout(queueID string) error
	Close() error
}

// Peers opens the connections the loop needs to other Postfix daemons.
type Peers interface {
	// OpenAgent starts connecting to private/<transportName> without
	// waiting for the agent to accept.
	OpenAgent(transportName string) (Agent, error)
	// Notify sends one bounce, defer or trace request and returns its
	// status (0 is success).
	Notify(ctx context.Context, service string, req transport.NotifyRequest) (int, error)
	// DeferAppend records a deferral for one recipient synchronously.
	DeferAppend(ctx context.Context, flags int, queueID string, rcpt transport.RequestRecipient, dsn transport.DSN) (int, error)
}

// FlowControl refills the flow-control tokens that cleanup(8) waits for
// when in_flow_delay is positive (master's fds 3 and 4).
type FlowControl interface {
	Count() (int, error)
	Put(n int) error
	Get(n int) error
}

// Options wires a Loop to its configuration and peers.
type Options struct {
	Config   *conf.Config
	Dir      *queue.Dir
	Log      *maillog.Logger
	Resolver Resolver
	Peers    Peers
	Flow     FlowControl // nil when master passed no flow pipe
	Now      func() time.Time
}

// Loop is the scheduler. All fields below are owned by the goroutine that
// runs Run; other goroutines talk to it only through the channels.
type Loop struct {
	cfg      *conf.Config
	dir      *queue.Dir
	log      *maillog.Logger
	resolver Resolver
	peers    Peers
	flow     FlowControl
	now      func() time.Time

	// pending collects trigger requests that arrived since the loop last
	// looked, ORed together as qmgr_trigger_event collapses them; kick
	// (capacity one) wakes the loop. Only these two fields are shared.
	pendingMu sync.Mutex
	pending   trigger.Request
	kick      chan struct{}
	// events carries end-of-attempt results from the goroutines the loop
	// starts. They send and then wake the poller; the channel is never
	// closed.
	events chan func()
	// poller watches the agent sockets; Run creates it and only the loop
	// goroutine uses it, except that wake may reach it under wakeMu.
	poller *poller
	wakeMu sync.Mutex

	messages       map[queue.ID]*message
	recipientCount int // recipients held in core across all messages
	verifyPending  int // in-core address verification probes
	transports     map[string]*transportState
	transportOrder []*transportState // round-robin order for agent allocation
	incoming       scan
	deferred       scan
	incomingFirst  bool
	timers         timerHeap
	lastYield      time.Time // see yieldToRuntime

	// resolving is the batch of messages waiting for trivial-rewrite, or
	// nil. resolvingRecipients counts their recipients. unassigned and
	// unassignedProbes count the batch's messages and address
	// verification probes not assigned yet.
	resolving           *resolving
	resolvingRecipients int
	unassigned          int
	unassignedProbes    int

	// passStart is when the pass of Run in progress began, in Unix
	// nanoseconds, for a watchdog on another goroutine (PassStarted).
	passStart atomic.Int64

	ctx     context.Context
	workers workerGroup

	// fatal is the first error that must stop the process, because the
	// queue directory cannot be updated; Run returns it.
	fatal error
}

// New builds a Loop; call Run to start it.
func New(o Options) *Loop {
	now := o.Now
	if now == nil {
		now = time.Now
	}
	return &Loop{
		cfg:           o.Config,
		dir:           o.Dir,
		log:           o.Log,
		resolver:      o.Resolver,
		peers:         o.Peers,
		flow:          o.Flow,
		now:           now,
		kick:          make(chan struct{}, 1),
		events:        make(chan func(), 256),
		messages:      make(map[queue.ID]*message),
		transports:    make(map[string]*transportState),
		incoming:      scan{queue: queue.Incoming},
		deferred:      scan{queue: queue.Deferred},
		incomingFirst: true,
	}
}

// Trigger passes one decoded trigger buffer to the loop. It is safe to call
// from any goroutine and does not block: requests that arrive while the
// loop is busy are merged and applied together.
func (l *Loop) Trigger(r trigger.Request) {
	l.pendingMu.Lock()
	l.pending |= r
	l.pendingMu.Unlock()
	select {
	case l.kick <- struct{}{}:
	default:
	}
	l.wake()
}

// wake interrupts the loop's sleep in its poller, if it has one yet.
func (l *Loop) wake() {
	l.wakeMu.Lock()
	defer l.wakeMu.Unlock()
	if l.poller != nil {
		l.poller.wake()
	}
}

// takeTriggers applies the requests collected since the last call.
func (l *Loop) takeTriggers() {
	l.pendingMu.Lock()
	r := l.pending
	l.pending = 0
	l.pendingMu.Unlock()
	if r != 0 {
		l.handleTrigger(r)
	}
}

// Run recovers files left in active by an earlier process, starts both
// scans and schedules until ctx ends or a fatal error stops it. Deliveries
// and agent connections in progress are abandoned at exit, as the C oqmgr
// does: the agents finish them and a later process finds the files still
// locked.
func (l *Loop) Run(ctx context.Context) error {
	p, err := newPoller()
	if err != nil {
		return err
	}
	l.wakeMu.Lock()
	l.poller = p
	l.wakeMu.Unlock()
	defer func() {
		l.wakeMu.Lock()
		l.poller = nil
		l.wakeMu.Unlock()
		p.shutdown()
	}()

	ctx, cancel := context.WithCancel(ctx)
	l.ctx = ctx
	// Deferred calls run last first: the workers are cancelled before Run
	// waits for them, so that a notice that never ends cannot keep a fatal
	// error from reaching the caller.
	defer l.workers.wait()
	defer cancel()
	defer l.dropResolving()
	stopWake := context.AfterFunc(ctx, l.wake)
	defer stopWake()

	if err := l.recoverActive(); err != nil {
		return err
	}
	l.startScan(&l.incoming, 0)
	l.startScan(&l.deferred, 0)
	l.scheduleDeferredScan()

	for {
		l.passStart.Store(time.Now().UnixNano())
		if l.fatal != nil {
			return l.fatal
		}
		l.allocateAgents()
		took, fromIncoming, err := l.feed()
		if err != nil {
			return err
		}
		l.refillFlow(took && fromIncoming)

		// One file per pass, as in qmgr_loop: after a file, only the
		// events that are already waiting run before the next one.
		var sleep time.Duration
		if !took {
			sleep = l.timers.untilNext(l.now())
		}
		if err := l.runEvents(ctx, sleep); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// PassStarted returns when the pass of Run in progress began, or the zero
// time before Run starts and while the loop sleeps until its next event or
// timer. A pass includes the loop's other waits: for the rest of an agent's
// reply and for trivial-rewrite. It is safe from any goroutine.
func (l *Loop) PassStarted() time.Time {
	ns := l.passStart.Load()
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// runEvents runs what other goroutines posted, then sleeps in the poller
// for at most sleep, running the handlers of ready agent sockets, then runs
// what was posted meanwhile and the timers that are due. Posted work cuts
// the sleep short.
func (l *Loop) runEvents(ctx context.Context, sleep time.Duration) error {
	if l.runPosted() || ctx.Err() != nil {
		sleep = 0
	}
	if sleep > 0 {
		// Waiting for work is no part of a pass for the watchdog; the
		// handlers of what woke the loop are.
		// NOTE: the C server loop's watchdog also covers this sleep, which
		// its deferred-scan timer bounds by queue_run_delay, so with
		// queue_run_delay above qmgr_daemon_timeout it may end an idle
		// process where ours goes on. Not checked against the binary.
		l.passStart.Store(0)
	}
	n, err := l.poller.collect(sleep)
	if sleep > 0 {
		l.passStart.Store(time.Now().UnixNano())
	}
	if err != nil {
		return err
	}
	l.poller.dispatch(n)
	l.runPosted()
	now := l.now()
	l.timers.runDue(now)
	l.yieldToRuntime(now)
	return nil
}

// yieldInterval is how often the loop lets the Go scheduler run, well under
// the 10 ms after which the runtime's monitor preempts a goroutine that
// has not been rescheduled.
const yieldInterval = 2 * time.Millisecond

// yieldToRuntime reschedules the loop goroutine every yieldInterval. The
// loop waits in system calls, not in the runtime, so otherwise it is never
// rescheduled. The runtime's monitor thread would then take its processor
// away every 10 ms and go back to polling every 20 us, each poll a thread
// wake-up.
func (l *Loop) yieldToRuntime(now time.Time) {
	if now.Sub(l.lastYield) < yieldInterval && !now.Before(l.lastYield) {
		return
	}
	l.lastYield = now
	runtime.Gosched()
}

// runPosted runs the triggers and results that are waiting, without
// blocking, and reports whether there were any.
func (l *Loop) runPosted() bool {
	ran := false
	for {
		select {
		case <-l.kick:
			l.takeTriggers()
		case fn := <-l.events:
			fn()
		default:
			return ran
		}
		ran = true
	}
}

// post queues fn to run on the loop goroutine. Workers call it; it gives up
// when the loop has stopped so that no worker blocks forever.
func (l *Loop) post(fn func()) {
	select {
	case l.events <- fn:
		l.wake()
	case <-l.ctx.Done():
	}
}

// handleTrigger applies one trigger buffer as qmgr_trigger_event does:
// forgetting dead sites first, then the scan modifiers, then the starts.
func (l *Loop) handleTrigger(r trigger.Request) {
	if r&trigger.FlushDead != 0 {
		l.reviveAll()
	}
	var flags scanFlags
	if r&trigger.ScanAll != 0 {
		flags |= scanAll
	}
	if r&trigger.FlushDead != 0 {
		flags |= scanFlush
	}
	if r&trigger.ScanIncoming != 0 || flags != 0 {
		l.requestScan(&l.incoming, flags, r&trigger.ScanIncoming != 0)
	}
	if r&trigger.ScanDeferred != 0 || flags != 0 {
		l.requestScan(&l.deferred, flags, r&trigger.ScanDeferred != 0)
	}
}

// scheduleDeferredScan arms the queue_run_delay timer that restarts the
// deferred scan, as the C program's qmgr_deferred_run_event does.
func (l *Loop) scheduleDeferredScan() {
	l.timers.add(l.now().Add(l.cfg.QueueRunDelay), func() {
		l.requestScan(&l.deferred, 0, true)
		l.scheduleDeferredScan()
	})
}

// setFatal records an error that must stop the loop; the first one wins.
func (l *Loop) setFatal(err error) {
	if err != nil && l.fatal == nil {
		l.fatal = err
	}
}

// fatalf builds the error that makes Run return; main logs it as fatal.
func fatalf(format string, a ...any) error {
	return fmt.Errorf(format, a...)
}
