package lifecycle

import (
	"bufio"
	"fmt"
	"io/fs"
	"net"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"oqmgr-go/internal/testbed"
	"oqmgr-go/queue"
)

// cOqmgr is the reference: the C old queue manager of the Debian package.
const cOqmgr = "/usr/lib/postfix/sbin/oqmgr"

// Commands of the installed Postfix that the scenarios drive.
const (
	postsuperCommand = "/usr/sbin/postsuper"
	postqueueCommand = "/usr/sbin/postqueue"
	sendmailCommand  = "/usr/sbin/sendmail"
)

// qmgr names one queue manager under comparison.
type qmgr struct {
	name   string // "C" or "Go", the subtest name
	binary string
}

// compare runs scenario once under the C oqmgr and once under ours, in
// parallel subtests, and returns the figures each run reported, keyed by
// qmgr name. A run that failed before returning has no entry.
func compare[R any](t *testing.T, scenario func(t *testing.T, q qmgr) R) map[string]R {
	t.Helper()
	testbed.RequireEnvironment(t)
	managers := []qmgr{{"C", cOqmgr}, {"Go", ourBinary(t)}}

	var mu sync.Mutex
	results := map[string]R{}
	t.Run("qmgr", func(t *testing.T) {
		for _, q := range managers {
			t.Run(q.name, func(t *testing.T) {
				t.Parallel()
				r := scenario(t, q)
				mu.Lock()
				results[q.name] = r
				mu.Unlock()
			})
		}
	})
	return results
}

// start creates and starts an instance whose qmgr is q.
func start(t *testing.T, q qmgr, o testbed.Options) *testbed.Instance {
	t.Helper()
	o.QmgrBinary = q.binary
	inst := testbed.New(t, o)
	require.NoError(t, inst.Start())
	return inst
}

// deadPort returns a loopback port with no listener, so SMTP delivery to
// it fails with a temporary error.
func deadPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	return port
}

// rcpt is one RCPT TO command: an address and optional ESMTP parameters
// such as "NOTIFY=SUCCESS".
type rcpt struct {
	addr   string
	params string
}

var queuedAs = regexp.MustCompile(`queued as ([0-9A-Za-z]+)`)

// submit sends one message over SMTP to the instance's smtpd and returns
// its queue id, taken from the reply to the final dot. Unlike
// testbed.SubmitSMTP it passes ESMTP parameters such as NOTIFY or RET.
func submit(t *testing.T, inst *testbed.Instance, from, mailParams string, rcpts []rcpt, body string) string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(inst.SMTPPort)), 10*time.Second)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(30*time.Second)))
	c := textproto.NewConn(conn)

	expect := func(code int, format string, args ...any) string {
		t.Helper()
		if format != "" {
			id, err := c.Cmd(format, args...)
			require.NoError(t, err)
			c.StartResponse(id)
			defer c.EndResponse(id)
		}
		_, msg, err := c.ReadResponse(code)
		require.NoError(t, err, "SMTP reply to %q", fmt.Sprintf(format, args...))
		return msg
	}

	expect(220, "")
	expect(250, "EHLO localhost")
	mail := "MAIL FROM:<" + from + ">"
	if mailParams != "" {
		mail += " " + mailParams
	}
	expect(250, "%s", mail)
	for _, r := range rcpts {
		cmd := "RCPT TO:<" + r.addr + ">"
		if r.params != "" {
			cmd += " " + r.params
		}
		expect(250, "%s", cmd)
	}
	expect(354, "DATA")
	w := c.DotWriter()
	_, err = w.Write([]byte(body))
	require.NoError(t, err)
	require.NoError(t, w.Close())
	reply := expect(250, "")
	expect(221, "QUIT")

	m := queuedAs.FindStringSubmatch(reply)
	require.NotNil(t, m, "no queue id in the reply %q", reply)
	return m[1]
}

// sendmail runs the instance's sendmail(1) with extra options (such as
// "-v" or "-bv") and returns the queue id that pickup(8) logs for it.
func sendmail(t *testing.T, inst *testbed.Instance, options []string, from, to, body string) string {
	t.Helper()
	before := pickupIDs(t, inst)
	args := append([]string{"-C", inst.ConfigDir, "-i", "-f", from}, options...)
	args = append(args, "--", to)
	cmd := exec.Command(sendmailCommand, args...)
	cmd.Stdin = strings.NewReader(body)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "sendmail %v: %s", args, out)

	var id string
	waitFor(t, 30*time.Second, func() bool {
		for got := range pickupIDs(t, inst) {
			if !before[got] {
				id = got
				return true
			}
		}
		return false
	}, "pickup logs the message from sendmail")
	return id
}

var pickupLine = regexp.MustCompile(`postfix/pickup\[\d+\]: ([0-9A-Za-z]+): uid=`)

func pickupIDs(t *testing.T, inst *testbed.Instance) map[string]bool {
	t.Helper()
	lines, err := inst.LogLines("postfix/pickup[")
	require.NoError(t, err)
	ids := map[string]bool{}
	for _, line := range lines {
		if m := pickupLine.FindStringSubmatch(line); m != nil {
			ids[m[1]] = true
		}
	}
	return ids
}

// postfixTool runs postsuper or postqueue against the instance.
func postfixTool(t *testing.T, inst *testbed.Instance, command string, args ...string) {
	t.Helper()
	args = append([]string{"-c", inst.ConfigDir}, args...)
	out, err := exec.Command(command, args...).CombinedOutput()
	require.NoError(t, err, "%s %v: %s", command, args, out)
}

// waitFor polls cond every 50ms until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, cond func() bool, what string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting until "+what, append([]any{timeout}, args...)...)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// logEvent is one maillog line with its time stamp.
type logEvent struct {
	at   time.Time
	line string
}

// events returns the maillog lines that contain every one of substrs.
// postlogd stamps lines to the second, without the year.
func events(t *testing.T, inst *testbed.Instance, substrs ...string) []logEvent {
	t.Helper()
	log, err := inst.Log()
	require.NoError(t, err)
	var out []logEvent
	now := time.Now()
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		match := true
		for _, s := range substrs {
			if !strings.Contains(line, s) {
				match = false
				break
			}
		}
		if !match || len(line) < 15 {
			continue
		}
		at, err := time.ParseInLocation("Jan 02 15:04:05", line[:15], time.Local)
		require.NoError(t, err, "time stamp of maillog line %q", line)
		out = append(out, logEvent{at: at.AddDate(now.Year(), 0, 0), line: line})
	}
	require.NoError(t, sc.Err())
	return out
}

// count returns the number of maillog lines that contain every one of
// substrs.
func count(t *testing.T, inst *testbed.Instance, substrs ...string) int {
	t.Helper()
	return len(events(t, inst, substrs...))
}

// attempts returns the times at which the queue manager moved the message
// into the active queue, one per delivery attempt.
func attempts(t *testing.T, inst *testbed.Instance, id string) []time.Time {
	t.Helper()
	var out []time.Time
	for _, e := range events(t, inst, "postfix/qmgr[", id+": from=<", "(queue active)") {
		out = append(out, e.at)
	}
	return out
}

// queueFile is where a queue file was found and its metadata.
type queueFile struct {
	queue string // first path element: incoming, active, deferred, hold, ...
	path  string // absolute path
	info  fs.FileInfo
}

// findQueueFile looks for the queue file of id in every queue directory.
func findQueueFile(t *testing.T, inst *testbed.Instance, id string) (queueFile, bool) {
	t.Helper()
	for _, q := range []string{"maildrop", "incoming", "active", "deferred", "hold", "corrupt"} {
		var found queueFile
		_ = filepath.WalkDir(filepath.Join(inst.QueueDir, q), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || d.Name() != id {
				return nil
			}
			if info, err := d.Info(); err == nil {
				found = queueFile{queue: q, path: path, info: info}
				return fs.SkipAll
			}
			return nil
		})
		if found.path != "" {
			return found, true
		}
	}
	return queueFile{}, false
}

// readQueueFile parses the queue file at path with our reader, for the
// create time and the delay-warning time the queue manager works from.
func readQueueFile(t *testing.T, path string) *queue.Message {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	id, err := queue.ParseID(filepath.Base(path))
	require.NoError(t, err)
	m, err := queue.Read(f, id, path, 0)
	require.NoError(t, err, "read queue file %s", path)
	return m
}

// mailbox returns the local user's mailbox text.
func mailbox(t *testing.T, inst *testbed.Instance) string {
	t.Helper()
	data, err := os.ReadFile(inst.MailboxPath(inst.LocalUser))
	if os.IsNotExist(err) {
		return ""
	}
	require.NoError(t, err)
	return string(data)
}

// mailboxSubjects returns the Subject header of every message in the local
// user's mailbox, in order.
func mailboxSubjects(t *testing.T, inst *testbed.Instance) []string {
	t.Helper()
	var subjects []string
	inHeaders := false
	for line := range strings.Lines(mailbox(t, inst)) {
		line = strings.TrimRight(line, "\n")
		switch {
		case strings.HasPrefix(line, "From "):
			inHeaders = true
		case inHeaders && line == "":
			inHeaders = false
		case inHeaders && strings.HasPrefix(line, "Subject: "):
			subjects = append(subjects, strings.TrimPrefix(line, "Subject: "))
		}
	}
	return subjects
}

// messageText returns a small message with the given subject.
func messageText(subject string) string {
	return "Subject: " + subject + "\r\nFrom: sender\r\n\r\nbody of " + subject + "\r\n"
}

// ourBinary returns our queue manager for the lifecycle tests.
func ourBinary(t *testing.T) string { return testbed.OurQmgr(t) }
