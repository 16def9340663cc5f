package conf

// Load reads parameters in the order a Postfix 3.7 queue manager does:
// main.cf, the -o overrides, the generic parameters of mail_params_init in
// src/global/mail_params.c, the tables in main() of src/oqmgr/qmgr.c (ints,
// strings, booleans, times), and the adjustments of qmgr_post_init. The
// order matters because each default becomes visible to $name expansion
// only once its parameter has been read.

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// Defaults of Postfix 3.7.11 as built by Debian, where postconf -d differs
// from upstream or the value is computed.
const (
	defaultMailVersion  = "3.7.11"
	defaultDaemonDir    = "/usr/lib/postfix/sbin"
	defaultQueueDir     = "/var/spool/postfix"
	defaultDomain       = "localdomain"
	defaultCompatLevel  = "0"
	defaultSyslogName   = "${multi_instance_name?{$multi_instance_name}:{postfix}}"
	defaultSMTPUTF8     = "${{$compatibility_level} <level {1} ? {no} : {yes}}"
	defaultRelayDomains = "${{$compatibility_level} <level {2} ? {$mydestination} : {}}"
)

// syslogFacilities are the facility names Postfix accepts on Linux.
var syslogFacilities = map[string]bool{
	"auth": true, "authpriv": true, "cron": true, "daemon": true, "ftp": true,
	"kern": true, "lpr": true, "mail": true, "news": true, "syslog": true,
	"user": true, "uucp": true, "local0": true, "local1": true, "local2": true,
	"local3": true, "local4": true, "local5": true, "local6": true, "local7": true,
}

// hostname is a test seam for the system host name that the myhostname
// default starts from.
var hostname = os.Hostname

// Load reads $configDir/main.cf, applies master.cf -o overrides in order,
// installs the Postfix 3.7 default of every parameter it reads and returns
// the typed configuration. An invalid value returns an error whose text is
// Postfix's fatal message for it.
//
// Postfix sets process_name before it reads main.cf and service_name after
// the -o options. So a caller that wants $process_name or $service_name to
// expand during Load passes "process_name=NAME" first and
// "service_name=NAME" last in overrides.
func Load(configDir string, overrides []string) (*Config, error) {
	d := NewDict()
	d.Set("config_directory", configDir)
	if err := d.load(configDir + "/main.cf"); err != nil {
		return nil, err
	}
	for _, override := range overrides {
		if err := d.Override(override); err != nil {
			return nil, err
		}
	}

	c := &Config{Dict: d, ConfigDirectory: configDir}
	c.warnings = d.Warnings()
	r := &paramReader{d: d}
	if err := readGeneric(r, c); err != nil {
		return nil, err
	}
	if err := readQueueManager(r, c); err != nil {
		return nil, err
	}
	c.adjustLimits()
	c.ProcessName, _ = d.Lookup("process_name")
	c.ServiceName, _ = d.Lookup("service_name")
	return c, nil
}

// readGeneric reads the part of mail_params_init that the queue manager
// uses or that other defaults refer to.
func readGeneric(r *paramReader, c *Config) error {
	mainCF := c.ConfigDirectory + "/main.cf"

	compatLevel := r.str("compatibility_level", defaultCompatLevel, 0, 0)
	if r.err == nil {
		if _, err := parseCompatLevel(compatLevel); err != nil {
			return err
		}
	}

	r.str("mail_version", defaultMailVersion, 1, 0)
	c.SyslogFacility = r.str("syslog_facility", "mail", 1, 0)
	r.str("multi_instance_name", "", 0, 0)
	c.MaillogFile = r.str("maillog_file", "", 0, 0)
	r.str("maillog_file_prefixes", "/var, /dev/stdout", 1, 0)
	c.PostlogServiceName = r.str("postlog_service_name", "postlog", 1, 0)
	if r.err == nil && !syslogFacilities[c.SyslogFacility] {
		return paramError("syslog_facility", c.SyslogFacility,
			"file %s: parameter syslog_facility: unrecognized value: %s", mainCF, c.SyslogFacility)
	}

	c.SMTPUTF8Enable = r.boolExpr("smtputf8_enable", defaultSMTPUTF8)

	c.MyHostname = r.str("myhostname", defaultHostname(r), 1, 0)
	myDomain := r.str("mydomain", domainOf(c.MyHostname), 1, 0)
	for _, param := range []struct{ name, value string }{{"myhostname", c.MyHostname}, {"mydomain", myDomain}} {
		if r.err == nil && !validHostname(param.value) {
			return paramError(param.name, param.value,
				"file %s: parameter %s: bad parameter value: %s", mainCF, param.name, param.value)
		}
	}

	r.str("mail_name", "Postfix", 1, 0)
	c.SyslogName = r.str("syslog_name", defaultSyslogName, 1, 0)
	c.MailOwner = r.str("mail_owner", "postfix", 1, 0)
	r.str("mydestination", "$myhostname, localhost.$mydomain, localhost", 0, 0)
	r.str("myorigin", "$myhostname", 1, 0)
	r.str("relayhost", "", 0, 0)
	c.DaemonDirectory = r.str("daemon_directory", defaultDaemonDir, 1, 0)
	c.QueueDirectory = r.str("queue_directory", defaultQueueDir, 1, 0)
	c.DoubleBounceSender = r.str("double_bounce_sender", "double-bounce", 1, 0)
	c.HashQueueNames = splitList(r.str("hash_queue_names", "deferred, defer", 1, 0))
	c.RecipientDelimiter = r.str("recipient_delimiter", "", 0, 0)
	r.str("relay_domains", defaultRelayDomains, 0, 0)
	r.str("fast_flush_domains", "$relay_domains", 0, 0)
	r.str("default_verp_delimiters", "+=", 2, 2)
	c.VERPDelimiterFilter = r.str("verp_delimiter_filter", "-=+", 1, 0)
	c.BounceServiceName = r.str("bounce_service_name", "bounce", 1, 0)
	c.DeferServiceName = r.str("defer_service_name", "defer", 1, 0)
	c.QueueServiceName = r.str("queue_service_name", "qmgr", 1, 0)
	c.RewriteServiceName = r.str("rewrite_service_name", "rewrite", 1, 0)
	c.FlushServiceName = r.str("flush_service_name", "flush", 1, 0)
	c.VerifyServiceName = r.str("address_verify_service_name", "verify", 1, 0)
	c.TraceServiceName = r.str("trace_service_name", "trace", 1, 0)
	c.InfoLogAddressFormat = r.str("info_log_address_format", "external", 1, 0)

	c.DefaultProcessLimit = r.integer("default_process_limit", 100, 1, 0)
	c.HashQueueDepth = r.integer("hash_queue_depth", 1, 1, 0)
	c.DelayLoggingResolutionLimit = r.integer("delay_logging_resolution_limit", 2, 0, 6)

	c.OwnerRequestSpecial = r.boolean("owner_request_special", true)
	c.HelpfulWarnings = r.boolean("helpful_warnings", true)

	r.duration("ipc_timeout", "3600s", 1, 0)
	c.IPCIdle = r.duration("ipc_idle", "5s", 1, 0)
	c.IPCTTL = r.duration("ipc_ttl", "1000s", 1, 0)
	c.DaemonTimeout = r.duration("daemon_timeout", "18000s", 1, 0)
	c.InFlowDelay = r.duration("in_flow_delay", "1s", 0, 10)
	if r.err != nil {
		return r.err
	}

	// NOTE: Postfix checks info_log_address_format when it first formats an
	// address for logging, that is when the first message is logged; Load
	// checks it at once, with the same text.
	if f := c.InfoLogAddressFormat; f != "external" && f != "internal" {
		return paramError("info_log_address_format", f,
			"invalid parameter setting \"info_log_address_format = %s\"", f)
	}
	// TODO(postfix): mail_params_init also checks that mail_owner exists and
	// differs from default_privs, that myorigin is one name, that myhostname
	// and relayhost differ, and that default_verp_delimiters passes
	// verp_delims_verify; Load does none of these.
	return nil
}

// readQueueManager reads the parameter tables of the oqmgr main program.
func readQueueManager(r *paramReader, c *Config) error {
	c.QmgrMessageActiveLimit = r.integer("qmgr_message_active_limit", 20000, 1, 0)
	c.QmgrMessageRecipientLimit = r.integer("qmgr_message_recipient_limit", 20000, 1, 0)
	c.InitialDestinationConcurrency = r.integer("initial_destination_concurrency", 5, 1, 0)
	c.DefaultDestinationConcurrencyLimit = r.integer("default_destination_concurrency_limit", 20, 0, 0)
	c.DefaultDestinationRecipientLimit = r.integer("default_destination_recipient_limit", 50, 0, 0)
	c.QmgrFudgeFactor = r.integer("qmgr_fudge_factor", 100, 10, 100)
	r.integer("local_destination_recipient_limit", 1, 0, 0)
	r.integer("local_destination_concurrency_limit", 2, 0, 0)
	c.DefaultDestinationConcurrencyFailedCohortLimit = r.integer("default_destination_concurrency_failed_cohort_limit", 1, 0, 0)
	c.AddressVerifyPendingRequestLimit = r.integer("address_verify_pending_request_limit", 20000/4, 1, 0)

	c.DeferTransports = splitList(r.str("defer_transports", "", 0, 0))
	c.DefaultDestinationConcurrencyPositiveFeedback = r.str("default_destination_concurrency_positive_feedback", "1", 1, 0)
	c.DefaultDestinationConcurrencyNegativeFeedback = r.str("default_destination_concurrency_negative_feedback", "1", 1, 0)
	c.DefaultFilterNexthop = r.str("default_filter_nexthop", "", 0, 0)

	c.DisableVERPBounces = r.boolean("disable_verp_bounces", false)
	c.DestinationConcurrencyFeedbackDebug = r.boolean("destination_concurrency_feedback_debug", false)
	c.ConfirmDelayCleared = r.boolean("confirm_delay_cleared", false)

	const hundredDays = 100 * 86400
	c.QueueRunDelay = r.duration("queue_run_delay", "300s", 1, 0)
	c.MinimalBackoffTime = r.duration("minimal_backoff_time", "300s", 1, 0)
	c.MaximalBackoffTime = r.duration("maximal_backoff_time", "4000s", 1, 0)
	c.MaximalQueueLifetime = r.duration("maximal_queue_lifetime", "5d", 0, hundredDays)
	c.BounceQueueLifetime = r.duration("bounce_queue_lifetime", "5d", 0, hundredDays)
	c.TransportRetryTime = r.duration("transport_retry_time", "60s", 1, 0)
	c.QmgrClogWarnTime = r.duration("qmgr_clog_warn_time", "300s", 0, 0)
	c.DefaultTransportRateDelay = r.duration("default_transport_rate_delay", "0s", 0, 0)
	c.DefaultDestinationRateDelay = r.duration("default_destination_rate_delay", "0s", 0, 0)
	c.QmgrDaemonTimeout = r.duration("qmgr_daemon_timeout", "1000s", 1, 0)
	c.QmgrIPCTimeout = r.duration("qmgr_ipc_timeout", "60s", 1, 0)
	return r.err
}

// adjustLimits applies the corrections of qmgr_post_init and records the
// warnings Postfix logs for them. The dictionary keeps the configured
// values, as in Postfix, which changes only its variables.
func (c *Config) adjustLimits() {
	if c.QmgrMessageRecipientLimit < c.QmgrMessageActiveLimit {
		c.warnings = append(c.warnings, "qmgr_message_recipient_limit is smaller than "+
			"qmgr_message_active_limit - adjusting qmgr_message_recipient_limit")
		c.QmgrMessageRecipientLimit = c.QmgrMessageActiveLimit
	}
	if c.BounceQueueLifetime > c.MaximalQueueLifetime {
		c.warnings = append(c.warnings, "bounce_queue_lifetime is larger than "+
			"maximal_queue_lifetime - adjusting bounce_queue_lifetime")
		c.BounceQueueLifetime = c.MaximalQueueLifetime
	}
}

// defaultHostname computes the myhostname default: the system host name,
// with "." and $mydomain (or "localdomain") appended when it has no dot.
// Like Postfix, it calls gethostname only when myhostname is not set.
func defaultHostname(r *paramReader) string {
	if _, ok := r.d.Raw("myhostname"); ok || r.err != nil {
		return ""
	}
	name, err := hostname()
	if err != nil {
		r.fail(fmt.Errorf("gethostname: %w", err))
		return ""
	}
	if !validHostname(name) {
		r.fail(errors.New("unable to use my own hostname"))
		return ""
	}
	if strings.Contains(name, ".") {
		return name
	}
	domain, ok := r.d.Lookup("mydomain")
	if !ok {
		domain = defaultDomain
	}
	return name + "." + domain
}

// domainOf computes the mydomain default: what follows the first dot of
// myhostname, or "localdomain".
func domainOf(host string) string {
	if _, domain, ok := strings.Cut(host, "."); ok {
		return domain
	}
	return defaultDomain
}

// validHostname applies the checks of Postfix's valid_hostname: labels of
// letters, digits, '_' and inner '-', at most 63 bytes each, no empty
// label, not all numeric, at most 255 bytes in total.
func validHostname(name string) bool {
	if name == "" || len(name) > 255 {
		return false
	}
	labelLength := 0
	nonNumeric := false
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case isNameChar(c):
			labelLength++
			if labelLength > 63 {
				return false
			}
			if !isDigit(c) {
				nonNumeric = true
			}
		case c == '.':
			if labelLength == 0 || i == len(name)-1 {
				return false
			}
			labelLength = 0
		case c == '-':
			nonNumeric = true
			labelLength++
			if labelLength == 1 || i == len(name)-1 || name[i+1] == '.' {
				return false
			}
		default:
			return false
		}
	}
	return nonNumeric
}

// paramReader reads parameters in sequence and keeps the first error, so
// that a run of reads needs one check at the end.
type paramReader struct {
	d   *Dict
	err error
}

func (r *paramReader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

func (r *paramReader) str(name, def string, minLen, maxLen int) string {
	if r.err != nil {
		return ""
	}
	value, err := r.d.StringParam(name, def, minLen, maxLen)
	r.fail(err)
	return value
}

func (r *paramReader) integer(name string, def, min, max int) int {
	if r.err != nil {
		return 0
	}
	value, err := r.d.IntParam(name, def, min, max)
	r.fail(err)
	return value
}

func (r *paramReader) boolean(name string, def bool) bool {
	if r.err != nil {
		return false
	}
	value, err := r.d.BoolParam(name, def)
	r.fail(err)
	return value
}

func (r *paramReader) boolExpr(name, def string) bool {
	if r.err != nil {
		return false
	}
	value, err := r.d.boolParamExpr(name, def)
	r.fail(err)
	return value
}

// duration reads a time parameter with bounds in seconds.
func (r *paramReader) duration(name, def string, minSeconds, maxSeconds int) time.Duration {
	if r.err != nil {
		return 0
	}
	value, err := r.d.TimeParam(name, def, time.Duration(minSeconds)*time.Second,
		time.Duration(maxSeconds)*time.Second)
	r.fail(err)
	return value
}
