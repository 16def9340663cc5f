package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/pflag"
)

// options are the generic daemon options master(8) passes to every
// Postfix daemon (see master(5) and the trigger server skeleton).
type options struct {
	processName string
	configDir   string
	chroot      bool     // -c
	debugger    bool     // -D
	noDaemon    bool     // -d
	alone       bool     // -l: process limit 1
	unlimited   bool     // -z: process limit 0
	serviceName string   // -n
	overrides   []string // -o name=value, in order
	listenCount int      // -s
	standAlone  bool     // -S
	serviceType string   // -t
	dropPrivs   bool     // -u
	verbose     int      // -v, repeatable
	stderr      bool     // -V
}

// parseOptions parses argv the way the daemon skeletons use getopt: options
// first, stopping at the first non-option, and no arguments after them.
func parseOptions(processName string, args []string) (*options, error) {
	o := &options{processName: processName, serviceName: processName, listenCount: 1}
	fs := pflag.NewFlagSet(processName, pflag.ContinueOnError)
	fs.SetInterspersed(false)
	fs.SetOutput(os.Stderr)
	fs.BoolVarP(&o.chroot, "chroot", "c", false, "chroot to queue_directory before serving")
	fs.BoolVarP(&o.noDaemon, "no-daemon", "d", false, "do not refuse to run with a terminal on standard input")
	fs.BoolVarP(&o.debugger, "debugger", "D", false, "run under debugger_command (accepted and ignored)")
	idle := fs.StringP("max-idle", "i", "", "max_idle override (ignored: the queue manager is persistent)")
	fs.BoolVarP(&o.alone, "process-limit-one", "l", false, "process limit is 1 (required)")
	use := fs.StringP("max-use", "m", "", "max_use override (ignored: the queue manager is persistent)")
	fs.StringVarP(&o.serviceName, "service", "n", processName, "master.cf service name")
	fs.StringArrayVarP(&o.overrides, "override", "o", nil, "main.cf parameter override name=value (repeatable)")
	fs.IntVarP(&o.listenCount, "listen-count", "s", 1, "number of listening descriptors starting at 6")
	fs.BoolVarP(&o.standAlone, "stand-alone", "S", false, "stand-alone mode: read one trigger from standard input")
	fs.StringVarP(&o.serviceType, "type", "t", "", "master.cf service type: unix or fifo")
	fs.BoolVarP(&o.dropPrivs, "unprivileged", "u", false, "run as mail_owner")
	fs.CountVarP(&o.verbose, "verbose", "v", "more verbose logging (repeatable)")
	fs.BoolVarP(&o.stderr, "stderr", "V", false, "also log to standard error")
	fs.BoolVarP(&o.unlimited, "process-limit-zero", "z", false, "process limit is 0")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			os.Exit(0)
		}
		return nil, err
	}
	_ = idle
	_ = use
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected command-line argument: %s", fs.Arg(0))
	}

	o.configDir = "/etc/postfix"
	if dir := os.Getenv("MAIL_CONFIG"); dir != "" {
		o.configDir = dir
	}
	if os.Getenv("MAIL_VERBOSE") != "" {
		o.verbose++
	}
	return o, nil
}
