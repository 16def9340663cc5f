package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"oqmgr-go/conf"
	"oqmgr-go/internal/maillog"
)

// Environment variables that carry the log identity from master to its
// children (src/global/mail_task.c and maillog_client.c).
const (
	envLogTag          = "MAIL_LOGTAG"
	envPostlogService  = "POSTLOG_SERVICE"
	envPostlogHostname = "POSTLOG_HOSTNAME"
)

// bootstrapLogOptions returns the log settings in effect before main.cf is
// read, as maillog_client_init chooses them at that point: the tag comes
// from MAIL_LOGTAG, else the default syslog_name "postfix". Records go to
// the postlog socket named by POSTLOG_SERVICE when that is set, labelled
// with POSTLOG_HOSTNAME or "amnesiac", and to syslog otherwise. That way a
// fatal error in main.cf or on the command line reaches the same log as
// every later record, although master points standard error at /dev/null.
func bootstrapLogOptions(processName string, verbose int) maillog.Options {
	tag := os.Getenv(envLogTag)
	if tag == "" {
		tag = "postfix"
	}
	o := maillog.Options{
		SyslogName:  tag,
		ProcessName: processName,
		Verbose:     verbose,
	}
	if socket := os.Getenv(envPostlogService); socket != "" {
		// maillog.Options picks postlogd by a non-empty MaillogFile.
		// The file name is set in postlogd's main.cf, so any text does.
		o.MaillogFile = "(set in main.cf)"
		o.PostlogSocket = socket
		o.Hostname = os.Getenv(envPostlogHostname)
	}
	return o
}

// configLogOptions returns the log settings from main.cf, which replace
// the bootstrap settings once the generic parameters are read. stderr and
// verbose carry over the -V and -v state.
func configLogOptions(cfg *conf.Config, processName string, stderr bool, verbose int) (maillog.Options, error) {
	tag := cfg.SyslogName
	if env := os.Getenv(envLogTag); env != "" {
		// mail_task prefers the environment, which mail_params_init has
		// just set to syslog_name, so both agree in practice.
		tag = env
	}
	o := maillog.Options{
		SyslogName:      tag,
		ProcessName:     processName,
		Facility:        cfg.SyslogFacility,
		Hostname:        cfg.MyHostname,
		Stderr:          stderr,
		Verbose:         verbose,
		DelayResolution: cfg.DelayLoggingResolutionLimit,
		AddressForm:     cfg.InfoLogAddressFormat,
	}
	if cfg.MaillogFile == "" {
		return o, nil
	}
	prefixes, _ := cfg.Dict.Lookup("maillog_file_prefixes")
	matched := false
	for _, prefix := range strings.FieldsFunc(prefixes, func(r rune) bool { return strings.ContainsRune(", \t\r\n", r) }) {
		if strings.HasPrefix(cfg.MaillogFile, prefix) {
			matched = true
			break
		}
	}
	if !matched {
		return o, fmt.Errorf("maillog_file value '%s' does not match any prefix in maillog_file_prefixes", cfg.MaillogFile)
	}
	o.MaillogFile = cfg.MaillogFile
	o.PostlogSocket = cfg.QueueDirectory + "/public/" + cfg.PostlogServiceName
	return o, nil
}

// exportLogEnvironment updates the variables that maillog_client_init and
// mail_params_init leave for child processes: the queue manager starts
// none, but a debugger_command does.
func exportLogEnvironment(o maillog.Options, syslogName string) {
	os.Setenv(envLogTag, syslogName)
	if o.MaillogFile == "" {
		os.Unsetenv(envPostlogService)
		os.Unsetenv(envPostlogHostname)
		return
	}
	os.Setenv(envPostlogService, o.PostlogSocket)
	os.Setenv(envPostlogHostname, o.Hostname)
}

// cError rewrites the text of an operating system error the way Postfix's
// %m prints it: glibc's strerror text, which starts with a capital letter
// ("No such file or directory"), where Go writes it in lower case.
func cError(err error) string {
	var pathErr *fs.PathError
	if errors.As(err, &pathErr) {
		return fmt.Sprintf("%s %s: %s", pathErr.Op, pathErr.Path, cError(pathErr.Err))
	}
	var errno unix.Errno
	if errors.As(err, &errno) {
		return strerror(errno)
	}
	return err.Error()
}

// strerror returns glibc's text for errno. Go's table holds the same words
// in lower case, and errno 0 is what Postfix prints as "Application error"
// when a call failed without setting errno.
func strerror(errno unix.Errno) string {
	if errno == 0 {
		return "Application error"
	}
	text := errno.Error()
	if text == "" {
		return text
	}
	return strings.ToUpper(text[:1]) + text[1:]
}
