// Package maillog owns every log line the queue manager writes for
// operators: the transport (syslog or the postlog socket, plus standard
// error with -V), the record format, severities, and one function per
// Postfix message whose exact text log tools such as pflogsumm parse.
//
// Other packages must not write to syslog or to the maillog file. They
// call a Logger method instead, so every operator line has one producer.
//
// The formats follow Postfix 3.7: src/util/msg_syslog.c and msg_logger.c
// for records, src/global/maillog_client.c for the choice of transport,
// src/global/log_adhoc.c and src/util/format_tv.c for per-recipient lines,
// and src/global/quote_822_local.c for address quoting.
package maillog
