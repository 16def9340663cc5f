package faults

import (
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"oqmgr-go/internal/testbed"
)

// cOqmgr is the old queue manager of the installed Postfix, the reference
// that every comparison runs.
const cOqmgr = "/usr/lib/postfix/sbin/oqmgr"

// implementation is a queue manager binary under test.
type implementation struct {
	name   string // "go" or "c", used in subtest names
	binary string
}

// implementations returns our queue manager and the C oqmgr.
func implementations(t *testing.T) []implementation {
	t.Helper()
	testbed.RequireEnvironment(t)
	return []implementation{{"go", ourBinary(t)}, {"c", cOqmgr}}
}

// startInstance creates and starts a private Postfix instance whose qmgr
// service runs binary.
func startInstance(t *testing.T, binary string, o testbed.Options) *testbed.Instance {
	t.Helper()
	testbed.RequireEnvironment(t)
	o.QmgrBinary = binary
	inst := testbed.New(t, o)
	require.NoError(t, inst.Start())
	return inst
}

// fastRetry are main.cf settings that make deferred mail come back within
// seconds, so a drain after a fault does not wait for the default backoff.
func fastRetry() map[string]string {
	return map[string]string{
		"queue_run_delay":      "1s",
		"minimal_backoff_time": "1s",
		"maximal_backoff_time": "2s",
	}
}

// subjectPrefix starts the Subject of every numbered test message, so the
// sink dump can be tallied per message.
const subjectPrefix = "fault-msg-"

// submitMessages sends n numbered messages over SMTP with the given number
// of concurrent clients. Message i has the subject subjectPrefix+i.
func submitMessages(t *testing.T, inst *testbed.Instance, n, clients int) {
	t.Helper()
	next := make(chan int)
	errs := make(chan error, clients)
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				body := fmt.Sprintf("Subject: %s%d\n\nbody %d\n", subjectPrefix, i, i)
				if err := inst.SubmitSMTP("sender@example.org", []string{fmt.Sprintf("rcpt%d@example.net", i)}, body); err != nil {
					errs <- fmt.Errorf("message %d: %w", i, err)
					return
				}
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

var subjectLine = regexp.MustCompile(`(?m)^Subject: ` + subjectPrefix + `(\d+)\r?$`)

// tally is what a sink received of n numbered messages.
type tally struct {
	sent       int
	delivered  int   // distinct messages received at least once
	duplicates int   // receptions beyond the first
	missing    []int // message numbers never received
}

func (t tally) String() string {
	return fmt.Sprintf("sent %d, delivered %d, duplicates %d, missing %d", t.sent, t.delivered, t.duplicates, len(t.missing))
}

// countSink tallies the numbered messages in the sink's dump.
func countSink(t *testing.T, sink *testbed.Sink, n int) tally {
	t.Helper()
	msgs, err := sink.Messages()
	require.NoError(t, err)
	seen := make(map[int]int, n)
	for _, m := range msgs {
		match := subjectLine.FindStringSubmatch(m)
		if match == nil {
			continue
		}
		i, _ := strconv.Atoi(match[1])
		seen[i]++
	}
	tl := tally{sent: n}
	for i := range n {
		switch c := seen[i]; {
		case c == 0:
			tl.missing = append(tl.missing, i)
		default:
			tl.delivered++
			tl.duplicates += c - 1
		}
	}
	return tl
}

// queueLeft returns the number of files in maildrop, incoming, active,
// deferred and hold.
func queueLeft(t *testing.T, inst *testbed.Instance) int {
	t.Helper()
	counts, err := inst.QueueCounts()
	require.NoError(t, err)
	total := 0
	for _, n := range counts {
		total += n
	}
	return total
}

func corruptCount(t *testing.T, inst *testbed.Instance) int {
	t.Helper()
	n, err := inst.QueueCount("corrupt")
	require.NoError(t, err)
	return n
}

// qmgrPIDs lists the processes that run the instance's qmgr binary.
func qmgrPIDs(inst *testbed.Instance) []int {
	want := filepath.Join(inst.DaemonDir, "qmgr")
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		if err == nil && (exe == want || exe == want+" (deleted)") {
			pids = append(pids, pid)
		}
	}
	return pids
}

// waitQmgr waits until exactly one qmgr process runs and returns its pid.
func waitQmgr(t *testing.T, inst *testbed.Instance, timeout time.Duration) int {
	t.Helper()
	var pid int
	require.Eventually(t, func() bool {
		pids := qmgrPIDs(inst)
		if len(pids) != 1 {
			return false
		}
		pid = pids[0]
		return true
	}, timeout, 20*time.Millisecond, "one qmgr process in %s", inst.DaemonDir)
	return pid
}

// rssKB returns the resident set size of pid in kB from /proc/PID/status.
func rssKB(t *testing.T, pid int) int {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(t, err)
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			require.NoError(t, err, "VmRSS line %q", line)
			return kb
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

// postfixIDs returns the uid and gid of the postfix user, who owns queue
// files.
func postfixIDs(t *testing.T) (int, int) {
	t.Helper()
	u, err := user.Lookup("postfix")
	require.NoError(t, err)
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return uid, gid
}

// qmgrLines returns the maillog lines written by qmgr, without the time
// stamp, host name and pid, e.g. "warning: ..." or "ID: removed".
func qmgrLines(t *testing.T, inst *testbed.Instance) []string {
	t.Helper()
	lines, err := inst.LogLines(" postfix/qmgr[")
	require.NoError(t, err)
	out := make([]string, 0, len(lines))
	for _, line := range lines {
		_, rest, ok := strings.Cut(line, "]: ")
		if ok {
			out = append(out, rest)
		}
	}
	return out
}

// waitDrained waits until the pending queues are empty, sending an "I"
// trigger every second the way master's wakeup timer would. A file that a
// delivery agent still had locked when a qmgr died goes back to incoming
// with a time stamp 60 s ahead, and only a later incoming scan, started by
// a trigger, picks it up. The C oqmgr behaves the same, and master's own
// wakeup for qmgr is 300 s in the test bed's master.cf.
func waitDrained(t *testing.T, inst *testbed.Instance, timeout time.Duration) error {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := inst.WaitQueueEmpty(time.Second)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		_ = inst.Kick("I")
	}
}

// countLines returns the number of qmgr lines that contain substr.
func countLines(t *testing.T, inst *testbed.Instance, substr string) int {
	t.Helper()
	n := 0
	for _, line := range qmgrLines(t, inst) {
		if strings.Contains(line, substr) {
			n++
		}
	}
	return n
}

// ourBinary returns our queue manager for the fault tests.
func ourBinary(t *testing.T) string { return testbed.OurQmgr(t) }

// startFakeService serves a Postfix service socket at path that writes
// announcement on every connection and reads the request. Then it holds the
// connection without replying (hang) or closes it. The returned function
// stops the service and removes the socket; the test's cleanup calls it too.
func startFakeService(t *testing.T, path, announcement string, hang bool) func() {
	t.Helper()
	l, err := net.Listen("unix", path)
	require.NoError(t, err)
	require.NoError(t, os.Chmod(path, 0o666))
	stop := make(chan struct{})
	var wg sync.WaitGroup

	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer conn.Close()
				_, _ = conn.Write([]byte(announcement))
				// A request comes in one write; its end needs no parsing.
				_ = conn.SetReadDeadline(time.Now().Add(time.Second))
				_, _ = conn.Read(make([]byte, 4096))
				if hang {
					<-stop
				}
			}()
		}
	}()

	var once sync.Once
	shutdown := func() {
		once.Do(func() {
			l.Close()
			close(stop)
			wg.Wait()
		})
	}
	t.Cleanup(shutdown)
	return shutdown
}

// runBoth runs fn as parallel subtests "group/go" and "group/c", for our
// queue manager and the C oqmgr, and returns what each returned. The last
// result is false unless both runs finished, so that a caller compares
// only complete pairs.
func runBoth[T any](t *testing.T, fn func(t *testing.T, impl implementation) T) (ours, c T, ok bool) {
	results := map[string]T{}
	var mu sync.Mutex
	t.Run("group", func(t *testing.T) {
		for _, impl := range implementations(t) {
			t.Run(impl.name, func(t *testing.T) {
				t.Parallel()
				result := fn(t, impl)
				mu.Lock()
				results[impl.name] = result
				mu.Unlock()
			})
		}
	})
	ours, okOurs := results["go"]
	c, okC := results["c"]
	return ours, c, okOurs && okC
}
