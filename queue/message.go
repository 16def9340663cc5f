package queue

import "time"

// Recipient is one recipient record still to be delivered, with the
// records that preceded it and belong to it.
type Recipient struct {
	Address     string // R record
	OrigAddress string // O record: the address before alias or virtual expansion
	DSNOrig     string // DSN ORCPT (A dsn_orig_rcpt or o), "" if none
	Notify      int    // DSN NOTIFY bits (NotifyNever etc.), 0 if none
	Offset      int64  // file offset of the R record's type byte; MarkDone takes it
}

// DSN NOTIFY bits (dsn_mask.h). A valid value is NotifyNever alone or any
// non-empty combination of the other three.
const (
	NotifyNever   = 1
	NotifySuccess = 2
	NotifyFailure = 4
	NotifyDelay   = 8
)

// DSN RET values (dsn_mask.h).
const (
	RetFull = 1
	RetHdrs = 2
)

// Trace flags kept from the trace_flags attribute (deliver_request.h).
const (
	TraceMTAVerify  = 1 << 8  // address probe requested by the MTA
	TraceUserVerify = 1 << 9  // address probe requested by a user (sendmail -bv)
	TraceRecord     = 1 << 10 // record and deliver (sendmail -v)
	TraceDelaySent  = 1 << 13 // record delayed delivery
	traceFlagsMask  = TraceMTAVerify | TraceUserVerify | TraceRecord | TraceDelaySent
)

// Bits of size field 4 (qmgr_user.h).
const (
	ReadFlagMixed    = 1    // recipient records are mixed with other records in the extracted segment
	readFlagUserMask = 0x1f // ReadFlagMixed and the NOTIFY bits shifted left by one
)

// Message is the envelope of a queue file as the queue manager reads it.
// Unless noted, a field is the value of the first record of its kind.
type Message struct {
	ID   ID
	Path string

	Arrival    time.Time // T record, seconds and microseconds
	CreateTime time.Time // create_time attribute, else the T seconds

	Sender string // S record; "" is the null sender
	// HasSender reports whether an S record was read. The C queue manager
	// logs the "(queue active)" line on reading it, with the size and
	// nrcpt known at that point. Because cleanup writes the size record
	// first, those are DataSize and RcptCount.
	HasSender bool

	ContentOffset int64 // size field 2: offset of the first content record
	ContentLength int64 // size field 1: bytes from ContentOffset to the X record
	DataSize      int64 // size field 5, or field 1 when 0: the size= logged and sent to agents
	RcptCount     int   // size field 3, logged as nrcpt=
	ReadFlags     int   // size field 4; 1 (mixed) when the record has fewer than 4 numbers
	SMTPUTF8      int   // size field 6

	Encoding   string // last encoding attribute; "" when absent
	EnvelopeID string // last DSN ENVID
	RetFlags   int    // last valid DSN RET (RetFull or RetHdrs), 0 if none

	Filter   string // last content filter ("transport:nexthop"), "" if none
	Redirect string // last redirect address, "" if none
	Inspect  bool   // an I record is present

	VERP       string // VERP delimiters; "" unless a valid V record follows a non-null sender
	WarnTime   int64  // W record: Unix time of the next delay warning, -1 once sent, 0 if none
	WarnOffset int64  // file offset of the W record, 0 if none

	// TraceFlags is trace_flags masked to the Trace* bits. The C queue
	// manager also sets TraceDelaySent when confirm_delay_cleared is yes and
	// WarnTime is -1; that depends on configuration and is left to callers.
	TraceFlags       int
	TraceFlagsOffset int64 // offset of the trace_flags record when TraceFlags is exactly TraceRecord, else 0

	LogClientName, LogClientAddress, LogClientPort string // log_client_* (or pre-2.3 client_*) attributes
	LogProtocolName, LogHeloName                   string
	SASLMethod, SASLUsername, SASLSender           string
	LogIdent                                       string // upstream queue id after a content filter
	RewriteContext                                 string // "local" when absent

	Recipients []Recipient // recipients of the current batch

	// NextRecipientOffset is the file offset at which ReadMore continues
	// reading recipients, or 0 when the recipient limit did not cut the
	// batch short.
	NextRecipientOffset int64

	// Warnings are the non-fatal warnings the C oqmgr of Postfix 3.7 logs
	// while reading this file (ignored duplicate or out-of-order records),
	// in order, each exactly as it follows "warning: " in the mail log.
	Warnings []string

	// State that ReadMore needs from the first read.
	arrivalSec     int64
	seenAllNonRcpt bool

	// Pointer jumps made so far. Like the C record reader, which keeps the
	// count while it reads the same file, the count carries over from Read
	// to ReadMore, so a pointer loop cannot yield recipients forever.
	reverseJumps int
	lastJump     int64
}
