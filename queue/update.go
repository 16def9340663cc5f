package queue

import (
	"fmt"
	"os"
)

// In-place updates. Like the C queue manager and delivery agents, these
// write without fsync: a recipient is marked done only after its result
// was recorded elsewhere, so a lost write can only repeat a delivery.

// warnWidth is the fixed width of a W record's value ("%15ld"), which
// keeps the record the same size when it is rewritten.
const warnWidth = 15

// MarkDone marks the recipient whose R record starts at offset as done by
// overwriting the record type with D.
func MarkDone(f *os.File, offset int64) error {
	return overwriteType(f, offset, RecDone)
}

// HideRecord overwrites the type byte of the record at offset with K, so
// that readers skip it. The queue manager hides a trace_flags attribute
// once the trace report it asked for has been sent.
func HideRecord(f *os.File, offset int64) error {
	return overwriteType(f, offset, RecKill)
}

// SetWarnTime rewrites the whole W record at offset with the value t, the
// Unix time of the next delay warning; -1 records that the warning was
// sent (qmgr_message_update_warn).
func SetWarnTime(f *os.File, offset int64, t int64) error {
	value := fmt.Sprintf("%*d", warnWidth, t)
	if len(value) != warnWidth {
		return fmt.Errorf("update %s: warning time %d does not fit %d characters", f.Name(), t, warnWidth)
	}
	record := append([]byte{byte(RecWarn), warnWidth}, value...)
	if _, err := f.WriteAt(record, offset); err != nil {
		return fmt.Errorf("update %s: write warning time at offset %d: %w", f.Name(), offset, err)
	}
	return nil
}

func overwriteType(f *os.File, offset int64, t RecordType) error {
	if _, err := f.WriteAt([]byte{byte(t)}, offset); err != nil {
		return fmt.Errorf("update %s: write record type %c at offset %d: %w", f.Name(), t, offset, err)
	}
	return nil
}
