package transport

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	"oqmgr-go/internal/attr"
)

// Bits of [Resolution.Flags] that the queue manager acts on (resolve_clnt.h).
const (
	ResolveError      = 4   // bad address syntax
	ResolveFail       = 8   // resolver failure, such as a table lookup error
	ResolveClassLocal = 256 // the domain is local ($mydestination, $inet_interfaces)
)

// Resolution is trivial-rewrite's result for one address. Trivial-rewrite
// reports a bad address or a lookup failure only in Flags and still names a
// transport. Like the C queue manager, the caller then picks the error or
// retry transport instead.
type Resolution struct {
	Transport string // master.cf service name of the delivery agent
	Nexthop   string
	Recipient string // the address to deliver to, in internal form
	Flags     int    // Resolve* bits
}

// Defaults of the Postfix parameters that govern a long-lived client
// connection (clnt_stream.c).
const (
	ipcIdle = 5 * time.Second    // ipc_idle: close after this long unused
	ipcTTL  = 1000 * time.Second // ipc_ttl: close after this long in total
)

// cacheLifetime is how long the one-entry caches of the C resolve and
// rewrite clients keep a result (resolve_clnt.c, rewrite_clnt.c).
const cacheLifetime = 30 * time.Second

type resolveKey struct{ class, sender, address string }

type rewriteKey struct{ rule, address string }

// Resolver is a long-lived client of trivial-rewrite, mirroring Postfix's
// resolve_clnt and rewrite_clnt. It keeps one connection, opened on first
// use, and reconnects when the server requests it, when the connection
// broke, and after the connection was idle for 5s or open for 1000s (the
// ipc_idle and ipc_ttl defaults). Like the C client it caches the last
// result of each request kind for 30 seconds.
//
// A Resolver is safe for concurrent use. It sends requests one at a time.
type Resolver struct {
	queueDir  string
	service   string
	timeout   time.Duration
	idleLimit time.Duration // close the connection after this long unused
	ttlLimit  time.Duration // close the connection after this long open
	now       func() time.Time

	mu sync.Mutex // guards every field below
	// slots holds the connections, open or not. Resolve and Rewrite use
	// the first; a batch spreads its requests over more.
	slots     []rewriteConn
	lastUsed  time.Time   // when a connection last completed a request
	idleTimer *time.Timer // runs while a connection is open, see idleCheck

	lastResolve        resolveKey
	lastResolution     Resolution
	lastRewrite        rewriteKey
	lastRewriteResult  string
	resolveCacheExpiry time.Time
	rewriteCacheExpiry time.Time
}

// NewResolver returns a client of the service private/<service> under
// queueDir, normally private/rewrite ($rewrite_service_name). Timeout
// bounds each read and write, like Postfix's ipc_timeout.
func NewResolver(queueDir, service string, timeout time.Duration) *Resolver {
	return &Resolver{
		queueDir:  queueDir,
		service:   service,
		timeout:   timeout,
		idleLimit: ipcIdle,
		ttlLimit:  ipcTTL,
		now:       time.Now,
	}
}

// Resolve looks up where mail for address, sent by sender, should go. Both are
// in internal (unquoted) form. With verify set the request is a "verify"
// request, as the C queue manager sends for address verification probes.
//
// Resolve makes one attempt. On failure it drops the connection and returns
// an error reading "problem talking to service rewrite: ...". The C client
// retries forever, one second apart, and that loop is left to the caller.
// A reply with an empty transport, or an empty recipient for a non-empty
// address, also counts as a failure.
func (r *Resolver) Resolve(ctx context.Context, sender, address string, verify bool) (Resolution, error) {
	key := newResolveKey(sender, address, verify)

	r.mu.Lock()
	defer r.mu.Unlock()
	if address != "" && key == r.lastResolve && r.now().Before(r.resolveCacheExpiry) {
		return r.lastResolution, nil
	}

	var serverFlags int
	var res Resolution
	err := r.exchange(ctx, key.request(), resolveReply(&serverFlags, &res)...)
	if err != nil {
		r.dropLocked()
		return Resolution{}, r.exchangeError(err)
	}
	if err := checkResolution(res, address); err != nil {
		r.dropLocked()
		return Resolution{}, err
	}
	if serverFlags != 0 {
		r.dropLocked()
	}

	r.lastResolve = key
	r.lastResolution = res
	r.resolveCacheExpiry = r.now().Add(cacheLifetime)
	return res, nil
}

func newResolveKey(sender, address string, verify bool) resolveKey {
	key := resolveKey{class: "resolve", sender: sender, address: address}
	if verify {
		key.class = "verify"
	}
	return key
}

// request encodes the resolve or verify request for the key.
func (k resolveKey) request() *attr.Builder {
	var b attr.Builder
	b.Str("request", k.class)
	b.Str("sender", k.sender)
	b.Str("address", k.address)
	b.End()
	return &b
}

// resolveReply returns the fields of trivial-rewrite's reply to a resolve
// request: the server flags, then the result.
func resolveReply(serverFlags *int, res *Resolution) []attr.Field {
	return []attr.Field{
		attr.Int("flags", serverFlags),
		attr.Str("transport", &res.Transport),
		attr.Str("nexthop", &res.Nexthop),
		attr.Str("recipient", &res.Recipient),
		attr.Int("flags", &res.Flags),
	}
}

// checkResolution rejects a reply with an empty transport, or with an
// empty recipient for a non-empty address.
func checkResolution(res Resolution, address string) error {
	if res.Transport == "" || res.Recipient == "" && address != "" {
		return &nullResultError{transport: res.Transport == "", address: address}
	}
	return nil
}

// Rewrite applies the trivial-rewrite ruleset rule ("local" or "remote") to
// address. Address and result are in external form: the caller quotes the
// local part before and unquotes it after, as the C queue manager does for
// the redirect record. Failures are handled as in [Resolver.Resolve].
func (r *Resolver) Rewrite(ctx context.Context, rule, address string) (string, error) {
	key := rewriteKey{rule: rule, address: address}

	r.mu.Lock()
	defer r.mu.Unlock()
	if key == r.lastRewrite && r.now().Before(r.rewriteCacheExpiry) {
		return r.lastRewriteResult, nil
	}

	var b attr.Builder
	b.Str("request", "rewrite")
	b.Str("rule", rule)
	b.Str("address", address)
	b.End()

	var serverFlags int
	var result string
	err := r.exchange(ctx, &b, attr.Int("flags", &serverFlags), attr.Str("address", &result))
	if err != nil {
		r.dropLocked()
		return "", r.exchangeError(err)
	}
	if serverFlags != 0 {
		r.dropLocked()
	}

	r.lastRewrite = key
	r.lastRewriteResult = result
	r.rewriteCacheExpiry = r.now().Add(cacheLifetime)
	return result, nil
}

// nullResultError is a reply with an empty transport, or an empty recipient
// for a non-empty address, worded as the C client's warning.
type nullResultError struct {
	transport bool // the transport is empty, else the recipient
	address   string
}

func (e *nullResultError) Error() string {
	field := "recipient"
	if e.transport {
		field = "transport"
	}
	return "resolve_clnt: null " + field + " result for: <" + e.address + ">"
}

// LoggedOnFirstFailure reports whether the C client logs a failed resolve
// request on its first attempt, not only from the second on. It does so for
// a null result, and for an I/O error other than EPIPE or ENOENT, the errors
// that a server which closed an idle connection causes.
func LoggedOnFirstFailure(err error) bool {
	var null *nullResultError
	if errors.As(err, &null) {
		return true
	}
	var talk *talkError
	if !errors.As(err, &talk) {
		return false
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno != syscall.EPIPE && errno != syscall.ENOENT
	}
	return errors.Is(err, os.ErrDeadlineExceeded)
}

// ConnectFailure reports whether a failed request never reached
// trivial-rewrite because the connect failed, and returns the endpoint,
// e.g. "private/rewrite", and the C library's text for the error. The C
// client logs such failures as "connect #N to subsystem ENDPOINT: TEXT".
func ConnectFailure(err error) (endpoint, reason string, ok bool) {
	var connectErr *attr.ConnectError
	if !errors.As(err, &connectErr) {
		return "", "", false
	}
	return connectErr.Endpoint, attr.Strerror(connectErr.Err), true
}

// exchangeError wraps a failed exchange in the warning text of the C client,
// "problem talking to service rewrite: %m": an I/O error or timeout on an
// open connection shows as its C library text, e.g. "Connection timed
// out". Other failures keep their own text.
func (r *Resolver) exchangeError(err error) error {
	var connectErr *attr.ConnectError
	var errno syscall.Errno
	if !errors.As(err, &connectErr) && (errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &errno)) {
		return &talkError{service: r.service, text: attr.Strerror(err), err: err}
	}
	return fmt.Errorf("problem talking to service %s: %w", r.service, err)
}

// talkError is an I/O failure on the trivial-rewrite connection, worded as
// the C client logs it, that still unwraps to the underlying error.
type talkError struct {
	service string
	text    string
	err     error
}

func (e *talkError) Error() string {
	return "problem talking to service " + e.service + ": " + e.text
}

func (e *talkError) Unwrap() error { return e.err }

// Close closes the connection, if one is open. The Resolver stays usable
// and reconnects on its next request.
func (r *Resolver) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var err error
	for i := range r.slots {
		if c := r.slots[i].conn; c != nil {
			err = errors.Join(err, c.Close())
			r.slots[i].conn = nil
		}
	}
	r.stopIdleTimer()
	return err
}

// exchange sends one request list and scans the reply, connecting first if
// needed. The caller holds r.mu.
func (r *Resolver) exchange(ctx context.Context, b *attr.Builder, reply ...attr.Field) error {
	request, err := b.Bytes()
	if err != nil {
		return err
	}
	conn, err := r.slotConn(ctx, 0)
	if err != nil {
		return err
	}
	if err := conn.Write(ctx, request); err != nil {
		return err
	}
	if err := conn.Scan(ctx, reply...); err != nil {
		return err
	}
	r.armIdleTimer()
	return nil
}

// slotConn returns the open connection of slot, whose protocol
// announcement has been checked, replacing one that is stale. The caller
// holds r.mu.
func (r *Resolver) slotConn(ctx context.Context, slot int) (*attr.Conn, error) {
	for len(r.slots) <= slot {
		r.slots = append(r.slots, rewriteConn{})
	}
	c := &r.slots[slot]
	if c.conn != nil && (c.conn.PeerClosed() || r.now().Sub(c.opened) >= r.ttlLimit) {
		r.dropSlot(slot)
	}
	if c.conn != nil {
		return c.conn, nil
	}

	// The scheduling loop is the only caller and has nothing else to do
	// while it waits for trivial-rewrite, so it waits on its own thread.
	conn, err := attr.DialDirect(r.queueDir, classPrivate, r.service, r.timeout)
	if err != nil {
		return nil, err
	}
	if err := conn.ExpectProtocol(ctx, protoRewrite); err != nil {
		conn.Close()
		return nil, err
	}
	c.conn = conn
	c.opened = r.now()
	return conn, nil
}

// dropSlot closes the connection of one slot.
func (r *Resolver) dropSlot(slot int) {
	if c := r.slots[slot].conn; c != nil {
		_ = c.Close()
		r.slots[slot].conn = nil
	}
}

// dropLocked closes every connection.
func (r *Resolver) dropLocked() {
	for i := range r.slots {
		r.dropSlot(i)
	}
	r.stopIdleTimer()
}

// open reports whether a connection is open.
func (r *Resolver) open() bool {
	for _, c := range r.slots {
		if c.conn != nil {
			return true
		}
	}
	return false
}

// armIdleTimer notes that the connection was just used and makes sure a
// timer will close it once it has been unused for the idle limit, so an
// idle queue manager does not keep a trivial-rewrite process. One timer
// serves the whole connection rather than one per request.
func (r *Resolver) armIdleTimer() {
	r.lastUsed = r.now()
	if r.idleTimer == nil {
		r.idleTimer = time.AfterFunc(r.idleLimit, r.idleCheck)
	}
}

// idleCheck closes the connection if it has been unused for the idle
// limit, or else runs again when it would be.
func (r *Resolver) idleCheck() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.open() || r.idleTimer == nil {
		return
	}
	unused := r.now().Sub(r.lastUsed)
	if unused >= r.idleLimit {
		r.dropLocked()
		return
	}
	r.idleTimer.Reset(r.idleLimit - unused)
}

func (r *Resolver) stopIdleTimer() {
	if r.idleTimer != nil {
		r.idleTimer.Stop()
		r.idleTimer = nil
	}
}
