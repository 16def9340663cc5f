package maillog

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Options selects where log records go and how they are labelled. The
// fields mirror Postfix parameters, and the caller fills them from main.cf.
type Options struct {
	SyslogName  string // syslog_name; "postfix" when empty
	ProcessName string // argv[0] as master started the process, of which the base name is used
	Facility    string // syslog_facility, for example "mail" (the default when empty)

	// MaillogFile is maillog_file. When it is not empty, records go as
	// datagrams to PostlogSocket instead of syslog, and postlogd(8) writes
	// them to the file.
	MaillogFile   string
	PostlogSocket string // $queue_directory/public/$postlog_service_name
	Hostname      string // myhostname, whose first label postlog records carry

	Stderr  bool // -V: also write every record to standard error
	Verbose int  // number of -v options; Debug lines up to this level are logged

	// DelayResolution is delay_logging_resolution_limit (Postfix default
	// 2): the most decimals of a second in per-recipient delays. Zero
	// means whole seconds, so callers must set it.
	DelayResolution int

	// AddressForm is info_log_address_format: "external" (the default when
	// empty) quotes local parts as RFC 5321 needs, "internal" logs
	// addresses as stored.
	AddressForm string

	// SyslogSocket is the syslog daemon's socket, "/dev/log" when empty.
	SyslogSocket string

	// Test seams. Nil or zero means the real clock, os.Getpid() and
	// os.Stderr.
	Now    func() time.Time
	PID    int
	Output io.Writer // destination of the -V copy
}

// Logger writes operator log records. Its methods are safe for use from
// several goroutines.
type Logger struct {
	mu  sync.Mutex // guards everything below and serialises writes
	o   Options
	tag string // syslog_name/process name
	out sink
}

// sink sends one formatted record to syslog or postlogd.
type sink interface {
	send(sev severity, text string)
	close() error
}

// severity numbers and names follow the msg(3) levels of Postfix.
type severity int

const (
	sevInfo severity = iota
	sevWarning
	sevError
	sevFatal
	sevPanic
)

var severityPrefix = [...]string{"", "warning: ", "error: ", "fatal: ", "panic: "}

// maxTextLen is the longest message text sent to syslog or postlogd
// (MSG_SYSLOG_RECLEN and MSG_LOGGER_RECLEN). Longer text is cut.
const maxTextLen = 2000

// New opens the log transport chosen by o. With MaillogFile set it
// connects to the postlog socket, otherwise to syslog. A socket that
// cannot be reached now is tried again for each record, and records are
// dropped while it stays unreachable, as Postfix daemons do.
func New(o Options) (*Logger, error) {
	l := &Logger{}
	if err := l.Reopen(o); err != nil {
		return nil, err
	}
	return l, nil
}

// Reopen switches to the settings in o, for example after main.cf has been
// read. On error the previous settings stay in effect.
func (l *Logger) Reopen(o Options) error {
	if o.SyslogName == "" {
		o.SyslogName = "postfix"
	}
	if o.Facility == "" {
		o.Facility = "mail"
	}
	if o.SyslogSocket == "" {
		o.SyslogSocket = "/dev/log"
	}
	if o.AddressForm == "" {
		o.AddressForm = "external"
	}
	if o.AddressForm != "external" && o.AddressForm != "internal" {
		return fmt.Errorf("maillog: invalid parameter setting \"info_log_address_format = %s\"", o.AddressForm)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.PID == 0 {
		o.PID = os.Getpid()
	}
	if o.Output == nil {
		o.Output = os.Stderr
	}
	tag := o.SyslogName + "/" + filepath.Base(o.ProcessName)

	var out sink
	if o.MaillogFile != "" {
		if o.PostlogSocket == "" {
			return fmt.Errorf("maillog: maillog_file %s is set but the postlog socket path is empty", o.MaillogFile)
		}
		out = newPostlogSink(o.PostlogSocket, hostLabel(o.Hostname), tag, o.PID, o.Now)
	} else {
		facility, ok := facilities[o.Facility]
		if !ok {
			return fmt.Errorf("maillog: invalid syslog_facility value %q (use a name such as mail, daemon or local0 to local7)", o.Facility)
		}
		out = newSyslogSink(o.SyslogSocket, facility, tag, o.PID, o.Now)
	}

	l.mu.Lock()
	old := l.out
	l.o, l.tag, l.out = o, tag, out
	l.mu.Unlock()
	if old != nil {
		old.close()
	}
	return nil
}

// Close releases the log socket. Records logged after Close are dropped.
func (l *Logger) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.out == nil {
		return nil
	}
	err := l.out.close()
	l.out = nil
	return err
}

// hostLabel returns the first label of a host name, or "amnesiac" for an
// empty name, as maillog_client.c does.
func hostLabel(hostname string) string {
	if hostname == "" {
		return "amnesiac"
	}
	label, _, _ := strings.Cut(hostname, ".")
	return label
}

// Info logs an informational record, with no severity prefix.
func (l *Logger) Info(format string, a ...any) { l.logf(sevInfo, format, a...) }

// Warning logs a record prefixed "warning: ".
func (l *Logger) Warning(format string, a ...any) { l.logf(sevWarning, format, a...) }

// Error logs a record prefixed "error: ".
func (l *Logger) Error(format string, a ...any) { l.logf(sevError, format, a...) }

// Fatal logs a record prefixed "fatal: " and returns. The caller must then
// exit with status 1, as msg_fatal does.
func (l *Logger) Fatal(format string, a ...any) { l.logf(sevFatal, format, a...) }

// Panic logs a record prefixed "panic: " for a broken invariant and
// returns. The caller decides how to abort.
func (l *Logger) Panic(format string, a ...any) { l.logf(sevPanic, format, a...) }

// Debug logs an informational record when the process runs with at least
// level -v options. Debug lines are for developers, not for log parsers.
func (l *Logger) Debug(level int, format string, a ...any) {
	l.mu.Lock()
	verbose := l.o.Verbose
	l.mu.Unlock()
	if verbose >= level {
		l.logf(sevInfo, format, a...)
	}
}

// Verbose returns the -v level, so callers can skip building costly
// debug text.
func (l *Logger) Verbose() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.o.Verbose
}

func (l *Logger) logf(sev severity, format string, a ...any) {
	text := printable(fmt.Sprintf(format, a...))

	l.mu.Lock()
	defer l.mu.Unlock()
	if l.out != nil {
		l.out.send(sev, truncate(text, maxTextLen))
	}
	if l.o.Stderr {
		// The -V copy has no pid and no length limit (msg_vstream.c).
		fmt.Fprintf(l.o.Output, "%s: %s%s\n", l.tag, severityPrefix[sev], text)
	}
}

// truncate cuts s to at most n bytes.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// printable replaces bytes that must not reach a log file with '?', like
// Postfix's printable(): ASCII control characters, DEL, and 8-bit bytes
// that do not start a UTF-8 sequence.
//
// NOTE: Postfix keeps UTF-8 only when smtputf8_enable is yes, which is the
// default from compatibility_level 1 on. With it off, Postfix replaces
// every 8-bit byte, but this function still keeps UTF-8.
func printable(s string) string {
	var b []byte // allocated on the first replacement
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 0x20 && c < 0x7f:
			continue
		case c >= 0xc2 && c <= 0xfe && i+1 < len(s) && isContinuation(s[i+1]):
			// Skip the continuation bytes with the same loose test
			// that Postfix uses.
			for i+1 < len(s) && isContinuation(s[i+1]) {
				i++
			}
			continue
		}
		if b == nil {
			b = []byte(s)
		}
		b[i] = '?'
	}
	if b == nil {
		return s
	}
	return string(b)
}

func isContinuation(c byte) bool { return c >= 0x80 && c < 0xc0 }
