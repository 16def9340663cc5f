package testbed

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/smtp"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// smtpTimeout bounds one SMTP submission.
const smtpTimeout = 30 * time.Second

// queueNames are the queue directories that QueueCount accepts.
var queueNames = []string{"maildrop", "incoming", "active", "deferred", "hold", "corrupt", "bounce", "defer", "trace", "flush", "saved"}

// pendingQueues hold mail that Postfix has not finished with. WaitQueueEmpty
// includes hold, so a message put on hold makes it time out.
var pendingQueues = []string{"maildrop", "incoming", "active", "deferred", "hold"}

// SubmitSMTP sends one message to the instance's smtpd. body is the message
// text, headers included, with "\n" or "\r\n" line ends.
func (i *Instance) SubmitSMTP(from string, to []string, body string) error {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(i.SMTPPort))
	conn, err := net.DialTimeout("tcp", addr, smtpTimeout)
	if err != nil {
		return fmt.Errorf("smtp submit: %w", err)
	}
	if err := conn.SetDeadline(time.Now().Add(smtpTimeout)); err != nil {
		conn.Close()
		return fmt.Errorf("smtp submit: %w", err)
	}
	c, err := smtp.NewClient(conn, "127.0.0.1")
	if err != nil {
		conn.Close()
		return fmt.Errorf("smtp submit to %s: %w", addr, err)
	}
	defer c.Close()

	if err := c.Hello("localhost"); err != nil {
		return fmt.Errorf("smtp submit EHLO: %w", err)
	}
	if err := c.Mail(from); err != nil {
		return fmt.Errorf("smtp submit MAIL FROM:<%s>: %w", from, err)
	}
	for _, rcpt := range to {
		if err := c.Rcpt(rcpt); err != nil {
			return fmt.Errorf("smtp submit RCPT TO:<%s>: %w", rcpt, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("smtp submit DATA: %w", err)
	}
	if _, err := w.Write([]byte(body)); err != nil {
		return fmt.Errorf("smtp submit message text: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("smtp submit end of data: %w", err)
	}
	return c.Quit()
}

// Sendmail submits one message with the instance's sendmail(1), which drops
// it into the maildrop queue for pickup(8). A line with a single dot does not
// end the message.
func (i *Instance) Sendmail(from string, to []string, body string) error {
	args := append([]string{"-C", i.ConfigDir, "-i", "-f", from, "--"}, to...)
	cmd := exec.Command(sendmailCommand, args...)
	cmd.Stdin = strings.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("sendmail -C %s: %w: %s", i.ConfigDir, err, bytes.TrimSpace(out))
	}
	return nil
}

// QueueCount returns the number of queue files in one queue directory
// ("incoming", "active", "deferred", "hold", "corrupt", ...), including
// hashed subdirectories.
func (i *Instance) QueueCount(queue string) (int, error) {
	if !slices.Contains(queueNames, queue) {
		return 0, fmt.Errorf("count queue %q: unknown queue, want one of %v", queue, queueNames)
	}
	n := 0
	err := filepath.WalkDir(filepath.Join(i.QueueDir, queue), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			// Files vanish while Postfix moves them.
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.Type().IsRegular() {
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("count queue %s: %w", queue, err)
	}
	return n, nil
}

// QueueCounts returns QueueCount for maildrop, incoming, active, deferred
// and hold.
func (i *Instance) QueueCounts() (map[string]int, error) {
	counts, _, err := i.countQueues(pendingQueues)
	return counts, err
}

// countQueues counts the given queues in that order and returns the counts
// and their sum.
func (i *Instance) countQueues(order []string) (map[string]int, int, error) {
	counts := make(map[string]int, len(order))
	total := 0
	for _, q := range order {
		n, err := i.QueueCount(q)
		if err != nil {
			return nil, 0, err
		}
		counts[q] = n
		total += n
	}
	return counts, total, nil
}

// WaitQueueEmpty waits until maildrop, incoming, active, deferred and hold
// are all empty. A file that Postfix renames from one queue to another
// while they are counted can be missed, so the queues must be seen empty
// twice, counted in opposite orders a moment apart.
func (i *Instance) WaitQueueEmpty(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	emptyBefore := false
	for {
		order := pendingQueues
		if emptyBefore {
			order = slices.Clone(pendingQueues)
			slices.Reverse(order)
		}
		counts, total, err := i.countQueues(order)
		if err != nil {
			return err
		}
		if total == 0 && emptyBefore {
			return nil
		}
		emptyBefore = total == 0
		if !emptyBefore && time.Now().After(deadline) {
			return fmt.Errorf("queue in %s not empty after %s: %v", i.QueueDir, timeout, counts)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Log returns the maillog contents, or "" before postlogd wrote anything.
func (i *Instance) Log() (string, error) {
	data, err := os.ReadFile(i.MaillogPath)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read maillog: %w", err)
	}
	return string(data), nil
}

// LogLines returns the maillog lines that contain substr.
func (i *Instance) LogLines(substr string) ([]string, error) {
	log, err := i.Log()
	if err != nil {
		return nil, err
	}
	var lines []string
	for line := range strings.Lines(log) {
		if strings.Contains(line, substr) {
			lines = append(lines, strings.TrimRight(line, "\n"))
		}
	}
	return lines, nil
}

// WaitLog waits until the maillog contains substr.
func (i *Instance) WaitLog(substr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		log, err := i.Log()
		if err != nil {
			return err
		}
		if strings.Contains(log, substr) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("maillog %s has no %q after %s", i.MaillogPath, substr, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// countLog returns the number of maillog lines that contain any of substrs.
func (i *Instance) countLog(substrs ...string) (int, error) {
	log, err := i.Log()
	if err != nil {
		return 0, err
	}
	n := 0
	for line := range strings.Lines(log) {
		if slices.ContainsFunc(substrs, func(s string) bool { return strings.Contains(line, s) }) {
			n++
		}
	}
	return n, nil
}

// Kick sends a trigger request to the queue manager with postkick(1), e.g.
// "I" (scan incoming), "D" (scan deferred), "F" (flush dead destinations) or
// "W" (wake up). Several letters are sent as one trigger.
func (i *Instance) Kick(request string) error {
	out, err := exec.Command(postkickCommand, "-c", i.ConfigDir, "public", "qmgr", request).CombinedOutput()
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		// postkick writes the request and its NUL terminator separately.
		// The C trigger server closes after its first read, so postkick
		// often dies of SIGPIPE after the trigger was taken.
		if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGPIPE {
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("postkick -c %s public qmgr %s: %w: %s", i.ConfigDir, request, err, bytes.TrimSpace(out))
	}
	return nil
}

// MailboxPath returns the mbox file that local(8) writes for user.
func (i *Instance) MailboxPath(user string) string {
	return filepath.Join(i.Dir, "mail", user)
}

// LocalAddress returns an address that local(8) delivers to LocalUser's
// mailbox.
func (i *Instance) LocalAddress() string {
	return i.LocalUser + "@" + i.LocalDomain
}

// MailboxMessages returns the number of messages in user's mailbox: lines
// that start with "From ", which local(8) writes once per message and
// escapes as ">From " inside message text. A missing mailbox holds zero.
func (i *Instance) MailboxMessages(user string) (int, error) {
	data, err := os.ReadFile(i.MailboxPath(user))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read mailbox: %w", err)
	}
	n := 0
	for line := range strings.Lines(string(data)) {
		if strings.HasPrefix(line, "From ") {
			n++
		}
	}
	return n, nil
}

// Errors returned by CheckEnvironment.
var (
	ErrNotRoot        = errors.New("the Postfix test bed needs root: master, postdrop and local delivery change users")
	ErrPostfixMissing = errors.New("postfix is not installed: run `make deps` as root")
)

// CheckEnvironment reports whether instances can run here: it returns
// ErrNotRoot or ErrPostfixMissing (wrapped, naming the missing file).
func CheckEnvironment() error {
	if os.Geteuid() != 0 {
		return ErrNotRoot
	}
	for _, path := range []string{postfixCommand, sendmailCommand, postkickCommand, smtpSinkCommand, filepath.Join(systemDaemonDir, "master")} {
		if _, err := os.Stat(path); err != nil {
			return fmt.Errorf("%w (%s: %w)", ErrPostfixMissing, path, err)
		}
	}
	return nil
}

// PlaceQueueFile puts a file into one of the instance's queues as cleanup
// would leave it: owned by the mail owner with the given mode (0700 marks
// it ready). It is built beside the queue directory and renamed into
// place, so a running queue manager never sees it half made.
func (i *Instance) PlaceQueueFile(queue, id string, data []byte, mode os.FileMode) error {
	tmp := filepath.Join(i.Dir, id+".tmp")
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return fmt.Errorf("place queue file %s: %w", id, err)
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return fmt.Errorf("place queue file %s: %w", id, err)
	}
	if err := chownToUser(tmp, "postfix"); err != nil {
		return fmt.Errorf("place queue file %s: %w", id, err)
	}
	if err := os.Rename(tmp, filepath.Join(i.QueueDir, queue, id)); err != nil {
		return fmt.Errorf("place queue file %s: %w", id, err)
	}
	return nil
}
