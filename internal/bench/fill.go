package bench

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/smtp"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"oqmgr-go/internal/testbed"
	"oqmgr-go/queue"
)

// fillSessions is the number of SMTP sessions that fill a pool at once.
const fillSessions = 4

// fillTimeout bounds one SMTP command while filling.
const fillTimeout = 60 * time.Second

// deferredAge is how far in the past the deferred workload's files are
// stamped, so that their retry time has come when the queue manager starts.
const deferredAge = time.Hour

// envelope is one message to submit.
type envelope struct {
	from string
	to   []string
	body string
}

// singleEnvelope returns message n of the one-recipient pool.
func singleEnvelope(n int) envelope {
	rcpt := fmt.Sprintf("user%d@remote.example", n)
	return envelope{from: "bench@example.org", to: []string{rcpt}, body: messageBody(n, rcpt)}
}

// fanoutEnvelope returns message n of the fanout pool: 50 recipients, five
// in each of ten domains.
func fanoutEnvelope(n int) envelope {
	to := make([]string, 0, fanoutRecipients)
	for r := range fanoutRecipients {
		to = append(to, fmt.Sprintf("user%d.%d@%s", n, r, fanoutDomain(r%fanoutDestinations)))
	}
	return envelope{from: "bench@example.org", to: to, body: messageBody(n, to[0])}
}

// messageBody returns a message of about 1.3 kB.
func messageBody(n int, to string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "From: <bench@example.org>\r\nTo: <%s>\r\nSubject: benchmark message %d\r\n", to, n)
	fmt.Fprintf(&b, "Message-ID: <%d.bench@example.org>\r\n\r\n", n)
	for line := range 16 {
		fmt.Fprintf(&b, "line %02d of message %08d: the quick brown fox jumps over the lazy dog\r\n", line, n)
	}
	return b.String()
}

// fillPool submits count messages made by next through a private instance
// that runs no queue manager, and copies its incoming queue into dir. The
// copy keeps owners, modes and time stamps, so it can be restored into any
// instance with `cp -a`.
func fillPool(dir string, count int, next func(int) envelope, progress func(done int)) error {
	// The qmgr binary is never started: its master.cf entry is removed.
	inst, err := testbed.Create(testbed.Options{
		QmgrBinary: filepath.Join("/usr/lib/postfix/sbin", "oqmgr"),
		MainCF:     map[string]string{"enable_long_queue_ids": "yes"},
	})
	if err != nil {
		return err
	}
	defer inst.Close(false)
	if err := removeQmgrService(inst.ConfigDir); err != nil {
		return err
	}
	if err := inst.Start(); err != nil {
		return err
	}

	if err := submitAll(inst.SMTPPort, count, next, progress); err != nil {
		return err
	}
	if err := inst.Stop(); err != nil {
		return err
	}
	got, err := inst.QueueCount("incoming")
	if err != nil {
		return err
	}
	if got != count {
		return fmt.Errorf("fill: incoming queue of %s contains %d files after %d messages were accepted; see %s", inst.Dir, got, count, inst.MaillogPath)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return copyTree(filepath.Join(inst.QueueDir, "incoming"), dir)
}

// removeQmgrService deletes the qmgr entry from master.cf, so that master
// never starts a queue manager while the pool is filled. cleanup(8) then
// finds no qmgr socket to notify and goes on.
func removeQmgrService(configDir string) error {
	path := filepath.Join(configDir, "master.cf")
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var kept []string
	found := false
	for line := range strings.Lines(string(data)) {
		if fields := strings.Fields(line); len(fields) > 0 && fields[0] == "qmgr" {
			found = true
			continue
		}
		kept = append(kept, line)
	}
	if !found {
		return fmt.Errorf("no qmgr service in %s", path)
	}
	return os.WriteFile(path, []byte(strings.Join(kept, "")), 0o644)
}

// submitAll sends messages 0 to count-1 over fillSessions SMTP sessions.
func submitAll(port, count int, next func(int) envelope, progress func(done int)) error {
	var (
		nextIndex atomic.Int64
		done      atomic.Int64
		wg        sync.WaitGroup
		mu        sync.Mutex
		firstErr  error
	)
	for range min(fillSessions, count) {
		wg.Go(func() {
			err := submitSession(port, func() (envelope, bool) {
				n := int(nextIndex.Add(1) - 1)
				if n >= count {
					return envelope{}, false
				}
				return next(n), true
			}, func() {
				if d := done.Add(1); progress != nil && d%500 == 0 {
					progress(int(d))
				}
			})
			if err != nil {
				mu.Lock()
				firstErr = cmpErr(firstErr, err)
				mu.Unlock()
				nextIndex.Store(int64(count)) // stop the other sessions
			}
		})
	}
	wg.Wait()
	return firstErr
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// submitSession sends messages from next over one SMTP session until next
// reports false.
func submitSession(port int, next func() (envelope, bool), sent func()) error {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	conn, err := net.DialTimeout("tcp", addr, fillTimeout)
	if err != nil {
		return fmt.Errorf("fill: %w", err)
	}
	c, err := smtp.NewClient(conn, "127.0.0.1")
	if err != nil {
		conn.Close()
		return fmt.Errorf("fill: smtp greeting from %s: %w", addr, err)
	}
	defer c.Close()
	if err := c.Hello("localhost"); err != nil {
		return fmt.Errorf("fill: EHLO: %w", err)
	}
	for {
		e, ok := next()
		if !ok {
			return c.Quit()
		}
		if err := conn.SetDeadline(time.Now().Add(fillTimeout)); err != nil {
			return err
		}
		if err := sendOne(c, e); err != nil {
			return fmt.Errorf("fill: %w", err)
		}
		sent()
	}
}

func sendOne(c *smtp.Client, e envelope) error {
	if err := c.Mail(e.from); err != nil {
		return fmt.Errorf("MAIL FROM:<%s>: %w", e.from, err)
	}
	for _, rcpt := range e.to {
		if err := c.Rcpt(rcpt); err != nil {
			return fmt.Errorf("RCPT TO:<%s>: %w", rcpt, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	if _, err := io.WriteString(w, e.body); err != nil {
		return fmt.Errorf("message text: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("end of data: %w", err)
	}
	return nil
}

// prepareArchive builds the directory tree that restore copies into a
// contender's queue directory for one workload: dir/incoming/ID for the
// first w.messages files of the pool (in name order), or
// dir/deferred/H/ID with time stamps deferredAge in the past.
func prepareArchive(dir, poolDir string, w workload) error {
	names, err := poolNames(poolDir)
	if err != nil {
		return err
	}
	if len(names) < w.messages {
		return fmt.Errorf("pool %s contains %d messages, workload %s needs %d", poolDir, len(names), w.name, w.messages)
	}
	names = names[:w.messages]
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	model, err := os.Stat(filepath.Join(poolDir, names[0]))
	if err != nil {
		return err
	}

	// Hash subdirectories follow the Postfix 3.7 defaults that every
	// instance uses: hash_queue_names = deferred, defer and depth 1.
	layout := queue.NewDir(dir, []string{"deferred", "defer"}, 1)
	stamp := time.Now().Add(-deferredAge)
	for _, name := range names {
		src := filepath.Join(poolDir, name)
		dst := layout.Path(w.queue, queue.ID(name))
		if err := mkdirLike(filepath.Dir(dst), dir, model); err != nil {
			return err
		}
		if w.queue != "deferred" {
			// Restore copies the contents, so a hard link suffices.
			if err := os.Link(src, dst); err != nil {
				return err
			}
			continue
		}
		if err := copyTree(src, dst); err != nil {
			return err
		}
		if err := os.Chtimes(dst, stamp, stamp); err != nil {
			return err
		}
	}
	return nil
}

// poolNames returns the queue ids in a pool directory, sorted.
func poolNames(poolDir string) ([]string, error) {
	entries, err := os.ReadDir(poolDir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if e.Type().IsRegular() {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	return names, nil
}

// mkdirLike creates dir and its missing parents up to root with the owner
// of model (a queue file, so the postfix user) and mode 0700, the way
// Postfix creates queue and hash subdirectories. root itself must exist.
func mkdirLike(dir, root string, model os.FileInfo) error {
	if dir == root {
		return nil
	}
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	if err := mkdirLike(filepath.Dir(dir), root, model); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	st, ok := model.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("no owner in the file information of %s", model.Name())
	}
	return os.Chown(dir, int(st.Uid), int(st.Gid))
}

// queueSubdirs are the queue directories a round empties before it
// restores the workload's files.
var queueSubdirs = []string{"maildrop", "incoming", "active", "deferred", "hold", "corrupt", "bounce", "defer", "trace"}

// restore empties the message and log queues of queueDir and copies each
// queue directory of the archive over the one of the same name, which takes
// the archive's owner and mode (postfix, 0700).
func restore(queueDir, archive string) error {
	for _, q := range queueSubdirs {
		entries, err := os.ReadDir(filepath.Join(queueDir, q))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		for _, e := range entries {
			if err := os.RemoveAll(filepath.Join(queueDir, q, e.Name())); err != nil {
				return err
			}
		}
	}
	entries, err := os.ReadDir(archive)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := copyTree(filepath.Join(archive, e.Name()), filepath.Join(queueDir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// copyTree copies src (a file, or a directory's contents) to dst with
// `cp -a`, keeping owners, modes and time stamps.
func copyTree(src, dst string) error {
	if info, err := os.Stat(src); err == nil && info.IsDir() {
		src += "/."
	}
	out, err := exec.Command("cp", "-a", src, dst).CombinedOutput()
	if err != nil {
		return fmt.Errorf("cp -a %s %s: %w: %s", src, dst, err, bytes.TrimSpace(out))
	}
	return nil
}
