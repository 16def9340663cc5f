package transport

import (
	"context"
	"time"

	"oqmgr-go/internal/attr"
)

// ResolveBatch is a run of resolve requests whose replies the caller
// collects together, so that trivial-rewrite works on the early requests
// while the caller prepares the later ones.
//
// Trivial-rewrite serves one request each time its socket becomes
// readable. A second request that arrived in the same read waits until
// more input arrives, possibly forever, so a batch keeps at most one
// request on each connection. A batch of depth n spreads its requests over
// n connections, and with all of them busy it reads the oldest reply
// before it sends the next request.
//
// A batch holds the Resolver from [Resolver.Batch] until Wait returns;
// the same goroutine must not call the Resolver in between.
type ResolveBatch struct {
	r     *Resolver
	ctx   context.Context
	depth int

	keys []resolveKey
	// from[i] is the request whose reply resolves request i: i itself
	// when it is sent, an earlier one when it repeats its predecessor, and
	// -1 when the Resolver's cache holds the result (see cached).
	from    []int
	cached  Resolution
	results []Resolution // results of keys[:len(results)]
	flights []flight     // requests sent and still without a reply, oldest first
	sent    int          // number of requests sent
	err     error        // first failure, after which nothing is sent
}

// flight is a request waiting for its reply: its index and its connection.
type flight struct {
	index, slot int
}

// Batch starts a batch of resolve requests spread over at most depth
// connections; see [ResolveBatch].
func (r *Resolver) Batch(ctx context.Context, depth int) *ResolveBatch {
	r.mu.Lock()
	return &ResolveBatch{r: r, ctx: ctx, depth: max(depth, 1)}
}

// Add sends the request that [Resolver.Resolve] would send for the same
// arguments, unless the cache holds the result as it would for Resolve. A
// failure is reported by Wait, and no request is sent after it.
func (b *ResolveBatch) Add(sender, address string, verify bool) {
	key := newResolveKey(sender, address, verify)
	i := len(b.keys)
	b.keys = append(b.keys, key)

	r := b.r
	switch {
	case address != "" && i > 0 && key == b.keys[i-1]:
		// As the one-entry cache would, once the previous reply is in.
		b.from = append(b.from, b.from[i-1])
		return
	case address != "" && i == 0 && key == r.lastResolve && r.now().Before(r.resolveCacheExpiry):
		b.from = append(b.from, -1)
		b.cached = r.lastResolution
		return
	}
	b.from = append(b.from, i)
	if b.err != nil {
		return
	}

	slot := b.sent % b.depth
	if len(b.flights) == b.depth {
		// Every connection carries a request, so read the oldest reply.
		if !b.settle(b.flights[0].index + 1) {
			return
		}
	}
	if err := b.send(slot, key); err != nil {
		b.err = r.exchangeError(err)
		return
	}
	b.flights = append(b.flights, flight{index: i, slot: slot})
	b.sent++
}

// send writes one request on the connection of slot.
func (b *ResolveBatch) send(slot int, key resolveKey) error {
	p, err := key.request().Bytes()
	if err != nil {
		return err
	}
	conn, err := b.r.slotConn(b.ctx, slot)
	if err != nil {
		return err
	}
	return conn.Write(b.ctx, p)
}

// settle fills in the results of the requests before index n, reading
// replies as needed, and reports whether all of them succeeded.
func (b *ResolveBatch) settle(n int) bool {
	r := b.r
	for len(b.results) < n {
		i := len(b.results)
		src := b.from[i]
		switch {
		case src < 0:
			b.results = append(b.results, b.cached)
			continue
		case src < i:
			b.results = append(b.results, b.results[src])
			continue
		case len(b.flights) == 0 || b.flights[0].index != i:
			// Never sent, so the failure that stopped the batch is its own.
			return false
		}
		slot := b.flights[0].slot
		b.flights = b.flights[1:]
		res, err := b.receive(slot, b.keys[i].address)
		if err != nil {
			// The requests in flight on other connections are lost too.
			b.err = err
			b.flights = nil
			r.dropLocked()
			return false
		}
		b.results = append(b.results, res)
	}
	return true
}

// receive reads the reply to the request on the connection of slot.
func (b *ResolveBatch) receive(slot int, address string) (Resolution, error) {
	r := b.r
	conn := r.slots[slot].conn
	var serverFlags int
	var res Resolution
	if err := conn.Scan(b.ctx, resolveReply(&serverFlags, &res)...); err != nil {
		return Resolution{}, r.exchangeError(err)
	}
	if err := checkResolution(res, address); err != nil {
		return Resolution{}, err
	}
	if serverFlags != 0 {
		// Trivial-rewrite requests a new connection. This one carries no
		// other request, so it can close at once.
		r.dropSlot(slot)
	}
	r.lastResolve = b.keys[len(b.results)]
	r.lastResolution = res
	r.resolveCacheExpiry = r.now().Add(cacheLifetime)
	return res, nil
}

// Wait collects the outstanding replies and returns the results in the
// order the requests were added. When a request failed, the results stop
// before it and err is the failure, worded as by [Resolver.Resolve]. The
// connections are then closed, and the caller repeats the requests after
// the failed one. Wait releases the Resolver.
func (b *ResolveBatch) Wait() (results []Resolution, err error) {
	r := b.r
	defer r.mu.Unlock()
	b.settle(len(b.keys))
	if b.sent > 0 {
		r.armIdleTimer()
	}
	if b.err != nil {
		r.dropLocked()
	}
	return b.results, b.err
}

// Abandon releases the Resolver without reading the outstanding replies,
// in place of Wait, and closes the connections that still carry a request.
func (b *ResolveBatch) Abandon() {
	r := b.r
	defer r.mu.Unlock()
	if len(b.flights) > 0 {
		r.dropLocked()
	}
}

// rewriteConn is one open connection to trivial-rewrite.
type rewriteConn struct {
	conn   *attr.Conn
	opened time.Time
}
