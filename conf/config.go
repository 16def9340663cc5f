package conf

import (
	"sync"
	"time"
)

// Config is the typed configuration of the queue manager. Each field names
// its Postfix parameter and the Postfix 3.7.11 default (Debian package).
type Config struct {
	// Dict holds every raw value, including the defaults Load inserted.
	Dict *Dict

	// ConfigDirectory is the directory main.cf was read from, as passed to
	// Load (Postfix's MAIL_CONFIG), not a config_directory setting.
	ConfigDirectory string
	// QueueDirectory is queue_directory (/var/spool/postfix).
	QueueDirectory string
	// DaemonDirectory is daemon_directory (/usr/lib/postfix/sbin).
	DaemonDirectory string
	// MailOwner is mail_owner (postfix).
	MailOwner string

	// SyslogName is syslog_name
	// (${multi_instance_name?{$multi_instance_name}:{postfix}}).
	SyslogName string
	// SyslogFacility is syslog_facility (mail).
	SyslogFacility string
	// MaillogFile is maillog_file (empty: log to syslog).
	MaillogFile string
	// PostlogServiceName is postlog_service_name (postlog).
	PostlogServiceName string
	// MyHostname is myhostname (the host name, with ".$mydomain" appended
	// when it has no dot).
	MyHostname string

	// ProcessName and ServiceName are set by the caller: the base name of
	// argv[0] and the master.cf service name.
	ProcessName, ServiceName string

	// QueueRunDelay is queue_run_delay (300s, at least 1s).
	QueueRunDelay time.Duration
	// MinimalBackoffTime is minimal_backoff_time (300s, at least 1s).
	MinimalBackoffTime time.Duration
	// MaximalBackoffTime is maximal_backoff_time (4000s, at least 1s).
	MaximalBackoffTime time.Duration
	// MaximalQueueLifetime is maximal_queue_lifetime (5d, at most 100d).
	MaximalQueueLifetime time.Duration
	// BounceQueueLifetime is bounce_queue_lifetime (5d, at most 100d),
	// lowered to MaximalQueueLifetime when larger.
	BounceQueueLifetime time.Duration
	// TransportRetryTime is transport_retry_time (60s, at least 1s).
	TransportRetryTime time.Duration
	// QmgrClogWarnTime is qmgr_clog_warn_time (300s; 0 turns warnings off).
	QmgrClogWarnTime time.Duration
	// DefaultTransportRateDelay is default_transport_rate_delay (0s).
	DefaultTransportRateDelay time.Duration
	// DefaultDestinationRateDelay is default_destination_rate_delay (0s).
	DefaultDestinationRateDelay time.Duration
	// QmgrDaemonTimeout is qmgr_daemon_timeout (1000s, at least 1s).
	QmgrDaemonTimeout time.Duration
	// QmgrIPCTimeout is qmgr_ipc_timeout (60s, at least 1s); the queue
	// manager uses it in place of ipc_timeout.
	QmgrIPCTimeout time.Duration
	// DaemonTimeout is daemon_timeout (18000s, at least 1s).
	DaemonTimeout time.Duration
	// InFlowDelay is in_flow_delay (1s, at most 10s).
	InFlowDelay time.Duration
	// IPCIdle is ipc_idle (5s, at least 1s).
	IPCIdle time.Duration
	// IPCTTL is ipc_ttl (1000s, at least 1s).
	IPCTTL time.Duration

	// QmgrMessageActiveLimit is qmgr_message_active_limit (20000, at least 1).
	QmgrMessageActiveLimit int
	// QmgrMessageRecipientLimit is qmgr_message_recipient_limit (20000, at
	// least 1), raised to QmgrMessageActiveLimit when smaller.
	QmgrMessageRecipientLimit int
	// QmgrFudgeFactor is qmgr_fudge_factor (100, within 10..100).
	QmgrFudgeFactor int

	// InitialDestinationConcurrency is initial_destination_concurrency (5,
	// at least 1).
	InitialDestinationConcurrency int
	// DefaultDestinationConcurrencyLimit is
	// default_destination_concurrency_limit (20; 0 means no limit).
	DefaultDestinationConcurrencyLimit int
	// DefaultDestinationRecipientLimit is default_destination_recipient_limit
	// (50; 0 means no limit).
	DefaultDestinationRecipientLimit int
	// DefaultDestinationConcurrencyFailedCohortLimit is
	// default_destination_concurrency_failed_cohort_limit (1).
	DefaultDestinationConcurrencyFailedCohortLimit int
	// DefaultDestinationConcurrencyPositiveFeedback and
	// DefaultDestinationConcurrencyNegativeFeedback are the raw expanded
	// default_destination_concurrency_{positive,negative}_feedback values
	// (1); Transport parses them.
	DefaultDestinationConcurrencyPositiveFeedback string
	DefaultDestinationConcurrencyNegativeFeedback string
	// DestinationConcurrencyFeedbackDebug is
	// destination_concurrency_feedback_debug (no).
	DestinationConcurrencyFeedbackDebug bool

	// DeferTransports is defer_transports (empty).
	DeferTransports []string
	// DefaultFilterNexthop is default_filter_nexthop (empty).
	DefaultFilterNexthop string

	// DisableVERPBounces is disable_verp_bounces (no).
	DisableVERPBounces bool
	// ConfirmDelayCleared is confirm_delay_cleared (no).
	ConfirmDelayCleared bool
	// HelpfulWarnings is helpful_warnings (yes).
	HelpfulWarnings bool
	// SMTPUTF8Enable is smtputf8_enable (no below compatibility_level 1,
	// yes from level 1).
	SMTPUTF8Enable bool
	// OwnerRequestSpecial is owner_request_special (yes).
	OwnerRequestSpecial bool

	// AddressVerifyPendingRequestLimit is
	// address_verify_pending_request_limit (5000, at least 1).
	AddressVerifyPendingRequestLimit int

	// DoubleBounceSender is double_bounce_sender (double-bounce).
	DoubleBounceSender string
	// RecipientDelimiter is recipient_delimiter (empty).
	RecipientDelimiter string

	// HashQueueNames is hash_queue_names (deferred, defer).
	HashQueueNames []string
	// HashQueueDepth is hash_queue_depth (1, at least 1).
	HashQueueDepth int

	// DefaultProcessLimit is default_process_limit (100, at least 1).
	DefaultProcessLimit int

	// RewriteServiceName is rewrite_service_name (rewrite).
	RewriteServiceName string
	// BounceServiceName is bounce_service_name (bounce).
	BounceServiceName string
	// DeferServiceName is defer_service_name (defer).
	DeferServiceName string
	// TraceServiceName is trace_service_name (trace).
	TraceServiceName string
	// VerifyServiceName is address_verify_service_name (verify).
	VerifyServiceName string
	// FlushServiceName is flush_service_name (flush).
	FlushServiceName string
	// QueueServiceName is queue_service_name (qmgr).
	QueueServiceName string

	// InfoLogAddressFormat is info_log_address_format (external; the other
	// accepted value is internal).
	InfoLogAddressFormat string
	// DelayLoggingResolutionLimit is delay_logging_resolution_limit (2,
	// within 0..6).
	DelayLoggingResolutionLimit int
	// VERPDelimiterFilter is verp_delimiter_filter (-=+).
	VERPDelimiterFilter string

	warnings []string

	// transportMu guards transports.
	transportMu sync.Mutex
	transports  map[string]transportEntry
}

// Warnings returns the warnings Postfix logs while the queue manager reads
// this configuration, in the order it logs them: main.cf warnings (such as
// "overriding earlier entry"), then the adjustments of
// qmgr_message_recipient_limit and bounce_queue_lifetime, each in Postfix's
// words.
func (c *Config) Warnings() []string {
	return append([]string(nil), c.warnings...)
}
