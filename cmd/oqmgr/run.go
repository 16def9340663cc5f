package main

import (
	"context"
	"errors"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"oqmgr-go/conf"
	"oqmgr-go/internal/maillog"
	"oqmgr-go/internal/master"
	"oqmgr-go/queue"
	"oqmgr-go/sched"
	"oqmgr-go/transport"
	"oqmgr-go/trigger"
)

// daemon is the state that the start-up steps share. The steps follow
// trigger_server_main in src/master/trigger_server.c and main,
// qmgr_pre_init and qmgr_post_init in src/oqmgr/qmgr.c, in the same order,
// so that the same bad input fails with the same message.
type daemon struct {
	processName string // base name of argv[0]
	serviceName string // -n, else processName
	configDir   string // MAIL_CONFIG, else /etc/postfix

	chroot      bool     // -c: chroot to queue_directory
	daemonMode  bool     // cleared by -d: refuse a terminal on standard input
	debugMe     bool     // -D or MAIL_DEBUG: run debugger_command
	alone       bool     // -l: process limit 1
	unlimited   bool     // -z: process limit 0
	overrides   []string // -o name=value, in order
	socketCount int      // -s: listening descriptors from fd 6
	standAlone  bool     // -S: one trigger from standard input, then exit
	serviceType string   // -t
	dropPrivs   bool     // -u: run as mail_owner
	verbose     int      // -v, repeatable, plus one for MAIL_VERBOSE
	stderr      bool     // -V: copy every record to standard error
	operands    []string // words after the options

	log            *maillog.Logger
	cfg            *conf.Config
	mainCFWarnings int // number of main.cf warnings logged at start-up
}

// exitFatal is the exit status after a fatal error, as msg_fatal gives.
const exitFatal = 1

// exitGrace is how long the scheduler may take to stop after master
// closed the status channel, before the process exits anyway with status 0.
const exitGrace = 500 * time.Millisecond

// fatalf logs a fatal record and returns the exit status for it.
func (d *daemon) fatalf(format string, a ...any) int {
	d.log.Fatal(format, a...)
	return exitFatal
}

// run starts the queue manager with argv and returns the exit status:
// 0 when master goes away or reloads, 1 after a fatal error.
func run(argv []string) int {
	d := &daemon{daemonMode: true, socketCount: 1, configDir: "/etc/postfix"}
	if os.Getenv("MAIL_VERBOSE") != "" {
		d.verbose = 1
	}
	if os.Getenv("MAIL_DEBUG") != "" {
		d.debugMe = true
	}
	if dir := os.Getenv("MAIL_CONFIG"); dir != "" {
		d.configDir = dir
	}
	// A vanished peer or an oversized file must give an error, not a
	// signal, as in every Postfix daemon.
	signal.Ignore(syscall.SIGPIPE, syscall.SIGXFSZ)

	d.processName = filepath.Base(argv[0])
	d.serviceName = d.processName
	log, err := maillog.New(bootstrapLogOptions(d.processName, d.verbose))
	if err != nil {
		// Only a bad syslog_facility or address format can fail, and
		// the bootstrap settings use neither.
		os.Stderr.WriteString(d.processName + ": fatal: " + err.Error() + "\n")
		return exitFatal
	}
	d.log = log
	defer d.log.Close()
	d.log.Debug(1, "daemon started")

	// mail_conf_suck reads main.cf before the options are parsed, so a
	// missing main.cf is reported even for a bad option.
	// Its warnings, such as a repeated name, are logged at once too.
	mainCF, err := conf.ReadMainCF(d.configDir + "/main.cf")
	if err != nil {
		return d.fatalf("%s", cError(err))
	}
	for _, w := range mainCF.Warnings() {
		d.log.Warning("%s", w)
	}
	d.mainCFWarnings = len(mainCF.Warnings())
	if status := d.parseOptions(argv[1:]); status >= 0 {
		return status
	}
	if status := d.loadConfig(); status >= 0 {
		return status
	}
	if d.daemonMode && !d.standAlone && isTerminal(0) {
		// The message goes to standard error as well, under the bare
		// process name, because the user ran the daemon by hand.
		os.Stderr.WriteString(d.processName + ": fatal: do not run this command by hand\n")
		return d.fatalf("do not run this command by hand")
	}
	if status := d.checkService(); status >= 0 {
		return status
	}
	if d.debugMe {
		if status := d.runDebugger(); status >= 0 {
			return status
		}
	}

	if err := os.Chdir(d.cfg.QueueDirectory); err != nil {
		return d.fatalf("chdir(\"%s\"): %s", d.cfg.QueueDirectory, cError(unwrapErrno(err)))
	}
	if err := dropPrivileges(d.cfg, d.chroot, d.dropPrivs, d.log); err != nil {
		return d.fatalf("%s", err)
	}
	// conf.Load read main.cf again, and its first warnings are the
	// main.cf ones logged above. The rest are qmgr_post_init's.
	for _, w := range d.cfg.Warnings()[min(d.mainCFWarnings, len(d.cfg.Warnings())):] {
		d.log.Warning("%s", w)
	}
	if d.standAlone {
		return d.serveStandAlone()
	}
	return d.serve()
}

// parseOptions applies the generic daemon options in argv order. It
// returns -1 to go on, or the exit status after a fatal error. Like the C
// skeleton it acts on each option as it meets it, so "-V -x" reports the
// bad -x on standard error and "-x -V" does not.
func (d *daemon) parseOptions(args []string) int {
	g := &getopt{args: args}
	for {
		letter, arg, ok, err := g.next()
		if err != nil {
			return d.fatalf("%s", err)
		}
		if !ok {
			break
		}
		switch letter {
		case 'c':
			d.chroot = true
		case 'd':
			d.daemonMode = false
		case 'D':
			d.debugMe = true
		case 'i':
			// max_idle does not apply: the queue manager never exits
			// when idle (qmgr_post_init sets the limit to 0).
			d.overrides = append(d.overrides, "max_idle="+arg)
		case 'l':
			d.alone = true
		case 'm':
			// max_use does not apply either, for the same reason.
			d.overrides = append(d.overrides, "max_use="+arg)
		case 'n':
			d.serviceName = arg
		case 'o':
			if err := conf.NewDict().Override(arg); err != nil {
				return d.fatalf("%s", err)
			}
			d.overrides = append(d.overrides, arg)
		case 's':
			if d.socketCount = atoi(arg); d.socketCount <= 0 {
				return d.fatalf("invalid socket_count: %s", arg)
			}
		case 'S':
			d.standAlone = true
		case 't':
			d.serviceType = arg
		case 'u':
			d.dropPrivs = true
		case 'v':
			d.verbose++
			d.reopenBootstrapLog()
		case 'V':
			d.stderr = true
			d.reopenBootstrapLog()
		case 'z':
			d.unlimited = true
		}
	}
	d.operands = g.operands()
	return -1
}

// reopenBootstrapLog applies a -v or -V met on the command line to the
// bootstrap log.
func (d *daemon) reopenBootstrapLog() {
	o := bootstrapLogOptions(d.processName, d.verbose)
	o.Stderr = d.stderr
	_ = d.log.Reopen(o) // fails only for a bad facility or address format, which o leaves at the defaults
}

// loadConfig reads main.cf with the -o overrides and switches the log to
// the main.cf settings. It returns -1 to go on, or an exit status.
func (d *daemon) loadConfig() int {
	// process_name is set before main.cf is read and service_name after
	// the options, so both win over main.cf and -o, as in Postfix.
	overrides := append([]string{"process_name=" + d.processName}, d.overrides...)
	overrides = append(overrides, "service_name="+d.serviceName)
	cfg, err := conf.Load(d.configDir, overrides)
	if err != nil {
		// NOTE: the C program switches to the main.cf log settings
		// between the generic parameters and its own tables, so a bad
		// queue manager parameter (queue_run_delay = 0) is logged with
		// myhostname. conf.Load reads both at once, so here every
		// parameter error still goes out with the bootstrap settings.
		return d.fatalf("%s", cError(err))
	}
	d.cfg = cfg

	o, err := configLogOptions(cfg, d.processName, d.stderr, d.verbose)
	if err != nil {
		return d.fatalf("%s", err)
	}
	if err := d.log.Reopen(o); err != nil {
		return d.fatalf("%s", strings.TrimPrefix(err.Error(), "maillog: "))
	}
	exportLogEnvironment(o, cfg.SyslogName)
	return -1
}

// checkService applies the service requirements of the queue manager:
// a process limit of 1 and a listener type that a trigger server handles.
// Neither applies in stand-alone mode. It returns -1 to go on.
func (d *daemon) checkService() int {
	if d.standAlone {
		return -1
	}
	if !d.alone {
		return d.fatalf("service %s requires a process limit of 1", d.serviceName)
	}
	if d.serviceType == "" {
		return d.fatalf("no transport type specified")
	}
	switch strings.ToLower(d.serviceType) {
	case trigger.KindUnix, trigger.KindFIFO:
		d.serviceType = strings.ToLower(d.serviceType)
	default:
		// TODO(postfix): trigger_server_accept_pass also serves the
		// "pass" type, which receives the client descriptor over the
		// socket; the trigger package has no such listener yet.
		return d.fatalf("unsupported transport type: %s", d.serviceType)
	}

	if gen, ok := os.LookupEnv("GENERATION"); ok {
		n, err := master.ParseGeneration(gen)
		if err != nil {
			return d.fatalf("bad generation: %s", gen)
		}
		d.log.Debug(1, "process generation: %s (%o)", gen, n)
	}
	return -1
}

// runDebugger runs debugger_command, as -D and MAIL_DEBUG ask, and waits
// for it like system(3). It returns -1 to go on.
func (d *daemon) runDebugger() int {
	d.cfg.Dict.Set("process_id", strconv.Itoa(os.Getpid()))
	command, _ := d.cfg.Dict.Lookup("debugger_command")
	if command == "" {
		return d.fatalf("no debugger_command variable set up")
	}
	d.log.Info("running: %s", command)
	_ = runShell(command)
	return -1
}

// serveStandAlone serves one trigger read from standard input and exits,
// which is what -S selects.
//
// TODO(postfix): qmgr_post_init first moves files left in active back to
// incoming. The scheduler does that only inside Loop.Run, which would
// also start deliveries, so stand-alone mode skips the move.
func (d *daemon) serveStandAlone() int {
	buf := make([]byte, trigger.BufferSize)
	n, err := unix.Read(0, buf)
	if err != nil {
		return d.fatalf("read: %s", cError(err))
	}
	if n <= 0 {
		return d.fatalf("read: %s", strerror(0))
	}
	if status := d.checkOperands(); status >= 0 {
		return status
	}
	d.logRequestBytes(buf[:n])
	return 0
}

// checkOperands rejects words after the options. qmgr_trigger_event does
// this when a trigger arrives, not at start-up, so under master the first
// wakeup ends the process. It returns -1 to go on.
func (d *daemon) checkOperands() int {
	if len(d.operands) > 0 {
		return d.fatalf("unexpected command-line argument: %s", d.operands[0])
	}
	return -1
}

// logRequestBytes writes the -v lines of qmgr_trigger_event for one
// trigger buffer: each byte as a number and a character.
func (d *daemon) logRequestBytes(buf []byte) {
	if d.log.Verbose() < 1 {
		return
	}
	for _, c := range buf {
		shown := byte('?')
		if c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' {
			shown = c
		}
		d.log.Info("request: %d (%c)", int8(c), shown)
		if trigger.Parse([]byte{c}) == 0 {
			d.log.Info("request ignored")
		}
	}
}

// serve runs the trigger server and the scheduler until master closes the
// status channel, which is how `postfix reload` and `postfix stop` end
// the process. Deliveries in progress are left to their agents, as the C
// queue manager leaves them.
func (d *daemon) serve() int {
	cfg := d.cfg
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	status, err := master.NewStatus(master.StatusFD, os.Getenv("GENERATION"))
	if err != nil {
		return d.fatalf("%v", err)
	}
	// Like trigger_server_main, which re-arms its watchdog before every
	// event-loop turn, the process ends when one trigger hand-over or one
	// pass of the scheduling loop lasts qmgr_daemon_timeout.
	expire := func() {
		d.log.Fatal("watchdog timeout")
		os.Exit(exitFatal)
	}
	wd := newWatchdog(cfg.QmgrDaemonTimeout, expire)
	go func() {
		<-status.Gone()
		d.log.Debug(1, "master disconnect -- exiting")
		cancel()
		// The C program exits at once here, because every queue file
		// is complete on disk and delivery agents finish on their own.
		// After a reload master starts the next process right away, so
		// give Run only a moment to wind down.
		time.Sleep(exitGrace)
		wakeSuccessor(d.serviceType, d.serviceName)
		d.log.Close()
		os.Exit(0)
	}()

	// The working directory is the queue directory (the root after a
	// chroot), so queue paths are relative like the C program's: shorter
	// lookups for every rename, and the same names in log lines.
	root := "."
	dir := queue.NewDir(root, cfg.HashQueueNames, cfg.HashQueueDepth)
	resolver := transport.NewResolver(root, cfg.RewriteServiceName, cfg.QmgrIPCTimeout)
	defer resolver.Close()

	var flow sched.FlowControl
	if isOpen(master.FlowReadFD) && isOpen(master.FlowWriteFD) {
		flow = master.NewFlow(master.FlowReadFD, master.FlowWriteFD)
	}
	loop := sched.New(sched.Options{
		Config:   cfg,
		Dir:      dir,
		Log:      d.log,
		Resolver: rewriteClient{resolver},
		Peers:    &peers{queueDir: root, cfg: cfg},
		Flow:     flow,
	})

	go watchPasses(ctx, loop.PassStarted, cfg.QmgrDaemonTimeout, expire)

	// NOTE: only fd 6 is served. master passes more than one listening
	// descriptor (-s) only to inet services, which a queue manager is not.
	listener := os.NewFile(uintptr(master.ListenFD), "trigger")
	server, err := trigger.NewServer(listener, d.serviceType, status)
	if err != nil {
		return d.fatalf("%v", err)
	}
	server.Log = d.log
	server.MasterFD = master.StatusFD
	serveErr := make(chan error, 1)
	go func() {
		serveErr <- server.Serve(ctx, func(r trigger.Request) {
			wd.start()
			defer wd.stop()
			if d.checkOperands() >= 0 {
				os.Exit(exitFatal)
			}
			loop.Trigger(r)
		})
		cancel()
	}()

	if err := loop.Run(ctx); err != nil {
		return d.fatalf("%v", err)
	}
	select {
	case err := <-serveErr:
		if err != nil && !errors.Is(err, trigger.ErrMasterGone) {
			d.log.Warning("trigger server: %v", err)
		}
	default:
	}
	if masterClosed() {
		wakeSuccessor(d.serviceType, d.serviceName)
	}
	return 0
}

// masterClosed reports whether master's status channel has turned
// readable, which means master closed it (reload) or went away.
func masterClosed() bool {
	fds := []unix.PollFd{{Fd: int32(master.StatusFD), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, 0)
	return err == nil && n > 0 && fds[0].Revents&(unix.POLLIN|unix.POLLHUP) != 0
}

// isTerminal reports whether fd is a terminal, like isatty(3).
func isTerminal(fd int) bool {
	_, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	return err == nil
}

func isOpen(fd int) bool {
	_, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	return err == nil
}

// unwrapErrno returns the errno inside err, or err itself.
func unwrapErrno(err error) error {
	var errno unix.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return err
}

// wakeSuccessor leaves one wakeup request on the service's own endpoint as
// the process exits after master closed the status channel.
//
// NOTE: this goes beyond the C program. After a reload master sends the
// new process its first wakeup at once. When the old process takes that
// connection before it notices the closed channel, master starts no new
// process until the next wakeup (300 s with Debian's master.cf), and mail
// waits in active meanwhile. The request left here makes master start the
// successor now. At worst it causes one extra incoming scan.
func wakeSuccessor(serviceType, serviceName string) {
	for _, class := range []string{"public", "private"} {
		path := class + "/" + serviceName
		if serviceType == "fifo" {
			f, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0)
			if err != nil {
				continue
			}
			_, _ = f.Write([]byte("W"))
			f.Close()
			return
		}
		conn, err := net.DialTimeout("unix", path, time.Second)
		if err != nil {
			continue
		}
		_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = conn.Write([]byte("W\x00"))
		conn.Close()
		return
	}
}
