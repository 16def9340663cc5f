package main

import (
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"oqmgr-go/internal/testbed"
)

// referenceQmgr is the C old queue manager of the Debian package.
const referenceQmgr = "/usr/lib/postfix/sbin/oqmgr"

// handRun is the outcome of starting a queue manager by hand, outside
// master: its exit status, its standard error and the records it sent
// to the postlog socket, with times and pids replaced by fixed text.
type handRun struct {
	status  int
	stderr  string
	records []string
}

// handSetup is a configuration directory and a queue directory whose
// postlog socket the test reads.
type handSetup struct {
	configDir string
	socket    string
}

// newHandSetup writes a main.cf that sends the log to a postlog socket
// in a fresh queue directory. The socket path also goes into
// POSTLOG_SERVICE, so the records that both programs write before they
// read main.cf arrive there too.
func newHandSetup(t *testing.T, extraMainCF string) handSetup {
	t.Helper()
	dir := t.TempDir()
	queueDir := filepath.Join(dir, "queue")
	for _, sub := range []string{"public", "active", "incoming", "deferred", "corrupt", "hold"} {
		require.NoError(t, os.MkdirAll(filepath.Join(queueDir, sub), 0o755))
	}
	mainCF := "queue_directory = " + queueDir + "\n" +
		"compatibility_level = 3.6\n" +
		"maillog_file = " + filepath.Join(dir, "maillog") + "\n" +
		"maillog_file_prefixes = " + dir + "\n" +
		"myhostname = confighost.example\n" + extraMainCF
	configDir := filepath.Join(dir, "etc")
	require.NoError(t, os.Mkdir(configDir, 0o755))
	path := filepath.Join(configDir, "main.cf")
	require.NoError(t, os.WriteFile(path, []byte(mainCF), 0o644))
	// Both programs read a main.cf changed within the last second twice,
	// a second apart, in case it is still being written. Age it.
	old := time.Now().Add(-time.Minute)
	require.NoError(t, os.Chtimes(path, old, old))
	return handSetup{configDir: configDir, socket: filepath.Join(queueDir, "public", "postlog")}
}

var (
	postlogTime = regexp.MustCompile(`^[A-Z][a-z]{2} \d\d \d\d:\d\d:\d\d `)
	postlogPID  = regexp.MustCompile(`\[\d+\]: `)
)

// runByHand starts program with args, the environment entries in env and
// stdin as standard input, and collects what it reports.
func runByHand(t *testing.T, program string, setup handSetup, env []string, stdin string, args ...string) handRun {
	t.Helper()
	os.Remove(setup.socket)
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: setup.socket, Net: "unixgram"})
	require.NoError(t, err)
	defer conn.Close()

	cmd := exec.Command(program, args...)
	cmd.Env = append([]string{
		"PATH=/usr/bin:/bin",
		"MAIL_CONFIG=" + setup.configDir,
		"POSTLOG_SERVICE=" + setup.socket,
		"POSTLOG_HOSTNAME=bootstraphost",
	}, env...)
	cmd.Stdin = strings.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = 5 * time.Second
	done := make(chan error, 1)
	require.NoError(t, cmd.Start())
	go func() { done <- cmd.Wait() }()
	var runErr error
	select {
	case runErr = <-done:
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("%s %v did not exit within 20s", program, args)
	}
	run := handRun{stderr: stderr.String()}
	var exitErr *exec.ExitError
	if errors.As(runErr, &exitErr) {
		run.status = exitErr.ExitCode()
	} else {
		require.NoError(t, runErr)
	}

	buf := make([]byte, 4096)
	for {
		require.NoError(t, conn.SetReadDeadline(time.Now().Add(200*time.Millisecond)))
		n, err := conn.Read(buf)
		if err != nil {
			break
		}
		record := postlogTime.ReplaceAllString(string(buf[:n]), "TIME ")
		run.records = append(run.records, postlogPID.ReplaceAllString(record, "[PID]: "))
	}
	return run
}

func TestFrame_FatalStartMatchesC(t *testing.T) {
	if _, err := os.Stat(referenceQmgr); err != nil {
		t.Skipf("the C oqmgr is not installed: %v", err)
	}
	ours := testbed.OurQmgr(t)

	tests := []struct {
		name   string
		args   []string
		env    []string
		stdin  string
		mainCF string
		want   string // a record both programs must send
	}{
		{name: "unknown option", args: []string{"-x"}, want: "bootstraphost postfix/oqmgr[PID]: fatal: invalid option: x"},
		{name: "missing option argument", args: []string{"-o"}, want: "fatal: invalid option: o"},
		{name: "long option", args: []string{"--verbose"}, want: "fatal: invalid option: -"},
		{name: "grouped options", args: []string{"-lvx"}, want: "fatal: invalid option: x"},
		{name: "override without equals", args: []string{"-o", "foo"}, want: `fatal: invalid "-o foo" option value: missing '=' after attribute name`},
		{name: "override without name", args: []string{"-o", "=x"}, want: `fatal: invalid "-o =x" option value: missing attribute name`},
		{name: "zero socket count", args: []string{"-l", "-s", "0"}, want: "fatal: invalid socket_count: 0"},
		{name: "stderr copy", args: []string{"-V", "-l", "-s", "abc"}, want: "fatal: invalid socket_count: abc"},
		{name: "no process limit", args: []string{"-t", "unix"}, want: "confighost postfix/oqmgr[PID]: fatal: service oqmgr requires a process limit of 1"},
		{name: "service name", args: []string{"-t", "unix", "-n", "qmgr"}, want: "fatal: service qmgr requires a process limit of 1"},
		{name: "no service type", args: []string{"-l"}, want: "fatal: no transport type specified"},
		{name: "inet service type", args: []string{"-l", "-t", "inet"}, want: "fatal: unsupported transport type: inet"},
		{name: "bad generation", args: []string{"-l", "-t", "unix"}, env: []string{"GENERATION=12a"}, want: "fatal: bad generation: 12a"},
		{name: "no debugger command", args: []string{"-l", "-t", "unix", "-D"}, want: "fatal: no debugger_command variable set up"},
		{name: "stand-alone empty input", args: []string{"-S"}, want: "fatal: read: Application error"},
		{name: "stand-alone operand", args: []string{"-S", "extra"}, stdin: "I", want: "fatal: unexpected command-line argument: extra"},
		{name: "missing main.cf", args: []string{"-x"}, env: []string{"MAIL_CONFIG=/nonexistent"}, want: "fatal: open /nonexistent/main.cf: No such file or directory"},
		{name: "log tag from environment", args: []string{"-x"}, env: []string{"MAIL_LOGTAG=custom"}, want: "bootstraphost custom/oqmgr[PID]: fatal: invalid option: x"},
		{name: "verbose from environment", args: []string{"-x"}, env: []string{"MAIL_VERBOSE=1"}, want: "bootstraphost postfix/oqmgr[PID]: daemon started"},
		{name: "maillog_file outside prefixes", args: []string{"-V"}, mainCF: "maillog_file = /var/log/elsewhere\n", want: "fatal: maillog_file value '/var/log/elsewhere' does not match any prefix in maillog_file_prefixes"},
		{name: "stand-alone trigger", args: []string{"-S", "-V"}, stdin: "D"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setup := newHandSetup(t, tt.mainCF)
			// tt.env comes after the defaults, and exec.Cmd uses the
			// last value of a repeated name, so MAIL_CONFIG can be replaced.
			c := runByHand(t, referenceQmgr, setup, tt.env, tt.stdin, tt.args...)
			g := runByHand(t, ours, setup, tt.env, tt.stdin, tt.args...)

			assert.Equal(t, c.status, g.status, "exit status: C %d, ours %d", c.status, g.status)
			assert.Equal(t, c.stderr, g.stderr, "standard error")
			if tt.want != "" {
				assert.Contains(t, strings.Join(c.records, "\n"), tt.want, "C records")
			}
			assert.Equal(t, c.records, g.records, "log records")
		})
	}
}

func TestFrame_TerminalInputIsRefused(t *testing.T) {
	script, err := exec.LookPath("script")
	if err != nil {
		t.Skipf("script(1) is needed for a terminal: %v", err)
	}
	if _, err := os.Stat(referenceQmgr); err != nil {
		t.Skipf("the C oqmgr is not installed: %v", err)
	}
	setup := newHandSetup(t, "")
	outputs := map[string]string{}
	for name, program := range map[string]string{"C": referenceQmgr, "ours": testbed.OurQmgr(t)} {
		cmd := exec.Command(script, "-qec", program+" -l -t unix", "/dev/null")
		cmd.Env = []string{"PATH=/usr/bin:/bin", "MAIL_CONFIG=" + setup.configDir}
		out, err := cmd.CombinedOutput()
		var exitErr *exec.ExitError
		require.ErrorAs(t, err, &exitErr, "%s under a terminal: output %q", name, out)
		assert.Equal(t, 1, exitErr.ExitCode(), "%s exit status", name)
		outputs[name] = strings.ReplaceAll(string(out), "\r\n", "\n")
	}
	assert.Equal(t, "oqmgr: fatal: do not run this command by hand\n", outputs["C"])
	assert.Equal(t, outputs["C"], outputs["ours"])
}
