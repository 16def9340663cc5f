package maillog

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// facilities maps syslog_facility values to syslog facility codes, as
// listed in msg_syslog.c for Linux.
var facilities = map[string]int{
	"kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5,
	"lpr": 6, "news": 7, "uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11,
	"local0": 16, "local1": 17, "local2": 18, "local3": 19,
	"local4": 20, "local5": 21, "local6": 22, "local7": 23,
}

// syslogLevel maps severities to syslog levels: info to LOG_INFO, warning
// to LOG_WARNING, error to LOG_ERR, fatal and panic to LOG_CRIT.
var syslogLevel = [...]int{6, 4, 3, 2, 2}

// datagramConn is a connected AF_UNIX datagram socket that reconnects on
// demand. Callers serialise access. The socket is a blocking one outside
// the Go runtime's network poller, so a send to a busy receiver sleeps in
// the kernel as Postfix's does, instead of parking and waking goroutines.
type datagramConn struct {
	path string
	fd   int // -1 when not connected
}

// write sends b as one datagram. It connects first when needed, and after
// a failed send it reconnects and tries once more, so that a restarted
// syslogd or postlogd is found again. Errors drop the record.
//
// The send blocks while the receiver's queue is full, as it does in
// Postfix, so a stalled syslogd or postlogd stalls every logging goroutine.
//
// NOTE: Postfix's msg_logger keeps a failed connection for good, and
// glibc's syslog falls back to a stream socket; this writer does neither.
func (d *datagramConn) write(b []byte) {
	for attempt := 0; attempt < 2; attempt++ {
		if !d.connect() {
			return
		}
		if d.send(b) == nil {
			return
		}
		_ = d.close()
	}
}

// send writes one datagram, retrying a send that a signal interrupted.
func (d *datagramConn) send(b []byte) error {
	for {
		_, err := unix.Write(d.fd, b)
		if err != unix.EINTR {
			return err
		}
	}
}

// connect reports whether the socket is connected, connecting it if needed.
func (d *datagramConn) connect() bool {
	if d.fd >= 0 {
		return true
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return false
	}
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: d.path}); err != nil {
		unix.Close(fd)
		return false
	}
	d.fd = fd
	return true
}

func (d *datagramConn) close() error {
	if d.fd < 0 {
		return nil
	}
	err := unix.Close(d.fd)
	d.fd = -1
	return err
}

// syslogSink writes records the way glibc's syslog(3) does with LOG_PID:
// "<PRI>Mmm dd HH:MM:SS tag[pid]: text", the day padded with a space, no
// host name and no newline.
type syslogSink struct {
	datagramConn
	facility int
	tag      string
	pid      int
	now      func() time.Time
}

func newSyslogSink(path string, facility int, tag string, pid int, now func() time.Time) *syslogSink {
	s := &syslogSink{datagramConn: datagramConn{path: path, fd: -1}, facility: facility, tag: tag, pid: pid, now: now}
	s.connect() // LOG_NDELAY
	return s
}

func (s *syslogSink) send(sev severity, text string) {
	rec := fmt.Sprintf("<%d>%s %s[%d]: %s%s", s.facility<<3|syslogLevel[sev],
		s.now().Format("Jan _2 15:04:05"), s.tag, s.pid, severityPrefix[sev], text)
	s.write([]byte(rec))
}

// postlogSink writes records for postlogd(8) as msg_logger.c does:
// "Mmm dd HH:MM:SS host tag[pid]: text", the day padded with a zero, no
// newline. postlogd appends the record and a newline to maillog_file.
type postlogSink struct {
	datagramConn
	host string
	tag  string
	pid  int
	now  func() time.Time
}

func newPostlogSink(path, host, tag string, pid int, now func() time.Time) *postlogSink {
	s := &postlogSink{datagramConn: datagramConn{path: path, fd: -1}, host: host, tag: tag, pid: pid, now: now}
	s.connect() // maillog_client_init connects at once
	return s
}

func (s *postlogSink) send(sev severity, text string) {
	rec := fmt.Sprintf("%s %s %s[%d]: %s%s", s.now().Format("Jan 02 15:04:05"),
		s.host, s.tag, s.pid, severityPrefix[sev], text)
	s.write([]byte(rec))
}
