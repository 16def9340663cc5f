package maillog

import (
	"bytes"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fixedNow is the clock of every test logger: 5 March, 09:07:03 local time.
var fixedNow = time.Date(2024, time.March, 5, 9, 7, 3, 0, time.Local)

// listenDatagram binds an AF_UNIX datagram socket, standing in for
// postlogd(8) or syslogd.
func listenDatagram(t *testing.T) (string, *net.UnixConn) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "postlog")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return path, conn
}

func readDatagram(t *testing.T, conn *net.UnixConn) string {
	t.Helper()
	buf := make([]byte, 65536)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(5*time.Second)))
	n, err := conn.Read(buf)
	require.NoError(t, err)
	return string(buf[:n])
}

func postlogOptions(path string) Options {
	return Options{
		SyslogName:      "postfix",
		ProcessName:     "/usr/lib/postfix/sbin/qmgr",
		MaillogFile:     "/var/log/postfix.log",
		PostlogSocket:   path,
		Hostname:        "mail.example.com",
		DelayResolution: 2,
		Now:             func() time.Time { return fixedNow },
		PID:             1234,
	}
}

func TestPostlog_Datagram(t *testing.T) {
	path, conn := listenDatagram(t)
	l, err := New(postlogOptions(path))
	require.NoError(t, err)
	defer l.Close()

	l.Removed("4F3A2B1C0D")
	assert.Equal(t, "Mar 05 09:07:03 mail postfix/qmgr[1234]: 4F3A2B1C0D: removed", readDatagram(t, conn))

	l.Warning("disk %s is full", "/var")
	assert.Equal(t, "Mar 05 09:07:03 mail postfix/qmgr[1234]: warning: disk /var is full", readDatagram(t, conn))
}

func TestPostlog_Severities(t *testing.T) {
	path, conn := listenDatagram(t)
	l, err := New(postlogOptions(path))
	require.NoError(t, err)
	defer l.Close()

	tests := []struct {
		log  func(string, ...any)
		want string
	}{
		{l.Info, "text"},
		{l.Warning, "warning: text"},
		{l.Error, "error: text"},
		{l.Fatal, "fatal: text"},
		{l.Panic, "panic: text"},
	}
	for _, tt := range tests {
		tt.log("text")
		assert.Equal(t, "Mar 05 09:07:03 mail postfix/qmgr[1234]: "+tt.want, readDatagram(t, conn))
	}
}

func TestPostlog_LongTextCut(t *testing.T) {
	path, conn := listenDatagram(t)
	l, err := New(postlogOptions(path))
	require.NoError(t, err)
	defer l.Close()

	l.Warning("%s", strings.Repeat("x", 3000))
	got := readDatagram(t, conn)
	want := "Mar 05 09:07:03 mail postfix/qmgr[1234]: warning: " + strings.Repeat("x", maxTextLen)
	assert.Equal(t, want, got, "the text after the severity is cut at %d bytes", maxTextLen)
}

func TestPostlog_SocketAppearsLater(t *testing.T) {
	path := filepath.Join(t.TempDir(), "postlog")
	l, err := New(postlogOptions(path))
	require.NoError(t, err, "a missing postlog socket is not an error")
	defer l.Close()
	l.Info("dropped while postlogd is not running")

	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	require.NoError(t, err)
	defer conn.Close()
	l.Info("delivered once it runs")
	assert.Equal(t, "Mar 05 09:07:03 mail postfix/qmgr[1234]: delivered once it runs", readDatagram(t, conn))
}

func TestPostlog_HostnameDefault(t *testing.T) {
	path, conn := listenDatagram(t)
	o := postlogOptions(path)
	o.Hostname = ""
	l, err := New(o)
	require.NoError(t, err)
	defer l.Close()
	l.Info("x")
	assert.Equal(t, "Mar 05 09:07:03 amnesiac postfix/qmgr[1234]: x", readDatagram(t, conn))
}

func TestSyslog_Record(t *testing.T) {
	path, conn := listenDatagram(t)
	o := Options{
		SyslogName:   "postfix-test",
		ProcessName:  "oqmgr",
		Facility:     "local3",
		SyslogSocket: path,
		Now:          func() time.Time { return fixedNow },
		PID:          77,
	}
	l, err := New(o)
	require.NoError(t, err)
	defer l.Close()

	l.Info("4F3A2B1C0D: removed")
	// local3 is facility 19: 19*8 + LOG_INFO (6) = 158. The day is padded
	// with a space, as glibc's syslog(3) does.
	assert.Equal(t, "<158>Mar  5 09:07:03 postfix-test/oqmgr[77]: 4F3A2B1C0D: removed", readDatagram(t, conn))

	l.Error("e")
	assert.Equal(t, "<155>Mar  5 09:07:03 postfix-test/oqmgr[77]: error: e", readDatagram(t, conn))
	l.Fatal("f")
	assert.Equal(t, "<154>Mar  5 09:07:03 postfix-test/oqmgr[77]: fatal: f", readDatagram(t, conn))
	l.Warning("w")
	assert.Equal(t, "<156>Mar  5 09:07:03 postfix-test/oqmgr[77]: warning: w", readDatagram(t, conn))
}

func TestNew_Errors(t *testing.T) {
	_, err := New(Options{ProcessName: "qmgr", Facility: "mial"})
	assert.ErrorContains(t, err, `invalid syslog_facility value "mial"`)
	_, err = New(Options{ProcessName: "qmgr", MaillogFile: "/var/log/x"})
	assert.ErrorContains(t, err, "postlog socket path is empty")
	_, err = New(Options{ProcessName: "qmgr", AddressForm: "raw"})
	assert.ErrorContains(t, err, `info_log_address_format = raw`)
}

func TestStderrCopy(t *testing.T) {
	var out bytes.Buffer
	o := Options{
		ProcessName:  "qmgr",
		SyslogSocket: filepath.Join(t.TempDir(), "missing"),
		Stderr:       true,
		Output:       &out,
	}
	l, err := New(o)
	require.NoError(t, err)
	l.Info("one")
	l.Warning("two\nlines")
	l.Info("%s", strings.Repeat("y", 2500))
	want := "postfix/qmgr: one\npostfix/qmgr: warning: two?lines\npostfix/qmgr: " + strings.Repeat("y", 2500) + "\n"
	assert.Equal(t, want, out.String())
}

func TestDebug_OnlyWithVerbose(t *testing.T) {
	var out bytes.Buffer
	o := Options{ProcessName: "qmgr", SyslogSocket: filepath.Join(t.TempDir(), "missing"), Stderr: true, Output: &out}
	l, err := New(o)
	require.NoError(t, err)
	l.Debug(1, "hidden")
	assert.Empty(t, out.String(), "debug line logged without -v")

	o.Verbose = 2
	require.NoError(t, l.Reopen(o))
	l.Debug(1, "level one")
	l.Debug(2, "level two")
	l.Debug(3, "level three")
	assert.Equal(t, "postfix/qmgr: level one\npostfix/qmgr: level two\n", out.String())
}

func TestReopen_SwitchesTransport(t *testing.T) {
	syslogPath, syslogConn := listenDatagram(t)
	postlogPath, postlogConn := listenDatagram(t)
	o := Options{ProcessName: "qmgr", SyslogSocket: syslogPath, Now: func() time.Time { return fixedNow }, PID: 9}
	l, err := New(o)
	require.NoError(t, err)
	defer l.Close()
	l.Info("before")
	assert.Equal(t, "<22>Mar  5 09:07:03 postfix/qmgr[9]: before", readDatagram(t, syslogConn))

	o.MaillogFile, o.PostlogSocket, o.Hostname = "/var/log/mail.log", postlogPath, "mx1"
	require.NoError(t, l.Reopen(o))
	l.Info("after")
	assert.Equal(t, "Mar 05 09:07:03 mx1 postfix/qmgr[9]: after", readDatagram(t, postlogConn))
}

func TestLogger_ConcurrentUse(t *testing.T) {
	path, conn := listenDatagram(t)
	l, err := New(postlogOptions(path))
	require.NoError(t, err)
	defer l.Close()

	// A datagram socket queues only a few records (net.unix.max_dgram_qlen),
	// and a full queue blocks the sender, so read while the writers run.
	records := make(chan string, 1000)
	go func() {
		defer close(records)
		buf := make([]byte, 4096)
		for {
			conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			records <- string(buf[:n])
		}
	}()

	const goroutines, each = 8, 20
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				l.Info("g%d line %d", g, i)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 50 {
			assert.NoError(t, l.Reopen(postlogOptions(path)))
		}
	}()
	wg.Wait()

	// Every record arrives whole and in the postlog format.
	got := 0
	for rec := range records {
		assert.Regexp(t, `^Mar 05 09:07:03 mail postfix/qmgr\[1234\]: g\d line \d+$`, rec)
		got++
	}
	assert.Equal(t, goroutines*each, got)
}
