package transport

import (
	"bytes"
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// eventRewriteServer serves resolve requests the way trivial-rewrite's
// multi-server loop does: one read per readable event, and a reply to the
// first request of that read only. A request that arrived in the same read
// gets no reply, and overlaps counts such reads. The reply routes the
// address to smtp with its domain as nexthop, and a domain of "null.test"
// gets an empty transport.
func eventRewriteServer(t *testing.T, requests, overlaps *atomic.Int32) *fakeService {
	return startFake(t, "rewrite", func(p *peer) {
		p.announce("trivial_rewrite_protocol")
		buf := make([]byte, 4096)
		for {
			n, err := p.conn.Read(buf)
			if err != nil {
				return
			}
			address, rest, ok := firstRequest(buf[:n])
			if !assert.True(t, ok, "a read holds a whole request") {
				return
			}
			if rest > 0 {
				overlaps.Add(1)
			}
			requests.Add(1)
			_, domain, _ := strings.Cut(address, "@")
			tr := "smtp"
			if domain == "null.test" {
				tr = ""
			}
			p.send("flags\x000\x00transport\x00" + tr + "\x00nexthop\x00" + domain +
				"\x00recipient\x00" + address + "\x00flags\x000\x00\x00")
		}
	})
}

// firstRequest parses the first list in p, returning its address attribute
// and how many bytes follow the list.
func firstRequest(p []byte) (address string, rest int, ok bool) {
	fields := bytes.Split(p, []byte{0})
	used := 0
	for i := 0; i < len(fields); i += 2 {
		used += len(fields[i]) + 1
		if len(fields[i]) == 0 {
			return address, len(p) - used, true
		}
		if i+1 >= len(fields) {
			return "", 0, false
		}
		used += len(fields[i+1]) + 1
		if string(fields[i]) == "address" {
			address = string(fields[i+1])
		}
	}
	return "", 0, false
}

func recipientsOf(results []Resolution) []string {
	var out []string
	for _, r := range results {
		out = append(out, r.Recipient)
	}
	return out
}

func TestResolveBatch_OneRequestPerConnection(t *testing.T) {
	for _, depth := range []int{1, 3} {
		var requests, overlaps atomic.Int32
		fake := eventRewriteServer(t, &requests, &overlaps)
		r := NewResolver(fake.queueDir, "rewrite", time.Second)
		addrs := []string{"a@one.test", "b@two.test", "c@one.test", "d@three.test", "e@two.test", "f@one.test", "g@four.test"}

		b := r.Batch(context.Background(), depth)
		for _, a := range addrs {
			b.Add("s@example.org", a, false)
		}
		results, err := b.Wait()

		require.NoError(t, err, "depth %d", depth)
		assert.Equal(t, addrs, recipientsOf(results), "depth %d: results in the order added", depth)
		assert.Zero(t, overlaps.Load(), "depth %d: a connection carried two requests at once", depth)
		assert.Equal(t, int32(depth), fake.connections.Load(), "depth %d: connections", depth)
		r.Close()
	}
}

func TestResolveBatch_RepeatedAddressAskedOnce(t *testing.T) {
	var requests, overlaps atomic.Int32
	fake := eventRewriteServer(t, &requests, &overlaps)
	r := NewResolver(fake.queueDir, "rewrite", time.Second)
	defer r.Close()
	ctx := context.Background()

	b := r.Batch(ctx, 2)
	for _, a := range []string{"a@one.test", "a@one.test", "b@two.test"} {
		b.Add("", a, false)
	}
	results, err := b.Wait()
	require.NoError(t, err)
	assert.Equal(t, []string{"a@one.test", "a@one.test", "b@two.test"}, recipientsOf(results))
	assert.Equal(t, int32(2), requests.Load(), "a repeat of the previous address is answered from the cache")

	// The last result stays cached for the next batch and for Resolve.
	b = r.Batch(ctx, 2)
	b.Add("", "b@two.test", false)
	_, err = b.Wait()
	require.NoError(t, err)
	_, err = r.Resolve(ctx, "", "b@two.test", false)
	require.NoError(t, err)
	assert.Equal(t, int32(2), requests.Load(), "the cached answer of the last request")
}

func TestResolveBatch_FailureStopsResults(t *testing.T) {
	var requests, overlaps atomic.Int32
	fake := eventRewriteServer(t, &requests, &overlaps)
	r := NewResolver(fake.queueDir, "rewrite", time.Second)
	defer r.Close()

	b := r.Batch(context.Background(), 2)
	for _, a := range []string{"a@one.test", "b@null.test", "c@one.test", "d@two.test"} {
		b.Add("", a, false)
	}
	results, err := b.Wait()

	assert.Equal(t, []string{"a@one.test"}, recipientsOf(results), "the answers before the failed request")
	assert.EqualError(t, err, "resolve_clnt: null transport result for: <b@null.test>")
	assert.True(t, LoggedOnFirstFailure(err))
	assert.False(t, r.open(), "a failed batch drops its connections")

	_, err = r.Resolve(context.Background(), "", "c@one.test", false)
	assert.NoError(t, err, "the resolver reconnects after a failed batch")
}

func TestResolveBatch_NoServer(t *testing.T) {
	r := NewResolver(t.TempDir(), "rewrite", time.Second)

	b := r.Batch(context.Background(), 2)
	b.Add("", "a@one.test", false)
	b.Add("", "b@two.test", false)
	results, err := b.Wait()

	assert.Empty(t, results)
	assert.EqualError(t, err, "problem talking to service rewrite: connect to private/rewrite: No such file or directory")
	_, _, isConnect := ConnectFailure(err)
	assert.True(t, isConnect, "the caller counts it as a failed connect")
}

func TestResolveBatch_AbandonReleasesResolver(t *testing.T) {
	var requests, overlaps atomic.Int32
	fake := eventRewriteServer(t, &requests, &overlaps)
	r := NewResolver(fake.queueDir, "rewrite", time.Second)
	ctx := context.Background()

	b := r.Batch(ctx, 2)
	b.Add("", "a@one.test", false)
	b.Add("", "b@two.test", false)
	b.Abandon()

	assert.False(t, r.open(), "connections with requests in flight are closed")
	res, err := r.Resolve(ctx, "", "c@three.test", false)
	require.NoError(t, err, "the resolver is usable after an abandoned batch")
	assert.Equal(t, "c@three.test", res.Recipient)
	closed := make(chan struct{})
	go func() {
		r.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close still waits for the resolver 5s after an abandoned batch")
	}
}
