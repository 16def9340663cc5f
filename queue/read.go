package queue

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// The envelope walk below follows qmgr_message_read in
// src/oqmgr/qmgr_message.c of Postfix 3.7.

// reverseJumpLimit is how many backward pointer jumps one read may make
// before the file counts as looping (REVERSE_JUMP_LIMIT in record.c).
const reverseJumpLimit = 10000

// Read parses a queue file from offset 0 the way the queue manager first
// reads it: it follows pointer records, skips the message content using the
// size record and reads the extracted segment up to the end record. It
// loads at most rcptLimit recipients (0 loads all); when the limit cuts the
// list short, [ReadMore] continues at [Message.NextRecipientOffset].
//
// path names the file in warnings. The C queue manager runs inside the
// queue directory, so pass [Dir.RelPath] for identical warning texts.
//
// A file the queue manager would reject yields a *FileError. The Message
// is returned even then, holding what was read before the failure: when
// HasSender is set, the C queue manager has already logged the message as
// active. Other errors are I/O errors reading the file.
func Read(f *os.File, id ID, path string, rcptLimit int) (*Message, error) {
	m := &Message{ID: id, Path: path, ReadFlags: ReadFlagMixed}
	w := newWalker(f, m, rcptLimit)
	err := w.walk()
	w.r.release()

	// Defaults that spare callers a "not set" check (qmgr_message_read).
	if m.RewriteContext == "" && !w.seen.rewriteContext {
		m.RewriteContext = "local"
	}
	if w.createTime == 0 {
		w.createTime = w.arrivalSec
	}
	m.CreateTime = time.Unix(w.createTime, 0)
	m.seenAllNonRcpt = w.seenAllNonRcpt
	m.arrivalSec = w.arrivalSec
	return m, err
}

// ReadMore loads the next batch of recipients of a message that [Read]
// returned with a non-zero NextRecipientOffset, replacing m.Recipients and
// m.Warnings. f may be a new handle on the same file. Envelope fields are
// left alone: like qmgr_message_realloc, it only collects recipients.
func ReadMore(f *os.File, m *Message, rcptLimit int) error {
	if m.NextRecipientOffset <= 0 {
		return fmt.Errorf("queue %s: read %s: no recipients left to read", m.ID, m.Path)
	}
	m.Recipients = nil
	m.Warnings = nil
	w := newWalker(f, m, rcptLimit)
	w.seenAllNonRcpt = m.seenAllNonRcpt
	w.arrivalSec = m.arrivalSec
	w.contentOffset = m.ContentOffset
	w.contentLength = m.ContentLength
	w.r.pos = m.NextRecipientOffset
	m.NextRecipientOffset = 0
	err := w.walk()
	w.r.release()
	return err
}

// walker holds the state of one pass over a queue file.
type walker struct {
	r         recordReader
	m         *Message
	rcptLimit int

	contentOffset  int64 // size field 2 once known, else 0
	contentLength  int64 // size field 1
	seenAllNonRcpt bool  // every non-recipient record has been examined

	// Records that belong to the next recipient.
	origRcpt, dsnOrcpt  string
	haveOrig, haveOrcpt bool
	notify              int

	arrivalSec int64
	createTime int64
	seen       seenAttrs
	lines      []string // rejection warnings for the FileError
}

// seenAttrs records which first-wins attributes have appeared.
type seenAttrs struct {
	sasl           [3]bool
	logIdent       bool
	rewriteContext bool
	logClientAttr  bool
	legacyClient   [5]bool
	verp           bool
}

func newWalker(f *os.File, m *Message, rcptLimit int) *walker {
	return &walker{
		r:             recordReader{f: f, path: m.Path},
		m:             m,
		rcptLimit:     rcptLimit,
		contentOffset: m.ContentOffset,
		contentLength: m.ContentLength,
	}
}

func (w *walker) warn(format string, args ...any) {
	w.m.Warnings = append(w.m.Warnings, fmt.Sprintf(format, args...))
}

func (w *walker) fail(offset int64, lines ...string) *FileError {
	w.lines = append(w.lines, lines...)
	reasons := make([]string, len(w.lines))
	for i, line := range w.lines {
		reasons[i] = strings.TrimPrefix(strings.TrimPrefix(line, string(w.m.ID)+": "), w.m.Path+": ")
	}
	return &FileError{
		QueueID: w.m.ID,
		Path:    w.m.Path,
		Offset:  offset,
		Err:     errors.New(strings.Join(reasons, "; ")),
		Lines:   w.lines,
	}
}

// walk reads records until the end record, the recipient limit or an
// error, then applies the final checks of qmgr_message_read.
func (w *walker) walk() error {
	end, err := w.loop()
	if err != nil {
		return err
	}
	w.warnOrphans()

	m := w.m
	switch {
	case w.arrivalSec == 0:
		return w.fail(end, fmt.Sprintf("%s: message rejected: missing arrival time record", m.ID))
	case !m.HasSender:
		return w.fail(end, fmt.Sprintf("%s: message rejected: missing sender record", m.ID))
	case w.contentOffset == 0:
		return w.fail(end, fmt.Sprintf("%s: message rejected: missing size record", m.ID))
	}
	return nil
}

// warnOrphans reports original-recipient records that no R record
// followed.
func (w *walker) warnOrphans() {
	if w.haveOrcpt {
		w.warn("%s: ignoring out-of-order DSN original recipient <%s>", w.m.ID, truncate(w.dsnOrcpt, 200))
	}
	if w.haveOrig {
		w.warn("%s: ignoring out-of-order original recipient <%s>", w.m.ID, truncate(w.origRcpt, 200))
	}
}

// loop is the record loop. It returns the offset where it stopped, or the
// error that rejects the file.
func (w *walker) loop() (int64, error) {
	m := w.m
	for {
		// At the content start, skip the content and expect the X record.
		expected := envelopeAndExtractTypes
		offset := w.r.pos
		if offset == w.contentOffset && offset > 0 {
			w.r.pos += w.contentLength
			offset = w.r.pos
			expected = contentEndTypes
		}

		t, data, status, framing, err := w.r.readRecord()
		if err != nil {
			return offset, fmt.Errorf("queue %s: read %s at offset %d: %w", m.ID, m.Path, offset, err)
		}
		if status == recordOK && t == RecPointer {
			if ferr := w.jump(offset, cString(data)); ferr != nil {
				return offset, ferr
			}
			continue
		}
		if status != recordOK || t == 0 {
			lines := []string{}
			if framing != "" {
				lines = append(lines, framing)
			}
			lines = append(lines, fmt.Sprintf("%s: message rejected: missing end record", m.ID))
			return offset, w.fail(offset, lines...)
		}
		if !strings.ContainsRune(expected, rune(t)) {
			return offset, w.fail(offset, fmt.Sprintf("Unexpected record type '%s' at offset %d", string([]byte{byte(t)}), offset))
		}
		if t == RecEnd {
			w.seenAllNonRcpt = true
			return offset, nil
		}

		stop, ferr := w.record(t, cString(data), offset)
		if ferr != nil {
			return offset, ferr
		}
		if stop {
			return offset, nil
		}
	}
}

// jump follows a pointer record (rec_goto).
func (w *walker) jump(offset int64, value string) *FileError {
	target, ok := offsetFromPointer(value)
	if !ok {
		trimmed := strings.TrimLeft(value, " \t\n\v\f\r")
		return w.fail(offset,
			fmt.Sprintf("%s: malformed pointer record value: %s", w.m.Path, trimmed))
	}
	if target == 0 {
		return nil // placeholder
	}
	if target <= w.m.lastJump {
		w.m.reverseJumps++
		if w.m.reverseJumps > reverseJumpLimit {
			return w.fail(offset, fmt.Sprintf("%s: too many reverse jump records", w.m.Path))
		}
	}
	w.m.lastJump = target
	w.r.pos = target
	return nil
}
