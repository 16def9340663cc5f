package testbed

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Paths of the installed Postfix that every instance uses.
const (
	postfixCommand   = "/usr/sbin/postfix"
	systemDaemonDir  = "/usr/lib/postfix/sbin"
	sendmailCommand  = "/usr/sbin/sendmail"
	postkickCommand  = "/usr/sbin/postkick"
	smtpSinkCommand  = "/usr/sbin/smtp-sink"
	defaultLocalUser = "oqmgrtest"
)

// startTimeout bounds how long Start, Stop and Reload wait for master.
const startTimeout = 15 * time.Second

// Options describes one instance.
type Options struct {
	// QmgrBinary is the queue manager under test. It is copied into the
	// daemon directory as "qmgr", so it logs as postfix/qmgr.
	QmgrBinary string
	// MainCF holds main.cf parameters that are added or that override the
	// test bed defaults, e.g. "queue_run_delay": "5s".
	MainCF map[string]string
	// MasterCFExtra holds lines appended to master.cf verbatim, e.g. a
	// second smtp transport.
	MasterCFExtra []string
	// QmgrArgs is appended to the qmgr master.cf entry, e.g.
	// "-o queue_run_delay=5s -v".
	QmgrArgs string
	// ServiceType is the qmgr entry's type: "unix" (the default) or "fifo".
	ServiceType string
	// QueueFSSize, when set, gives the instance a file system of its own of
	// that size (a truncate(1) size such as "64M") as its queue directory,
	// which BreakQueueFS, RepairQueueFS and FillQueueFS act on.
	QueueFSSize string
	// RelayPort is the loopback port of the SMTP server that receives all
	// non-local mail, normally a Sink's Port. When zero, a free port with no
	// listener is used, so non-local mail is deferred.
	RelayPort int
}

// Instance is one private Postfix instance. Its fields are fixed after
// Create, and Start and Stop may be called repeatedly.
type Instance struct {
	Dir         string // root of everything below, a reusable slot directory
	ConfigDir   string // main.cf and master.cf
	QueueDir    string // queue_directory
	DataDir     string // data_directory, owned by the postfix user
	DaemonDir   string // daemon_directory: copies of the Debian daemons and the qmgr under test
	MaillogPath string // maillog_file, written by postlogd
	SMTPPort    int    // smtpd on 127.0.0.1
	RelayPort   int    // relayhost port on 127.0.0.1
	LocalUser   string // system user whose mail local(8) delivers
	LocalDomain string // myhostname, listed in mydestination

	mu      sync.Mutex
	slot    *slot // nil after Close
	queueFS bool  // QueueDir is a file system of its own (queuefs.go)
}

// Create builds a stopped instance in a free slot directory. Call Close when
// done, or use New in tests, which does both.
func Create(o Options) (*Instance, error) {
	if err := CheckEnvironment(); err != nil {
		return nil, err
	}
	if o.QmgrBinary == "" {
		return nil, errors.New("testbed options: QmgrBinary is empty")
	}
	if o.ServiceType != "" && o.ServiceType != "unix" && o.ServiceType != "fifo" {
		return nil, fmt.Errorf("testbed options: invalid ServiceType %q: want unix or fifo", o.ServiceType)
	}
	if err := ensureLocalUser(defaultLocalUser); err != nil {
		return nil, err
	}

	s, err := claimSlot()
	if err != nil {
		return nil, err
	}
	i := &Instance{
		Dir:         s.dir,
		ConfigDir:   filepath.Join(s.dir, "etc"),
		QueueDir:    filepath.Join(s.dir, "queue"),
		DataDir:     filepath.Join(s.dir, "data"),
		DaemonDir:   filepath.Join(s.dir, "libexec"),
		MaillogPath: filepath.Join(s.dir, "maillog"),
		RelayPort:   o.RelayPort,
		LocalUser:   defaultLocalUser,
		LocalDomain: "testbed.localdomain",
		slot:        s,
	}
	if err := i.build(o); err != nil {
		_ = i.unmountQueueFS()
		s.release()
		return nil, fmt.Errorf("build instance in %s: %w", s.dir, err)
	}
	return i, nil
}

func (i *Instance) build(o Options) error {
	var err error
	if i.SMTPPort, err = freePort(); err != nil {
		return err
	}
	if i.RelayPort == 0 {
		if i.RelayPort, err = freePort(); err != nil {
			return err
		}
	}

	// postfix check creates the queue subdirectories but not the queue
	// directory itself, and master wants data_directory owned by mail_owner.
	for _, d := range []struct {
		path string
		mode os.FileMode
	}{
		{i.ConfigDir, 0o755},
		{i.QueueDir, 0o755},
		{i.DataDir, 0o700},
		{i.DaemonDir, 0o755},
		// A world-writable sticky spool, like /var/mail, lets local(8)
		// create the mailbox as the recipient.
		{filepath.Join(i.Dir, "mail"), 0o1777},
	} {
		if err := os.Mkdir(d.path, d.mode); err != nil {
			return err
		}
		if err := os.Chmod(d.path, d.mode); err != nil { // undo the umask
			return err
		}
	}
	if err := chownToUser(i.DataDir, "postfix"); err != nil {
		return err
	}
	if o.QueueFSSize != "" {
		if err := i.mountQueueFS(o.QueueFSSize); err != nil {
			return err
		}
	}

	// master runs $daemon_directory/<command>, so the binary under test
	// must sit next to real copies of the other daemons. Symbolic links
	// would make postfix check warn about each one.
	if out, err := exec.Command("cp", "-a", systemDaemonDir+"/.", i.DaemonDir+"/").CombinedOutput(); err != nil {
		return fmt.Errorf("copy daemons: %w: %s", err, bytes.TrimSpace(out))
	}
	if err := copyExecutable(o.QmgrBinary, filepath.Join(i.DaemonDir, "qmgr")); err != nil {
		return err
	}

	if err := os.WriteFile(filepath.Join(i.ConfigDir, "main.cf"), []byte(i.mainCF(o.MainCF)), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(i.ConfigDir, "master.cf"), []byte(i.masterCF(o)), 0o644); err != nil {
		return err
	}
	return registerConfigDir(i.ConfigDir)
}

// Start starts master with `postfix start` and waits until master's pid file
// names a live process and the smtpd port is listening.
func (i *Instance) Start() error {
	if out, err := i.postfix("start"); err != nil {
		return fmt.Errorf("postfix start in %s: %w%s", i.ConfigDir, err, i.explain(out))
	}
	deadline := time.Now().Add(startTimeout)
	for {
		// A test connection would add smtpd lines to the maillog, so look
		// for master's listening socket instead.
		if _, running := masterPID(i.QueueDir); running && listening(i.SMTPPort) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postfix in %s: master or smtpd on port %d not up after %s%s", i.ConfigDir, i.SMTPPort, startTimeout, i.explain(nil))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop stops master with `postfix stop` and waits until no process runs a
// program from the daemon directory. If that does not happen in time, it
// kills the master named in the pid file and then any remaining process of
// this instance, by PID. Stopping a stopped instance is not an error.
func (i *Instance) Stop() error {
	pid, running := masterPID(i.QueueDir)
	if running && processUnder(pid, i.Dir) {
		// A failing `postfix stop` is handled below by signals.
		_, _ = i.postfix("stop")
		if left := waitGone([]int{pid}, startTimeout); len(left) > 0 {
			_ = killPID(pid)
		}
	}

	// Children notice master's exit on their own, so give a delivery in
	// progress a moment before killing it.
	pids := processesUnder(i.DaemonDir)
	if left := waitGone(pids, 5*time.Second); len(left) > 0 {
		for _, pid := range left {
			_ = killPID(pid)
		}
		if left = waitGone(left, 5*time.Second); len(left) > 0 {
			return fmt.Errorf("stop instance %s: processes %v survived SIGKILL", i.Dir, left)
		}
	}
	return nil
}

// Reload runs `postfix reload` and waits until master logs that it reread
// its configuration.
func (i *Instance) Reload() error {
	before, _ := i.countLog("daemon started -- version", "reload -- version")
	if out, err := i.postfix("reload"); err != nil {
		return fmt.Errorf("postfix reload in %s: %w%s", i.ConfigDir, err, i.explain(out))
	}
	deadline := time.Now().Add(startTimeout)
	for {
		if n, _ := i.countLog("daemon started -- version", "reload -- version"); n > before {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postfix reload in %s: master logged no reload within %s", i.ConfigDir, startTimeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Close stops the instance, removes its directory unless keepFiles is set,
// and frees its slot for reuse. A kept directory survives until a later
// instance claims the same slot.
func (i *Instance) Close(keepFiles bool) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.slot == nil {
		return nil
	}
	err := i.Stop()
	if err == nil && !keepFiles {
		err = i.unmountQueueFS()
	}
	if err == nil && !keepFiles {
		if rmErr := os.RemoveAll(i.Dir); rmErr != nil {
			err = fmt.Errorf("remove instance %s: %w", i.Dir, rmErr)
		}
	}
	i.slot.release()
	i.slot = nil
	return err
}

// postfix runs the postfix(1) command for this instance. It prints nothing
// unless its standard output is a terminal, so errors are read from the
// maillog instead (see explain).
func (i *Instance) postfix(command string) ([]byte, error) {
	return exec.Command(postfixCommand, "-c", i.ConfigDir, command).CombinedOutput()
}

// explain returns command output and the last maillog lines, formatted to
// follow an error message.
func (i *Instance) explain(out []byte) string {
	var b strings.Builder
	if s := strings.TrimSpace(string(out)); s != "" {
		b.WriteString("\noutput: " + s)
	}
	if log, err := i.Log(); err == nil && log != "" {
		lines := strings.Split(strings.TrimRight(log, "\n"), "\n")
		b.WriteString("\nlast maillog lines:\n" + strings.Join(lines[max(0, len(lines)-10):], "\n"))
	}
	return b.String()
}

// listening reports whether a TCP socket listens on 127.0.0.1:port, read
// from /proc/net/tcp, where addresses are hexadecimal in host byte order and
// state 0A is LISTEN.
//
// NOTE: the address pattern below assumes a little-endian host.
func listening(port int) bool {
	data, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return false
	}
	want := fmt.Sprintf("0100007F:%04X", port)
	for line := range strings.Lines(string(data)) {
		fields := strings.Fields(line)
		if len(fields) > 3 && fields[1] == want && fields[3] == "0A" {
			return true
		}
	}
	return false
}

// freePort returns a loopback TCP port that was free a moment ago. If another
// process takes it before master binds it, Start fails with master's error.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find free loopback port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func copyExecutable(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("read queue manager binary: %w", err)
	}
	if err := os.WriteFile(dst, data, 0o755); err != nil {
		return fmt.Errorf("copy queue manager binary: %w", err)
	}
	return os.Chmod(dst, 0o755)
}

func chownToUser(path, name string) error {
	u, err := user.Lookup(name)
	if err != nil {
		return fmt.Errorf("look up user %s: %w", name, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(path, uid, gid); err != nil {
		return fmt.Errorf("chown %s to %s: %w", path, name, err)
	}
	return nil
}

// ensureLocalUser creates the system user that receives local mail if it is
// missing. When concurrent callers race, the loser's useradd fails but the
// user then exists.
func ensureLocalUser(name string) error {
	if _, err := user.Lookup(name); err == nil {
		return nil
	}
	out, err := exec.Command("useradd", "--system", "--no-create-home",
		"--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", name).CombinedOutput()
	if _, lookupErr := user.Lookup(name); lookupErr == nil {
		return nil
	}
	return fmt.Errorf("create local delivery user %s with useradd: %w: %s", name, err, bytes.TrimSpace(out))
}
