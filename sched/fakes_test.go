package sched

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"oqmgr-go/conf"
	"oqmgr-go/internal/attr"
	"oqmgr-go/internal/maillog"
	"oqmgr-go/queue"
	"oqmgr-go/transport"
)

// fakeResolver routes by domain: domains in local go to the local
// transport, the rest to smtp with the domain as nexthop.
type fakeResolver struct {
	local map[string]bool
	down  atomic.Bool // every request fails, as when trivial-rewrite is unreachable
	// failInBatch makes a batch request for one address fail, as when
	// trivial-rewrite hangs up; retried alone, it succeeds. resolved counts
	// the requests made one at a time.
	failInBatch string
	resolved    atomic.Int32
	// batchOpen is set from Batch until Wait or Abandon, which the loop
	// must call before Run returns, since the real resolver stays locked
	// until then.
	batchOpen atomic.Bool
	onAdd     func(address string) // called by each batch's Add, if set
}

func (r *fakeResolver) Resolve(ctx context.Context, sender, address string, verify bool) (transport.Resolution, error) {
	r.resolved.Add(1)
	return r.answer(ctx, sender, address, verify)
}

func (r *fakeResolver) answer(_ context.Context, _, address string, _ bool) (transport.Resolution, error) {
	if r.down.Load() {
		err := &attr.ConnectError{Endpoint: "private/rewrite", Err: syscall.ENOENT}
		return transport.Resolution{}, fmt.Errorf("problem talking to service rewrite: %w", err)
	}
	domain := domainOf(address)
	if r.local[domain] {
		return transport.Resolution{Transport: "local", Nexthop: domain, Recipient: address, Flags: transport.ResolveClassLocal}, nil
	}
	return transport.Resolution{Transport: "smtp", Nexthop: domain, Recipient: address}, nil
}

// Batch resolves each request as Resolve does, when it is added.
func (r *fakeResolver) Batch(ctx context.Context, _ int) ResolveBatch {
	r.batchOpen.Store(true)
	return &fakeBatch{r: r, ctx: ctx}
}

type fakeBatch struct {
	r       *fakeResolver
	ctx     context.Context
	results []transport.Resolution
	err     error
}

func (b *fakeBatch) Add(sender, address string, verify bool) {
	if b.r.onAdd != nil {
		b.r.onAdd(address)
	}
	if b.err != nil {
		return
	}
	res, err := b.r.answer(b.ctx, sender, address, verify)
	if address == b.r.failInBatch {
		err = errors.New("problem talking to service rewrite: end of input from private/rewrite socket: EOF")
	}
	if err != nil {
		b.err = err
		return
	}
	b.results = append(b.results, res)
}

func (b *fakeBatch) Wait() ([]transport.Resolution, error) {
	b.r.batchOpen.Store(false)
	return b.results, b.err
}

func (b *fakeBatch) Abandon() {
	b.r.batchOpen.Store(false)
}

func (r *fakeResolver) Rewrite(_ context.Context, _, address string) (string, error) {
	return address, nil
}

// outcome is what a fake agent does with one recipient.
type outcome int

const (
	delivered outcome = iota // marked done, final
	deferred                 // left as R, needs retry
)

// request is what a fake agent received, for assertions.
type request struct {
	transport  string
	nexthop    string
	queueID    string
	recipients []string
}

// fakePeers plays every delivery agent and bounce(8). Each recipient's
// fate comes from decide; a non-empty siteTrouble reason for a nexthop is
// returned as the reply's DSN, which the scheduler treats as trouble with
// the destination.
type fakePeers struct {
	dir *queue.Dir

	mu          sync.Mutex
	requests    []request
	notices     []transport.NotifyRequest
	notifySvc   []string
	down        map[string]bool   // transports whose socket is missing
	stalled     map[string]bool   // transports whose agents never announce themselves
	siteTrouble map[string]string // nexthop -> reason
	decide      func(transportName, nexthop, rcpt string) outcome
	busy        map[string]int // nexthop -> deliveries in progress
	maxBusy     map[string]int // nexthop -> highest deliveries in progress
	hold        chan struct{}  // when set, deliveries wait for a receive
}

func newFakePeers(dir *queue.Dir) *fakePeers {
	return &fakePeers{
		dir:         dir,
		down:        map[string]bool{},
		stalled:     map[string]bool{},
		siteTrouble: map[string]string{},
		busy:        map[string]int{},
		maxBusy:     map[string]int{},
		decide:      func(string, string, string) outcome { return delivered },
	}
}

func (p *fakePeers) OpenAgent(name string) (Agent, error) {
	p.mu.Lock()
	down, stalled := p.down[name], p.stalled[name]
	p.mu.Unlock()
	if down {
		return nil, fmt.Errorf("connect to transport private/%s: No such file or directory", name)
	}
	fd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return nil, err
	}
	a := &fakeAgent{peers: p, transport: name, fd: fd, results: make(chan fakeResult, 1), done: make(chan struct{})}
	// A stalled agent is like a connection that waits in the listen
	// backlog of a service that master has throttled: it never turns
	// readable.
	if !stalled {
		a.signal()
	}
	return a, nil
}

func (p *fakePeers) Notify(_ context.Context, service string, req transport.NotifyRequest) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.notices = append(p.notices, req)
	p.notifySvc = append(p.notifySvc, service)
	return 0, nil
}

func (p *fakePeers) DeferAppend(context.Context, int, string, transport.RequestRecipient, transport.DSN) (int, error) {
	return 0, nil
}

func (p *fakePeers) snapshot() []request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]request(nil), p.requests...)
}

// fakeAgent plays one agent connection. Its descriptor is an eventfd that
// turns readable when the announcement or the reply is ready, so the loop
// drives it through its poller like a real agent socket.
type fakeAgent struct {
	peers     *fakePeers
	transport string
	fd        int
	results   chan fakeResult
	done      chan struct{} // closed by Close

	mu       sync.Mutex
	inFlight bool // a delivery goroutine still owns fd
	closed   bool
}

type fakeResult struct {
	reply transport.DeliveryReply
	err   error
}

func (a *fakeAgent) Fd() int { return a.fd }

func (a *fakeAgent) signal() {
	increment := [8]byte{1} // the eventfd counter, little-endian
	_, _ = unix.Write(a.fd, increment[:])
}

func (a *fakeAgent) consume() {
	var buf [8]byte
	_, _ = unix.Read(a.fd, buf[:])
}

func (a *fakeAgent) ReadAnnouncement() error {
	a.consume()
	return nil
}

func (a *fakeAgent) AnnouncementTimeout() error {
	return fmt.Errorf("timeout connecting to transport: %s", a.transport)
}

func (a *fakeAgent) ReplyTimeout(queueID string) error {
	return fmt.Errorf("%s: timeout receiving delivery status from transport: %s", queueID, a.transport)
}

// Send runs the delivery on a goroutine of its own, as a separate agent
// process would, and signals the descriptor when the reply is ready.
func (a *fakeAgent) Send(req *transport.DeliveryRequest) error {
	a.mu.Lock()
	a.inFlight = true
	a.mu.Unlock()
	go func() {
		reply, err := a.deliver(req)
		a.results <- fakeResult{reply, err}
		a.mu.Lock()
		defer a.mu.Unlock()
		a.inFlight = false
		if a.closed {
			unix.Close(a.fd)
			return
		}
		a.signal()
	}()
	return nil
}

func (a *fakeAgent) ReadReply() (transport.DeliveryReply, error) {
	a.consume()
	r := <-a.results
	return r.reply, r.err
}

func (a *fakeAgent) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil
	}
	a.closed = true
	close(a.done)
	if !a.inFlight {
		unix.Close(a.fd)
	}
	return nil
}

func (a *fakeAgent) deliver(req *transport.DeliveryRequest) (transport.DeliveryReply, error) {
	p := a.peers
	r := request{transport: a.transport, nexthop: req.Nexthop, queueID: req.QueueID}
	for _, rcpt := range req.Recipients {
		r.recipients = append(r.recipients, rcpt.Address)
	}
	p.mu.Lock()
	p.requests = append(p.requests, r)
	p.busy[req.Nexthop]++
	p.maxBusy[req.Nexthop] = max(p.maxBusy[req.Nexthop], p.busy[req.Nexthop])
	hold := p.hold
	trouble := p.siteTrouble[req.Nexthop]
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.busy[req.Nexthop]--
		p.mu.Unlock()
	}()

	if hold != nil {
		select {
		case <-hold:
		case <-a.done:
			return transport.DeliveryReply{}, errors.New("connection closed")
		}
	}

	// The retry and error agents record the deferral or bounce; neither
	// marks a deferred recipient done.
	if a.transport == serviceRetry {
		return transport.DeliveryReply{Status: -1}, nil
	}
	if trouble != "" {
		return transport.DeliveryReply{DSN: transport.DSN{Status: "4.4.1", Action: "delayed", Reason: trouble}, Status: -1}, nil
	}

	f, err := os.OpenFile(p.dir.Path(queue.Active, queue.ID(req.QueueID)), os.O_RDWR, 0)
	if err != nil {
		return transport.DeliveryReply{Status: -1}, nil
	}
	defer f.Close()
	status := 0
	for _, rcpt := range req.Recipients {
		p.mu.Lock()
		fate := p.decide(a.transport, req.Nexthop, rcpt.Address)
		p.mu.Unlock()
		if fate == deferred {
			status = -1
			continue
		}
		if err := queue.MarkDone(f, rcpt.Offset); err != nil {
			return transport.DeliveryReply{}, err
		}
	}
	return transport.DeliveryReply{Status: status}, nil
}

// syncBuffer collects log lines from several goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// harness runs a Loop over a temporary queue directory with fake peers.
type harness struct {
	t        *testing.T
	root     string
	dir      *queue.Dir
	cfg      *conf.Config
	log      *syncBuffer
	peers    *fakePeers
	resolver *fakeResolver
	loop     *Loop
	cancel   context.CancelFunc
	done     chan error
	seq      int
}

func newHarness(t *testing.T, params map[string]string) *harness {
	t.Helper()
	root := t.TempDir()
	configDir := filepath.Join(root, "etc")
	queueDir := filepath.Join(root, "queue")
	for _, d := range []string{configDir, queueDir} {
		require.NoError(t, os.MkdirAll(d, 0o755))
	}
	for _, q := range []string{queue.Incoming, queue.Active, queue.Deferred, queue.Corrupt, queue.Bounce, queue.Defer, queue.Trace, queue.Hold} {
		require.NoError(t, os.MkdirAll(filepath.Join(queueDir, q), 0o700))
	}
	var mainCF strings.Builder
	fmt.Fprintf(&mainCF, "queue_directory = %s\nmyhostname = mx.example.test\n", queueDir)
	for name, value := range params {
		fmt.Fprintf(&mainCF, "%s = %s\n", name, value)
	}
	mainCFPath := filepath.Join(configDir, "main.cf")
	require.NoError(t, os.WriteFile(mainCFPath, []byte(mainCF.String()), 0o644))
	// Like Postfix, conf.Load waits for a main.cf changed within the last
	// second to settle; an older time stamp skips that wait.
	past := time.Now().Add(-time.Minute)
	require.NoError(t, os.Chtimes(mainCFPath, past, past))
	cfg, err := conf.Load(configDir, []string{"process_name=qmgr", "service_name=qmgr"})
	require.NoError(t, err)

	logBuf := &syncBuffer{}
	log, err := maillog.New(maillog.Options{
		ProcessName:     "qmgr",
		Stderr:          true,
		Output:          logBuf,
		SyslogSocket:    filepath.Join(root, "no-syslog"),
		DelayResolution: 2,
	})
	require.NoError(t, err)

	dir := queue.NewDir(queueDir, cfg.HashQueueNames, cfg.HashQueueDepth)
	h := &harness{t: t, root: queueDir, dir: dir, cfg: cfg, log: logBuf, peers: newFakePeers(dir)}
	h.resolver = &fakeResolver{local: map[string]bool{"local.test": true}}
	h.loop = New(Options{
		Config:   cfg,
		Dir:      dir,
		Log:      log,
		Resolver: h.resolver,
		Peers:    h.peers,
	})
	return h
}

// queueMessage writes a ready queue file into incoming and returns its id.
func (h *harness) queueMessage(b queue.Builder) queue.ID {
	h.t.Helper()
	h.seq++
	id := queue.ID(fmt.Sprintf("%05X%06X", h.seq, 0xABC000+h.seq))
	if b.Arrival.IsZero() {
		b.Arrival = time.Now()
	}
	if len(b.Content) == 0 {
		b.Content = []string{"Subject: test", "", "body"}
	}
	require.NoError(h.t, writeReady(h.dir.Path(queue.Incoming, id), b.Bytes()))
	return id
}

func (h *harness) start() {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.done = make(chan error, 1)
	go func() { h.done <- h.loop.Run(ctx) }()
	h.t.Cleanup(h.stop)
}

func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.cancel = nil
	select {
	case err := <-h.done:
		if err != nil && !errors.Is(err, context.Canceled) {
			h.t.Errorf("loop: %v", err)
		}
		if h.resolver.batchOpen.Load() {
			h.t.Errorf("loop stopped with a resolve batch open, which keeps the resolver locked")
		}
	case <-time.After(10 * time.Second):
		h.t.Errorf("loop did not stop within 10s")
	}
}

// waitLog waits until the log contains substr n times.
func (h *harness) waitLog(substr string, n int) {
	h.t.Helper()
	require.Eventually(h.t, func() bool {
		return strings.Count(h.log.String(), substr) >= n
	}, 10*time.Second, 5*time.Millisecond, "log has %d of %q; log:\n%s", n, substr, h.log)
}

// fileIn reports whether the queue file is in the named queue.
func (h *harness) fileIn(q string, id queue.ID) (os.FileInfo, bool) {
	info, err := os.Stat(h.dir.Path(q, id))
	if errors.Is(err, syscall.ENOENT) {
		return nil, false
	}
	require.NoError(h.t, err)
	return info, true
}

func recipients(addrs ...string) []queue.BuildRecipient {
	var out []queue.BuildRecipient
	for _, a := range addrs {
		out = append(out, queue.BuildRecipient{Address: a})
	}
	return out
}

// writeReady writes a file with the mode of a finished queue file. It is
// built under another name and renamed into place, so a running loop
// never reads it half written.
func writeReady(path string, data []byte) error {
	tmp := filepath.Join(filepath.Dir(filepath.Dir(path)), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, data, 0o700); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o700); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
