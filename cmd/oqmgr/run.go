package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"oqmgr-go/conf"
	"oqmgr-go/internal/maillog"
	"oqmgr-go/internal/master"
	"oqmgr-go/queue"
	"oqmgr-go/sched"
	"oqmgr-go/transport"
	"oqmgr-go/trigger"
)

// run starts the queue manager and returns the process exit status. Fatal
// conditions are logged with the "fatal: " prefix and give status 1.
func run(o *options) int {
	signal.Ignore(syscall.SIGPIPE, syscall.SIGXFSZ)

	// process_name and service_name are read-only parameters that the
	// daemon skeleton asserts around the -o overrides.
	overrides := append([]string{"process_name=" + o.processName}, o.overrides...)
	overrides = append(overrides, "service_name="+o.serviceName)
	cfg, err := conf.Load(o.configDir, overrides)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: fatal: %v\n", o.processName, err)
		return 1
	}

	log, err := maillog.New(logOptions(cfg, o))
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: fatal: open log: %v\n", o.processName, err)
		return 1
	}
	fatal := func(format string, a ...any) int {
		log.Fatal(format, a...)
		return 1
	}
	for _, w := range cfg.Warnings() {
		log.Warning("%s", w)
	}

	if !o.alone {
		return fatal("service %s requires a process limit of 1", o.serviceName)
	}
	if o.serviceType == "" && !o.standAlone {
		return fatal("no transport type specified")
	}
	if o.serviceType != "" && o.serviceType != "unix" && o.serviceType != "fifo" {
		return fatal("unsupported transport type: %s", o.serviceType)
	}

	if err := os.Chdir(cfg.QueueDirectory); err != nil {
		return fatal("chdir(\"%s\"): %v", cfg.QueueDirectory, err)
	}
	if err := dropPrivileges(cfg, o); err != nil {
		return fatal("%v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var status *master.Status
	if !o.standAlone {
		status, err = master.NewStatus(master.StatusFD, os.Getenv("GENERATION"))
		if err != nil {
			return fatal("%v", err)
		}
		go func() {
			<-status.Gone()
			cancel()
		}()
	}

	root := cfg.QueueDirectory
	if o.chroot {
		root = "/"
	}
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
		Log:      log,
		Resolver: resolver,
		Peers:    &peers{queueDir: root, cfg: cfg},
		Flow:     flow,
	})

	serveErr := make(chan error, 1)
	if !o.standAlone {
		listener := os.NewFile(uintptr(master.ListenFD), "trigger")
		server, err := trigger.NewServer(listener, o.serviceType, status)
		if err != nil {
			return fatal("%v", err)
		}
		go func() {
			serveErr <- server.Serve(ctx, loop.Trigger)
			cancel()
		}()
	}

	if err := loop.Run(ctx); err != nil {
		return fatal("%v", err)
	}
	select {
	case err := <-serveErr:
		if err != nil && !errors.Is(err, trigger.ErrMasterGone) {
			log.Warning("trigger server: %v", err)
		}
	default:
	}
	return 0
}

// logOptions derives the log identity and destination from the
// configuration: syslog_name/process name as tag, postlog when
// maillog_file is set.
func logOptions(cfg *conf.Config, o *options) maillog.Options {
	host := cfg.MyHostname
	if i := strings.IndexByte(host, '.'); i > 0 {
		host = host[:i]
	}
	lo := maillog.Options{
		SyslogName:      cfg.SyslogName,
		ProcessName:     o.processName,
		Facility:        cfg.SyslogFacility,
		Hostname:        host,
		Stderr:          o.stderr,
		Verbose:         o.verbose,
		DelayResolution: cfg.DelayLoggingResolutionLimit,
		AddressForm:     cfg.InfoLogAddressFormat,
	}
	if cfg.MaillogFile != "" {
		lo.MaillogFile = cfg.MaillogFile
		lo.PostlogSocket = filepath.Join(cfg.QueueDirectory, "public", cfg.PostlogServiceName)
	}
	return lo
}

// dropPrivileges changes to mail_owner (-u), with a chroot to the queue
// directory in between when -c asks for it, in the order Postfix uses.
func dropPrivileges(cfg *conf.Config, o *options) error {
	if !o.dropPrivs && !o.chroot {
		return nil
	}
	var uid, gid int
	if o.dropPrivs {
		u, err := user.Lookup(cfg.MailOwner)
		if err != nil {
			return fmt.Errorf("unknown mail_owner user: %s: %w", cfg.MailOwner, err)
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
		if uid == 0 {
			return fmt.Errorf("mail_owner %s must not be the super-user", cfg.MailOwner)
		}
		if err := unix.Setgroups([]int{gid}); err != nil {
			return fmt.Errorf("setgroups: %w", err)
		}
		if err := unix.Setgid(gid); err != nil {
			return fmt.Errorf("setgid(%d): %w", gid, err)
		}
	}
	if o.chroot {
		if err := unix.Chroot(cfg.QueueDirectory); err != nil {
			return fmt.Errorf("chroot(%s): %w", cfg.QueueDirectory, err)
		}
		if err := os.Chdir("/"); err != nil {
			return fmt.Errorf("chdir(\"/\"): %w", err)
		}
	}
	if o.dropPrivs {
		if err := unix.Setuid(uid); err != nil {
			return fmt.Errorf("setuid(%d): %w", uid, err)
		}
	}
	return nil
}

func isOpen(fd int) bool {
	_, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	return err == nil
}
