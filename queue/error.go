package queue

import (
	"fmt"
	"strings"
)

// FileError is a queue file that the queue manager must reject: bad record
// framing, an unexpected record type, a malformed attribute, size or
// pointer record, or a missing size, time, sender or end record. The C
// queue manager moves such a file to the corrupt queue.
type FileError struct {
	QueueID ID
	Path    string // as passed to Read
	Offset  int64  // file offset of the offending record, or where reading stopped
	Err     error  // the reason, worded as Postfix words it

	// Lines are the warnings the C oqmgr of Postfix 3.7 logs for this
	// failure, in order, each exactly as it follows "warning: " in the
	// mail log. Postfix words them differently: record-layer lines start
	// with the file path ("active/ID: unexpected EOF in data, ..."), most
	// lines start with the queue id ("ID: message rejected: missing end
	// record"), and "Unexpected record type 'Z' at offset 512" has no
	// prefix at all. Each line carries the prefix that Postfix logs.
	Lines []string
}

func (e *FileError) Error() string {
	return fmt.Sprintf("queue %s: read %s: offset %d: %v", e.QueueID, e.Path, e.Offset, e.Err)
}

func (e *FileError) Unwrap() error { return e.Err }

// LogText returns [FileError.Lines] joined by newlines: the exact Postfix
// warning texts, each with its id or path prefix where Postfix has one
// and without the "warning: " severity prefix.
func (e *FileError) LogText() string {
	return strings.Join(e.Lines, "\n")
}

// truncate mirrors a C "%.Ns" conversion.
func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
