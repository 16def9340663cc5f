package transport

import (
	"context"
	"io"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"oqmgr-go/internal/attr"
)

const resolveReplyWire = "flags\x000\x00transport\x00smtp\x00nexthop\x00example.com\x00" +
	"recipient\x00user@example.com\x00flags\x004096\x00\x00"

// rewriteServer replies to every request on a connection with reply, and
// sends the bytes of each request it read to requests.
func rewriteServer(t *testing.T, reply string, requests chan<- []byte) *fakeService {
	return startFake(t, "rewrite", func(p *peer) {
		p.announce("trivial_rewrite_protocol")
		for {
			start := p.raw.Len()
			if _, err := p.r.ReadList(); err != nil {
				return
			}
			requests <- p.raw.Bytes()[start:]
			p.send(reply)
		}
	})
}

func TestResolve_Transcript(t *testing.T) {
	tests := []struct {
		name   string
		verify bool
		want   string
	}{
		{"resolve", false, "request\x00resolve\x00sender\x00s@example.org\x00address\x00user@example.com\x00\x00"},
		{"verify", true, "request\x00verify\x00sender\x00s@example.org\x00address\x00user@example.com\x00\x00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			requests := make(chan []byte, 1)
			fake := rewriteServer(t, resolveReplyWire, requests)
			r := NewResolver(fake.queueDir, "rewrite", time.Second)
			defer r.Close()

			got, err := r.Resolve(context.Background(), "s@example.org", "user@example.com", tt.verify)

			require.NoError(t, err)
			assert.Equal(t, tt.want, string(<-requests))
			assert.Equal(t, Resolution{Transport: "smtp", Nexthop: "example.com",
				Recipient: "user@example.com", Flags: 4096}, got)
		})
	}
}

func TestResolve_ReusesConnectionAndCaches(t *testing.T) {
	requests := make(chan []byte, 10)
	fake := rewriteServer(t, resolveReplyWire, requests)
	r := NewResolver(fake.queueDir, "rewrite", time.Second)
	defer r.Close()
	now := time.Unix(1700000000, 0)
	r.now = func() time.Time { return now }
	ctx := context.Background()

	_, err := r.Resolve(ctx, "", "user@example.com", false)
	require.NoError(t, err)
	_, err = r.Resolve(ctx, "", "user@example.com", false)
	require.NoError(t, err)
	assert.Len(t, requests, 1, "identical request within 30s is answered from the cache")

	now = now.Add(31 * time.Second)
	_, err = r.Resolve(ctx, "", "user@example.com", false)
	require.NoError(t, err)
	_, err = r.Resolve(ctx, "", "other@example.com", false)
	require.NoError(t, err)
	assert.Len(t, requests, 3, "expired and different requests go to the server")
	assert.Equal(t, int32(1), fake.connections.Load(), "one connection serves every request")
}

func TestResolve_ServerFlagsForceReconnect(t *testing.T) {
	requests := make(chan []byte, 10)
	reply := "flags\x001\x00transport\x00smtp\x00nexthop\x00example.com\x00" +
		"recipient\x00user@example.com\x00flags\x000\x00\x00"
	fake := rewriteServer(t, reply, requests)
	r := NewResolver(fake.queueDir, "rewrite", time.Second)
	defer r.Close()
	ctx := context.Background()

	_, err := r.Resolve(ctx, "", "a@example.com", false)
	require.NoError(t, err)
	_, err = r.Resolve(ctx, "", "b@example.com", false)
	require.NoError(t, err)

	assert.Equal(t, int32(2), fake.connections.Load())
}

func TestResolve_ReconnectsAfterServerClosed(t *testing.T) {
	// Like trivial-rewrite exiting after max_idle, this server replies to
	// one request per connection and then closes it.
	fake := startFake(t, "rewrite", func(p *peer) {
		p.announce("trivial_rewrite_protocol")
		p.readLists(1)
		p.send(resolveReplyWire)
	})
	r := NewResolver(fake.queueDir, "rewrite", time.Second)
	defer r.Close()
	ctx := context.Background()

	_, err := r.Resolve(ctx, "", "a@example.com", false)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return r.slots[0].conn.PeerClosed() }, time.Second, 5*time.Millisecond)
	_, err = r.Resolve(ctx, "", "b@example.com", false)

	assert.NoError(t, err)
	assert.Equal(t, int32(2), fake.connections.Load())
}

func TestResolve_Failures(t *testing.T) {
	tests := []struct {
		name            string
		reply           string
		wantIs          error
		wantMsg         string
		wantLoggedFirst bool
	}{
		{"null transport", "flags\x000\x00transport\x00\x00nexthop\x00x\x00recipient\x00u@x\x00flags\x000\x00\x00", nil,
			"resolve_clnt: null transport result for: <user@example.com>", true},
		{"null recipient", "flags\x000\x00transport\x00smtp\x00nexthop\x00x\x00recipient\x00\x00flags\x000\x00\x00", nil,
			"resolve_clnt: null recipient result for: <user@example.com>", true},
		{"missing attribute", "flags\x000\x00transport\x00smtp\x00\x00", attr.ErrProtocol,
			"problem talking to service rewrite: missing attribute nexthop in input from private/rewrite socket", false},
		{"closed without reply", "", nil,
			"problem talking to service rewrite: end of input from private/rewrite socket: EOF", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := startFake(t, "rewrite", func(p *peer) {
				p.announce("trivial_rewrite_protocol")
				p.readLists(1)
				p.send(tt.reply)
			})
			r := NewResolver(fake.queueDir, "rewrite", time.Second)
			defer r.Close()

			_, err := r.Resolve(context.Background(), "", "user@example.com", false)

			assert.EqualError(t, err, tt.wantMsg)
			if tt.wantIs != nil {
				assert.ErrorIs(t, err, tt.wantIs)
			}
			assert.Equal(t, tt.wantLoggedFirst, LoggedOnFirstFailure(err), "logged on the first attempt")
			assert.False(t, r.open(), "a failed exchange drops the connection")
		})
	}
}

func TestResolve_NoServer(t *testing.T) {
	r := NewResolver(t.TempDir(), "rewrite", time.Second)

	_, err := r.Resolve(context.Background(), "", "user@example.com", false)

	assert.EqualError(t, err, "problem talking to service rewrite: connect to private/rewrite: No such file or directory")
	assert.False(t, LoggedOnFirstFailure(err), "a missing socket is logged from the second attempt on")
}

func TestResolve_HungServerTimesOut(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	fake := startFake(t, "rewrite", func(p *peer) {
		p.announce("trivial_rewrite_protocol")
		<-release
	})
	r := NewResolver(fake.queueDir, "rewrite", 50*time.Millisecond)
	defer r.Close()

	_, err := r.Resolve(context.Background(), "", "user@example.com", false)

	// The C oqmgr logs the errno of its stream timeout, ETIMEDOUT.
	assert.ErrorIs(t, err, os.ErrDeadlineExceeded)
	assert.EqualError(t, err, "problem talking to service rewrite: Connection timed out")
	assert.True(t, LoggedOnFirstFailure(err), "a timeout is logged on the first attempt")
}

func TestRewrite_Transcript(t *testing.T) {
	requests := make(chan []byte, 1)
	fake := rewriteServer(t, "flags\x000\x00address\x00user@example.com\x00\x00", requests)
	r := NewResolver(fake.queueDir, "rewrite", time.Second)
	defer r.Close()

	got, err := r.Rewrite(context.Background(), "local", "user")

	require.NoError(t, err)
	assert.Equal(t, "request\x00rewrite\x00rule\x00local\x00address\x00user\x00\x00", string(<-requests))
	assert.Equal(t, "user@example.com", got)
}

func TestResolve_IdleConnectionClosed(t *testing.T) {
	closed := make(chan struct{})
	fake := startFake(t, "rewrite", func(p *peer) {
		p.announce("trivial_rewrite_protocol")
		p.readLists(1)
		p.send(resolveReplyWire)
		_, err := p.r.ReadList()
		assert.ErrorIs(t, err, io.EOF, "client should close the idle connection")
		close(closed)
	})
	r := NewResolver(fake.queueDir, "rewrite", time.Second)
	r.idleLimit = 50 * time.Millisecond
	defer r.Close()

	_, err := r.Resolve(context.Background(), "", "user@example.com", false)
	require.NoError(t, err)

	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("connection still open 5s after the 50ms idle limit")
	}
}

func TestResolve_OldConnectionReplaced(t *testing.T) {
	requests := make(chan []byte, 10)
	fake := rewriteServer(t, resolveReplyWire, requests)
	r := NewResolver(fake.queueDir, "rewrite", time.Second)
	defer r.Close()
	now := time.Unix(1700000000, 0)
	r.now = func() time.Time { return now }
	ctx := context.Background()

	_, err := r.Resolve(ctx, "", "a@example.com", false)
	require.NoError(t, err)
	now = now.Add(ipcTTL)
	_, err = r.Resolve(ctx, "", "b@example.com", false)
	require.NoError(t, err)

	assert.Equal(t, int32(2), fake.connections.Load())
}
