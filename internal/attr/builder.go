package attr

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
)

// Builder encodes attribute lists into a byte slice. Several lists may be
// built back to back: each call to [Builder.End] terminates the current one.
//
// A name or string value that contains a NUL byte cannot be encoded. The
// first such mistake is kept and returned by [Builder.Bytes], so callers can
// add attributes without checking each call.
type Builder struct {
	buf []byte
	err error
}

// Str adds a string attribute.
func (b *Builder) Str(name, value string) {
	b.pair(name, value)
}

// Int adds an int attribute. Postfix's int is 32 bits wide and is sent as
// its unsigned form, so -1 becomes 4294967295.
func (b *Builder) Int(name string, value int) {
	b.pair(name, strconv.FormatUint(uint64(uint32(value)), 10))
}

// Long adds a long attribute, sent as the unsigned form of a 64-bit value.
func (b *Builder) Long(name string, value int64) {
	b.pair(name, strconv.FormatUint(uint64(value), 10))
}

// Data adds a binary attribute, sent as standard base64 with padding.
func (b *Builder) Data(name string, value []byte) {
	b.pair(name, base64.StdEncoding.EncodeToString(value))
}

// Table adds a hash table bracketed by "{" and "}". Postfix peers read such
// a table into a hash, so the entry names should be unique.
func (b *Builder) Table(entries []Attr) {
	b.buf = append(b.buf, TableOpen...)
	b.buf = append(b.buf, 0)
	for _, e := range entries {
		b.pair(e.Name, e.Value)
	}
	b.buf = append(b.buf, TableClose...)
	b.buf = append(b.buf, 0)
}

// End terminates the current list.
func (b *Builder) End() {
	b.buf = append(b.buf, 0)
}

// Bytes returns the encoded lists, or the first encoding error.
func (b *Builder) Bytes() ([]byte, error) {
	if b.err != nil {
		return nil, b.err
	}
	return b.buf, nil
}

// Reset discards the content and any error, keeping the allocated buffer.
func (b *Builder) Reset() {
	b.buf = b.buf[:0]
	b.err = nil
}

func (b *Builder) pair(name, value string) {
	if b.err == nil {
		b.err = checkPair(name, value)
	}
	b.buf = append(b.buf, name...)
	b.buf = append(b.buf, 0)
	b.buf = append(b.buf, value...)
	b.buf = append(b.buf, 0)
}

// checkPair rejects what would change the meaning of the byte stream: a NUL
// inside a name or value, an empty name (that is the list terminator) and
// the table brackets used as names.
func checkPair(name, value string) error {
	switch {
	case name == "":
		return fmt.Errorf("encode attribute: empty name: %w", ErrInvalid)
	case name == TableOpen || name == TableClose:
		return fmt.Errorf("encode attribute: reserved name %q: %w", name, ErrInvalid)
	case strings.IndexByte(name, 0) >= 0:
		return fmt.Errorf("encode attribute %q: NUL byte in name: %w", name, ErrInvalid)
	case strings.IndexByte(value, 0) >= 0:
		return fmt.Errorf("encode attribute %s: NUL byte in value: %w", name, ErrInvalid)
	}
	return nil
}
