package attr

import (
	"encoding/base64"
	"strconv"
)

// terminatorName is the expected item named in Postfix's error message for
// an extra attribute after the last requested one.
const terminatorName = "(list terminator)"

type fieldKind int

const (
	kindStr fieldKind = iota
	kindInt
	kindLong
	kindData
	kindExpect
)

// Field describes one attribute that [Reader.Scan] requires, and where to
// store its value. Build one with [Str], [Int], [Long], [Data] or [Expect].
type Field struct {
	name string
	kind fieldKind
	str  *string
	num  *int
	long *int64
	data *[]byte
	want string
}

// Str requires a string attribute and stores it in p.
func Str(name string, p *string) Field { return Field{name: name, kind: kindStr, str: p} }

// Int requires an int attribute: the decimal form of an unsigned 32-bit
// number, stored in p as the signed value it encodes (4294967295 is -1).
func Int(name string, p *int) Field { return Field{name: name, kind: kindInt, num: p} }

// Long requires a long attribute: the decimal form of an unsigned 64-bit
// number, stored in p as the signed value it encodes.
func Long(name string, p *int64) Field { return Field{name: name, kind: kindLong, long: p} }

// Data requires a base64-encoded attribute and stores the decoded bytes in p.
func Data(name string, p *[]byte) Field { return Field{name: name, kind: kindData, data: p} }

// Expect requires an attribute with exactly the value want, as Postfix's
// protocol announcement check does.
func Expect(name, want string) Field { return Field{name: name, kind: kindExpect, want: want} }

// Scan reads one list that must hold exactly the given attributes, in that
// order, and nothing else. This is Postfix's strict scanning: an extra,
// duplicate or out-of-order name is an "unexpected attribute" error, and a
// list that ends early is a "missing attribute" error. Values are stored as
// they are converted, so after an error some targets may hold new values.
//
// Scan returns an error matching io.EOF when the input ends before the list
// starts, and an error matching [ErrProtocol] when the peer broke the
// protocol. After any error the stream position is undefined.
func (r *Reader) Scan(fields ...Field) error {
	if err := r.start(); err != nil {
		return err
	}

	for _, f := range fields {
		name, err := r.readString("input attribute name")
		if err != nil {
			return err
		}
		if name == "" {
			return protocolErrorf("missing attribute %s in input from %s", f.name, r.label)
		}
		if name != f.name {
			return protocolErrorf("unexpected attribute %s from %s (expecting: %s)",
				printable(name), r.label, f.name)
		}
		value, err := r.readString("input attribute value")
		if err != nil {
			return err
		}
		if err := r.convert(f, value); err != nil {
			return err
		}
	}

	name, err := r.readString("input attribute name")
	if err != nil {
		return err
	}
	if name != "" {
		return protocolErrorf("unexpected attribute %s from %s (expecting: %s)",
			printable(name), r.label, terminatorName)
	}
	return nil
}

// convert checks value against the type of f and stores it in f's target.
func (r *Reader) convert(f Field, value string) error {
	switch f.kind {
	case kindStr:
		*f.str = value
	case kindInt:
		n, ok := parseUnsigned(value, 32)
		if !ok {
			return r.malformed("numerical", value)
		}
		*f.num = int(int32(uint32(n)))
	case kindLong:
		n, ok := parseUnsigned(value, 64)
		if !ok {
			return r.malformed("numerical", value)
		}
		*f.long = int64(n)
	case kindData:
		b, err := base64.StdEncoding.Strict().DecodeString(value)
		if err != nil {
			return r.malformed("base64", value)
		}
		*f.data = b
	case kindExpect:
		if value != f.want {
			return protocolErrorf("unexpected %s %s from %s (expected: %s)",
				f.name, printable(value), r.label, f.want)
		}
	}
	return nil
}

func (r *Reader) malformed(kind, value string) error {
	return protocolErrorf("malformed %s data from %s while reading input attribute value: %s",
		kind, r.label, printable(value))
}

// parseUnsigned accepts only decimal digits, which is what every Postfix
// sender writes. Postfix's own reader goes through sscanf and would also
// take a sign or leading blanks; nothing in these protocols relies on that.
func parseUnsigned(s string, bits int) (uint64, bool) {
	if s == "" || s[0] == '+' || s[0] == '-' {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, bits)
	return n, err == nil
}
