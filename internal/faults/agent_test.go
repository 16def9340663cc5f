package faults

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"oqmgr-go/internal/testbed"
)

// agentAnnouncement is what a Postfix 3.7 delivery agent writes first on
// every connection.
const agentAnnouncement = "protocol\x00delivery_request_protocol\x00\x00"

// fakeAgent serves a delivery-agent socket that master.cf does not list.
// After the announcement it reads the request, then writes reply and
// closes, or, when reply is nil, holds the connection until the test ends.
type fakeAgent struct {
	listener  net.Listener
	holdAfter bool // hold the connection after writing the reply
	requests  sync.WaitGroup
	mu        sync.Mutex
	served    int
}

func startFakeAgent(t *testing.T, path string, reply []byte) *fakeAgent {
	t.Helper()
	return startAgent(t, path, reply, false)
}

// startStallingAgent is startFakeAgent for an agent that writes part of a
// reply and then neither writes more nor closes.
func startStallingAgent(t *testing.T, path string, partial []byte) *fakeAgent {
	t.Helper()
	return startAgent(t, path, partial, true)
}

func startAgent(t *testing.T, path string, reply []byte, holdAfter bool) *fakeAgent {
	t.Helper()
	l, err := net.Listen("unix", path)
	require.NoError(t, err)
	require.NoError(t, os.Chmod(path, 0o666))
	a := &fakeAgent{listener: l, holdAfter: holdAfter}
	hold := make(chan struct{})
	t.Cleanup(func() {
		close(hold)
		l.Close()
		a.requests.Wait()
	})
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			a.requests.Add(1)
			go func() {
				defer a.requests.Done()
				defer conn.Close()
				a.serve(conn, reply, hold)
			}()
		}
	}()
	return a
}

func (a *fakeAgent) serve(conn net.Conn, reply []byte, hold <-chan struct{}) {
	if _, err := conn.Write([]byte(agentAnnouncement)); err != nil {
		return
	}
	// The request ends with the recipient list, whose last attribute is
	// notify_flags, then an empty name.
	var request []byte
	buf := make([]byte, 4096)
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for !bytes.Contains(request, []byte("notify_flags\x00")) || !bytes.HasSuffix(request, []byte("\x00\x00")) {
		n, err := conn.Read(buf)
		if err != nil {
			return
		}
		request = append(request, buf[:n]...)
	}
	a.mu.Lock()
	a.served++
	a.mu.Unlock()
	if reply == nil {
		<-hold
		return
	}
	_, _ = conn.Write(reply)
	if a.holdAfter {
		<-hold
	}
}

func (a *fakeAgent) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.served
}

// agentLines returns the qmgr lines about the test message and the fake
// transport, with the queue id replaced by "ID", so that two instances can
// be compared.
func agentLines(t *testing.T, inst *testbed.Instance, id string) []string {
	var out []string
	for _, line := range qmgrLines(t, inst) {
		if strings.Contains(line, "(queue active)") || strings.HasSuffix(line, ": removed") {
			continue
		}
		if id != "" && strings.Contains(line, id) || strings.Contains(line, "fake") {
			line = strings.ReplaceAll(line, id, "ID")
			if !slices.Contains(out, line) {
				out = append(out, line)
			}
		}
	}
	return out
}

// partialReply is the start of a reply that breaks off inside a name.
const partialReply = "status\x004.0.0\x00diag_ty"

// fakeTransportConfig is fastRetry with all mail routed to the transport
// "fake", which master.cf does not list.
func fakeTransportConfig() map[string]string {
	main := fastRetry()
	main["default_transport"] = "fake"
	main["relay_transport"] = "fake"
	return main
}

func TestAgent_MisbehavingReplyDefersMail(t *testing.T) {
	cases := []struct {
		name  string
		reply []byte
	}{
		{"garbage", []byte("\xff\xfenot an attribute list at all\n\x00")},
		{"disconnect mid-reply", []byte(partialReply)},
		{"oversized reply", append(append([]byte("status\x00"), bytes.Repeat([]byte("x"), 4<<20)...), "\x00\x00"...)},
		{"hang", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			lines := map[string][]string{}
			var mu sync.Mutex
			t.Run("group", func(t *testing.T) {
				for _, impl := range implementations(t) {
					t.Run(impl.name, func(t *testing.T) {
						t.Parallel()
						main := fakeTransportConfig()
						inst := startInstance(t, impl.binary, testbed.Options{MainCF: main})
						agent := startFakeAgent(t, filepath.Join(inst.QueueDir, "private", "fake"), tc.reply)

						require.NoError(t, inst.SubmitSMTP("sender@example.org", []string{"rcpt@example.net"}, "Subject: fake agent\n\nbody\n"))
						require.Eventually(t, func() bool { return agent.count() >= 1 }, 30*time.Second, 50*time.Millisecond, "request reached the fake agent")
						// postlogd may write cleanup's line a moment later.
						var ids []string
						require.Eventually(t, func() bool {
							ids = idsOf(t, inst)
							return len(ids) == 1
						}, 10*time.Second, 50*time.Millisecond, "one queue id logged by cleanup")

						if tc.reply == nil {
							// A hung agent holds the message in active:
							// the C oqmgr waits daemon_timeout (18000 s).
							time.Sleep(3 * time.Second)
							n, err := inst.QueueCount("active")
							require.NoError(t, err)
							assert.Equal(t, 1, n, "message held in active while the agent hangs")
						} else {
							require.Eventually(t, func() bool {
								n, err := inst.QueueCount("deferred")
								return err == nil && n == 1
							}, 30*time.Second, 100*time.Millisecond, "message deferred")
						}
						assert.Zero(t, corruptCount(t, inst), "files in corrupt")
						assert.Len(t, qmgrPIDs(inst), 1, "qmgr processes")
						if tc.reply != nil {
							// postlogd may write the last warning a moment
							// after the file reached its queue.
							require.Eventually(t, func() bool {
								got := agentLines(t, inst, ids[0])
								return len(got) > 0 && strings.Contains(got[len(got)-1], "fake")
							}, 10*time.Second, 50*time.Millisecond, "qmgr warnings about the fake transport")
						}
						mu.Lock()
						lines[impl.name] = agentLines(t, inst, ids[0])
						mu.Unlock()
					})
				}
			})
			t.Logf("C oqmgr lines: %q", lines["c"])
			t.Logf("our lines:     %q", lines["go"])
			if tc.reply == nil {
				assert.Equal(t, lines["c"], lines["go"], "qmgr lines about the message and the fake transport")
				return
			}
			// Both programs end with the same summary line.
			require.NotEmpty(t, lines["go"])
			require.NotEmpty(t, lines["c"])
			assert.Equal(t, lines["c"][len(lines["c"])-1], lines["go"][len(lines["go"])-1], "last qmgr line")
			t.Run("reader warning", func(t *testing.T) {
				if tc.name == "oversized reply" {
					// NOTE: deliberate difference. The C reader has no size
					// limit and reads on to a later error; ours stops at
					// attr.MaxValueSize to bound memory against a hostile peer.
					assert.Contains(t, lines["go"][0], "exceeds 1048576 bytes")
					return
				}
				assert.Equal(t, lines["c"], lines["go"], "qmgr lines about the message and the fake transport")
			})
		})
	}
}

// idsOf returns the queue ids that cleanup logged.
func idsOf(t *testing.T, inst *testbed.Instance) []string {
	lines, err := inst.LogLines("postfix/cleanup[")
	require.NoError(t, err)
	var ids []string
	for _, line := range lines {
		_, rest, ok := strings.Cut(line, "]: ")
		if id, _, ok2 := strings.Cut(rest, ": message-id="); ok && ok2 {
			ids = append(ids, id)
		}
	}
	return ids
}

func TestAgent_StallMidReplyTripsWatchdog(t *testing.T) {
	// The C oqmgr reads the rest of a reply that has begun in a blocking
	// read, so an agent that stops mid-reply holds the whole process until
	// the watchdog, qmgr_daemon_timeout, ends it. Master then starts a new
	// one, and the mail stays queued.
	for _, impl := range implementations(t) {
		t.Run(impl.name, func(t *testing.T) {
			t.Parallel()
			main := fakeTransportConfig()
			main["qmgr_daemon_timeout"] = "4s"
			inst := startInstance(t, impl.binary, testbed.Options{MainCF: main})
			agent := startStallingAgent(t, filepath.Join(inst.QueueDir, "private", "fake"), []byte(partialReply))

			require.NoError(t, inst.SubmitSMTP("sender@example.org", []string{"rcpt@example.net"}, "Subject: stalled agent\n\nbody\n"))
			require.Eventually(t, func() bool { return agent.count() >= 1 }, 30*time.Second, 50*time.Millisecond, "request reached the fake agent")
			require.Eventually(t, func() bool {
				return slices.ContainsFunc(qmgrLines(t, inst), func(line string) bool {
					return strings.HasSuffix(line, "fatal: watchdog timeout")
				})
			}, 30*time.Second, 100*time.Millisecond, "qmgr lines:\n%s", strings.Join(qmgrLines(t, inst), "\n"))

			queued := 0
			for _, q := range []string{"incoming", "active", "deferred"} {
				n, err := inst.QueueCount(q)
				require.NoError(t, err)
				queued += n
			}
			assert.Equal(t, 1, queued, "messages still queued")
			assert.Zero(t, corruptCount(t, inst), "files in corrupt")
		})
	}
}
