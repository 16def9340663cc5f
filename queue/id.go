package queue

import (
	"errors"
	"fmt"
	"strings"
)

// ID is a queue id: the file name of a message in every queue directory.
// Postfix writes two forms. A short id is the microsecond part of the
// creation time as exactly five upper-case hex digits followed by the inode
// number in hex (3B2A41C0D7F). A long id (enable_long_queue_ids = yes) is
// the seconds in base 52 (at least six characters), the microseconds in
// base 52 (exactly four), the separator 'z' and the inode number in base 51
// (4jh4Jt4J3cz1SCKb). Both forms are accepted regardless of configuration.
type ID string

// maxIDLength is VALID_HOSTNAME_LEN, the limit mail_queue_id_ok applies.
const maxIDLength = 255

// ErrInvalidID is returned by [ParseID] for a name that is not a valid
// queue file name.
var ErrInvalidID = errors.New("invalid queue id")

// ParseID validates s as a queue file name the way mail_queue_id_ok does:
// non-empty, at most 255 bytes, only ASCII letters, digits and '_'.
func ParseID(s string) (ID, error) {
	if !validID(s) {
		return "", fmt.Errorf("%w: %q", ErrInvalidID, s)
	}
	return ID(s), nil
}

func validID(s string) bool {
	if s == "" || len(s) > maxIDLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		isAlnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !isAlnum && c != '_' {
			return false
		}
	}
	return true
}

// Long queue id layout (mail_queue.h): at least 6 characters of seconds and
// exactly 4 of microseconds come before the 'z' separator.
const (
	longIDSeparator = 'z'
	longIDTimeWidth = 10
	longIDUsecWidth = 4
)

// safeAlphabet is the digit alphabet of safe_ultostr: no vowels, so that a
// long queue id never spells a word. Base 51 uses the first 51 symbols, so
// 'z' cannot appear in the inode part.
const safeAlphabet = "0123456789BCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz"

// IsLong reports whether id has the long form: its last 'z' sits at index
// 10 or later.
func (id ID) IsLong() bool {
	_, ok := id.longSeparator()
	return ok
}

func (id ID) longSeparator() (int, bool) {
	i := strings.LastIndexByte(string(id), longIDSeparator)
	return i, i >= longIDTimeWidth
}

// hashKey returns the string whose leading characters name the hash
// subdirectories of id. A short id is its own key. A long id uses its
// microsecond field re-encoded as "%05X" (MQID_LG_GET_HEX_USEC), so short
// and long ids spread over the same sixteen directories. A field that does
// not decode counts as 0.
func (id ID) hashKey() string {
	sep, ok := id.longSeparator()
	if !ok {
		return string(id)
	}
	usec, ok := decodeSafe(string(id[sep-longIDUsecWidth:sep]), 52)
	if !ok {
		usec = 0
	}
	return fmt.Sprintf("%05X", uint32(usec))
}

// decodeSafe decodes s in the given base of safeAlphabet, the way
// safe_strtoul does for queue ids: leading white space is skipped and every
// remaining character must be a digit of the base.
func decodeSafe(s string, base int) (uint64, bool) {
	s = strings.TrimLeft(s, " \t\n\v\f\r")
	if s == "" {
		return 0, false
	}
	var sum uint64
	for i := 0; i < len(s); i++ {
		digit := strings.IndexByte(safeAlphabet[:base], s[i])
		if digit < 0 {
			return 0, false
		}
		next := sum*uint64(base) + uint64(digit)
		if next/uint64(base) != sum {
			return 0, false
		}
		sum = next
	}
	return sum, true
}
