package transport

import (
	"bytes"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"oqmgr-go/internal/attr"
)

// fakeService is a scripted Postfix service listening on a real AF_UNIX
// socket at queueDir/private/<name>. Each accepted connection runs script.
type fakeService struct {
	queueDir    string
	connections atomic.Int32
}

// peer is the server side of one connection, driven by a script.
type peer struct {
	t    *testing.T
	conn net.Conn
	raw  bytes.Buffer // every byte read from the client so far
	r    *attr.Reader
}

func startFake(t *testing.T, name string, script func(p *peer)) *fakeService {
	t.Helper()
	f := &fakeService{queueDir: t.TempDir()}
	require.NoError(t, os.MkdirAll(filepath.Join(f.queueDir, "private"), 0o755))
	ln, err := net.Listen("unix", filepath.Join(f.queueDir, "private", name))
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })

	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.connections.Add(1)
			p := &peer{t: t, conn: c}
			p.r = attr.NewReader(io.TeeReader(c, &p.raw), "client")
			go func() {
				defer c.Close()
				script(p)
			}()
		}
	}()
	return f
}

// send writes raw bytes to the client.
func (p *peer) send(s string) {
	_, _ = p.conn.Write([]byte(s))
}

// readLists reads n lists and returns the exact bytes they arrived as, or
// what arrived before an error. A client sends nothing after its request
// until it has the reply, so the bytes read are exactly the request.
func (p *peer) readLists(n int) []byte {
	for range n {
		if _, err := p.r.ReadList(); err != nil {
			break
		}
	}
	return bytes.Clone(p.raw.Bytes())
}

// announce sends the protocol announcement of a Postfix 3.6+ server.
func (p *peer) announce(protocol string) {
	p.send("protocol\x00" + protocol + "\x00\x00")
}
