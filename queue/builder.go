package queue

import (
	"fmt"
	"os"
	"time"
)

// AppendRecord appends one record (type, base-128 length, data) to buf, in
// the minimal length encoding every Postfix writer uses.
func AppendRecord(buf []byte, t RecordType, data []byte) []byte {
	buf = append(buf, byte(t))
	n := len(data)
	for {
		b := byte(n & 0x7f)
		n >>= 7
		if n == 0 {
			buf = append(buf, b)
			break
		}
		buf = append(buf, b|0x80)
	}
	return append(buf, data...)
}

// BuildRecipient is a recipient for a [Builder].
type BuildRecipient struct {
	Address     string
	OrigAddress string     // O record, omitted when ""
	DSNOrig     string     // A dsn_orig_rcpt, omitted when ""
	Notify      int        // A notify_flags, omitted when 0
	Type        RecordType // RecRcpt when 0; RecDone or RecDropRcpt for a finished one
}

// Builder writes a queue file in the layout cleanup(8) of Postfix 3.7
// writes, for tests, fuzzing and benchmarks. The zero value plus a sender,
// an arrival time and one recipient is a valid file.
type Builder struct {
	Arrival    time.Time // T record
	CreateTime time.Time // A create_time; Arrival when zero
	Sender     string
	FullName   string // F record, omitted when ""

	// EnvelopeAttrs are "name=value" attributes written before the sender,
	// ClientAttrs after it (where smtpd's log_client_* attributes go).
	EnvelopeAttrs []string
	ClientAttrs   []string
	VERP          string // V record after the sender, omitted when ""

	WarnTime   int64 // W record before the recipients, omitted when 0
	Recipients []BuildRecipient

	Content []string // message lines, one N record each

	Filter              string   // L record in the extracted segment, omitted when ""
	Redirect            string   // > record in the extracted segment, omitted when ""
	ExtractedAttrs      []string // attributes in the extracted segment
	ExtractedRecipients []BuildRecipient

	// AppendedRecipients are written after the end record and reached
	// through a pointer record that replaces a placeholder after the
	// envelope recipients, the way cleanup adds recipients for a milter.
	AppendedRecipients []BuildRecipient

	// Size field 4 is ReadFlagMixed when Mixed is set, ORed with the NOTIFY
	// bits of the envelope and appended recipients shifted left by one.
	// Extracted recipients do not count: cleanup 3.7 leaves out the NEVER
	// bit of the always_bcc recipient it adds there.
	Mixed         bool
	DataSize      int64 // size field 5; the content span when 0
	SMTPUTF8      int   // size field 6
	RcptCountBias int   // added to size field 3, to make it disagree with the file
}

// Bytes returns the queue file.
func (b *Builder) Bytes() []byte {
	var buf []byte
	buf = AppendRecord(buf, RecSize, []byte(sizeText(0, 0, 0, 0, 0, 0)))

	created := b.CreateTime
	if created.IsZero() {
		created = b.Arrival
	}
	buf = AppendRecord(buf, RecTime, fmt.Appendf(nil, "%d %d", b.Arrival.Unix(), b.Arrival.Nanosecond()/1000))
	buf = AppendRecord(buf, RecAttr, fmt.Appendf(nil, "create_time=%d", created.Unix()))
	for _, attr := range b.EnvelopeAttrs {
		buf = AppendRecord(buf, RecAttr, []byte(attr))
	}
	if b.FullName != "" {
		buf = AppendRecord(buf, RecFullName, []byte(b.FullName))
	}
	buf = AppendRecord(buf, RecFrom, []byte(b.Sender))
	for _, attr := range b.ClientAttrs {
		buf = AppendRecord(buf, RecAttr, []byte(attr))
	}
	if b.VERP != "" {
		buf = AppendRecord(buf, RecVERP, []byte(b.VERP))
	}
	if b.WarnTime != 0 {
		buf = AppendRecord(buf, RecWarn, fmt.Appendf(nil, "%*d", warnWidth, b.WarnTime))
	}
	notifyUnion := 0
	count := 0
	add := func(r BuildRecipient, extracted bool) {
		buf = appendRecipient(buf, r)
		if !extracted {
			notifyUnion |= r.Notify
		}
		if r.Type == 0 || r.Type == RecRcpt {
			count++
		}
	}
	for _, r := range b.Recipients {
		add(r, false)
	}
	placeholder := -1
	if len(b.AppendedRecipients) > 0 {
		placeholder = len(buf)
		buf = AppendRecord(buf, RecPointer, fmt.Appendf(nil, "%*d", warnWidth, 0))
	}
	buf = AppendRecord(buf, RecMessage, nil)

	contentOffset := len(buf)
	for _, line := range b.Content {
		buf = AppendRecord(buf, RecNorm, []byte(line))
	}
	contentSpan := len(buf) - contentOffset
	buf = AppendRecord(buf, RecExtract, nil)

	if b.Filter != "" {
		buf = AppendRecord(buf, RecFilter, []byte(b.Filter))
	}
	if b.Redirect != "" {
		buf = AppendRecord(buf, RecRedirect, []byte(b.Redirect))
	}
	for _, attr := range b.ExtractedAttrs {
		buf = AppendRecord(buf, RecAttr, []byte(attr))
	}
	for _, r := range b.ExtractedRecipients {
		add(r, true)
	}
	buf = AppendRecord(buf, RecEnd, nil)

	if placeholder >= 0 {
		heap := len(buf)
		for _, r := range b.AppendedRecipients {
			add(r, false)
		}
		resume := placeholder + 2 + warnWidth
		buf = AppendRecord(buf, RecPointer, fmt.Appendf(nil, "%*d", warnWidth, resume))
		copy(buf[placeholder:], AppendRecord(nil, RecPointer, fmt.Appendf(nil, "%*d", warnWidth, heap)))
	}

	flags := notifyUnion << 1
	if b.Mixed {
		flags |= ReadFlagMixed
	}
	dataSize := b.DataSize
	if dataSize == 0 {
		dataSize = int64(contentSpan)
	}
	size := sizeText(int64(contentSpan), int64(contentOffset), count+b.RcptCountBias, flags, dataSize, b.SMTPUTF8)
	copy(buf, AppendRecord(nil, RecSize, []byte(size)))
	return buf
}

// WriteFile writes the queue file to path with mode 0700, ready for a
// queue manager.
func (b *Builder) WriteFile(path string) error {
	if err := os.WriteFile(path, b.Bytes(), 0o700); err != nil {
		return err
	}
	// WriteFile applies the umask; queue files must be exactly 0700.
	return os.Chmod(path, 0o700)
}

func appendRecipient(buf []byte, r BuildRecipient) []byte {
	if r.Notify != 0 {
		buf = AppendRecord(buf, RecAttr, fmt.Appendf(nil, "notify_flags=%d", r.Notify))
	}
	if r.DSNOrig != "" {
		buf = AppendRecord(buf, RecAttr, []byte("dsn_orig_rcpt="+r.DSNOrig))
	}
	if r.OrigAddress != "" {
		buf = AppendRecord(buf, RecOrigRcpt, []byte(r.OrigAddress))
	}
	t := r.Type
	if t == 0 {
		t = RecRcpt
	}
	return AppendRecord(buf, t, []byte(r.Address))
}

// sizeText formats the size record as cleanup does: six numbers, each
// right-aligned in 15 characters.
func sizeText(span, offset int64, rcpts, flags int, dataSize int64, smtputf8 int) string {
	return fmt.Sprintf("%15d %15d %15d %15d %15d %15d", span, offset, rcpts, flags, dataSize, smtputf8)
}
