package attr

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
)

// Limits that protect the reader from a peer that never stops sending.
// Postfix's own scanner grows its buffers without bound; these values are
// our choice, far above anything a Postfix daemon sends to a queue manager.
const (
	// MaxValueSize is the maximum length in bytes of one attribute name or
	// value, not counting its NUL terminator.
	MaxValueSize = 1 << 20

	// MaxListAttrs is the maximum number of attributes in one list; a
	// table counts as one attribute.
	MaxListAttrs = 1024

	// MaxTableEntries is the maximum number of entries in one "{ }" table,
	// the same limit that Postfix applies (ATTR_HASH_LIMIT in attr.h).
	MaxTableEntries = 1024
)

// Names that bracket a hash table inside a list.
const (
	TableOpen  = "{"
	TableClose = "}"
)

// Attr is one decoded attribute. A hash table is an Attr whose Name is
// [TableOpen], whose Value is empty and whose Table holds the entries.
type Attr struct {
	Name  string
	Value string
	Table []Attr
}

var (
	// ErrProtocol matches every error caused by a peer that broke the
	// attribute protocol: an unexpected, missing or malformed attribute, a
	// bad table, or an over-long name or value. [Reader.ReadList],
	// [Reader.Scan] and the [Conn] methods that read return it.
	ErrProtocol = errors.New("attribute protocol violation")

	// ErrTooLong matches errors about a name or value longer than
	// [MaxValueSize] or a list or table with too many entries. Such an error
	// also matches [ErrProtocol].
	ErrTooLong = errors.New("attribute input too long")

	// ErrInvalid matches errors from [Builder.Bytes] about an attribute
	// that cannot be encoded.
	ErrInvalid = errors.New("attribute cannot be encoded")
)

// protocolError carries a Postfix-style message and matches ErrProtocol,
// and ErrTooLong when tooLong is set, without adding their text.
type protocolError struct {
	msg     string
	tooLong bool
}

func (e *protocolError) Error() string { return e.msg }

func (e *protocolError) Is(target error) bool {
	return target == ErrProtocol || (e.tooLong && target == ErrTooLong)
}

func protocolErrorf(format string, args ...any) error {
	return &protocolError{msg: fmt.Sprintf(format, args...)}
}

func tooLongErrorf(format string, args ...any) error {
	return &protocolError{msg: fmt.Sprintf(format, args...), tooLong: true}
}

// Reader decodes attribute lists from a stream. It buffers its input, so
// nothing else may read the stream while the Reader is in use.
type Reader struct {
	br    *bufio.Reader
	label string
}

// NewReader returns a Reader that names its input label in errors, for
// example "private/rewrite socket".
func NewReader(r io.Reader, label string) *Reader {
	return &Reader{br: bufio.NewReader(r), label: label}
}

// NewReaderSize is [NewReader] with a read buffer of size bytes, for a
// stream that carries only short lists. Longer names and values are still
// read whole, up to [MaxValueSize].
func NewReaderSize(r io.Reader, label string, size int) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, size), label: label}
}

// Label returns the name of the input used in error messages.
func (r *Reader) Label() string { return r.label }

// ReadList reads one list and returns its attributes in wire order. It
// returns an error matching io.EOF when the input ends before the first
// byte of the list, which is how a peer closes the connection cleanly.
func (r *Reader) ReadList() ([]Attr, error) {
	if err := r.start(); err != nil {
		return nil, err
	}

	var list []Attr
	for {
		name, err := r.readString("input attribute name")
		if err != nil {
			return nil, err
		}
		if name == "" {
			return list, nil
		}
		if len(list) >= MaxListAttrs {
			return nil, tooLongErrorf("attribute count exceeds limit %d in input from %s",
				MaxListAttrs, r.label)
		}

		switch name {
		case TableOpen:
			table, err := r.readTable()
			if err != nil {
				return nil, err
			}
			list = append(list, Attr{Name: TableOpen, Table: table})
		case TableClose:
			return nil, protocolErrorf("unexpected '%s' without '%s' in input from %s",
				TableClose, TableOpen, r.label)
		default:
			value, err := r.readString("input attribute value")
			if err != nil {
				return nil, err
			}
			list = append(list, Attr{Name: name, Value: value})
		}
	}
}

// readTable reads the entries after a TableOpen name up to the TableClose.
func (r *Reader) readTable() ([]Attr, error) {
	table := []Attr{}
	for {
		name, err := r.readString("input attribute name")
		if err != nil {
			return nil, err
		}
		switch name {
		case TableClose:
			return table, nil
		case "":
			return nil, protocolErrorf("missing '%s' at end of table in input from %s",
				TableClose, r.label)
		case TableOpen:
			return nil, protocolErrorf("nested '%s' in input from %s", TableOpen, r.label)
		}
		if len(table) >= MaxTableEntries {
			return nil, tooLongErrorf("attribute count exceeds limit %d in input from %s",
				MaxTableEntries, r.label)
		}
		value, err := r.readString("input attribute value")
		if err != nil {
			return nil, err
		}
		table = append(table, Attr{Name: name, Value: value})
	}
}

// start checks for a clean end of input before a list begins.
func (r *Reader) start() error {
	_, err := r.br.Peek(1)
	if err == nil {
		return nil
	}
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("end of input from %s: %w", r.label, io.EOF)
	}
	return r.readError(err, "input attribute name")
}

// readString reads one NUL-terminated name or value of at most
// MaxValueSize bytes. What describes the item for error messages.
func (r *Reader) readString(what string) (string, error) {
	var acc []byte
	for {
		chunk, err := r.br.ReadSlice(0)
		size := len(acc) + len(chunk)
		if err == nil {
			size-- // the NUL terminator
		}
		if size > MaxValueSize {
			return "", tooLongErrorf("%s from %s exceeds %d bytes", what, r.label, MaxValueSize)
		}
		if err == nil {
			if acc == nil {
				return string(chunk[:len(chunk)-1]), nil
			}
			acc = append(acc, chunk...)
			return string(acc[:len(acc)-1]), nil
		}
		acc = append(acc, chunk...)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if len(acc) > 0 && errors.Is(err, io.EOF) {
			// Part of a string arrived before the end of input.
			return "", fmt.Errorf("unexpected end-of-input from %s while reading %s: %w",
				r.label, what, io.ErrUnexpectedEOF)
		}
		return "", r.readError(err, what)
	}
}

// readError describes a failed read in the words Postfix uses for it.
func (r *Reader) readError(err error, what string) error {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("timeout on %s while reading %s: %w", r.label, what, err)
	case errors.Is(err, io.EOF):
		return fmt.Errorf("premature end-of-input on %s while reading %s: %w",
			r.label, what, io.ErrUnexpectedEOF)
	default:
		return fmt.Errorf("read %s while reading %s: %w", r.label, what, err)
	}
}

// printable shortens a peer-supplied string for an error message and
// replaces control characters, as Postfix does before logging such text.
func printable(s string) string {
	const maxLen = 100
	if len(s) > maxLen {
		s = s[:maxLen]
	}
	// Work on bytes: strings.Map would turn invalid UTF-8 into U+FFFD,
	// while the log writer replaces such bytes with '?' as Postfix does.
	b := []byte(s)
	for i, c := range b {
		if c < ' ' || c == 0x7f {
			b[i] = '?'
		}
	}
	return string(b)
}
