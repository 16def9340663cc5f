package queue

import (
	"bytes"
	"math"
)

// The queue manager parses numbers in queue file records with atol, atoi
// and sscanf. These helpers reproduce what glibc does with the odd inputs
// that a damaged file can hold, so that we accept and reject the same
// files.

// cString returns data up to its first NUL byte, because the C code
// treats record data as a NUL-terminated string.
func cString(data []byte) string {
	if i := bytes.IndexByte(data, 0); i >= 0 {
		data = data[:i]
	}
	return string(data)
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// scanLong parses an optionally signed decimal number after leading white
// space, as strtol(s, &end, 10) does, saturating on overflow. It returns
// the value, the rest of s and whether any digit was found.
func scanLong(s string) (int64, string, bool) {
	i := 0
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	negative := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		negative = s[i] == '-'
		i++
	}
	start := i
	var value int64
	overflow := false
	for i < len(s) && isDigit(s[i]) {
		digit := int64(s[i] - '0')
		if value > (math.MaxInt64-digit)/10 {
			overflow = true
		} else {
			value = value*10 + digit
		}
		i++
	}
	if i == start {
		return 0, s, false
	}
	switch {
	case overflow && negative:
		value = math.MinInt64
	case overflow:
		value = math.MaxInt64
	case negative:
		value = -value
	}
	return value, s[i:], true
}

// atol mirrors C atol: 0 when s holds no number.
func atol(s string) int64 {
	v, _, _ := scanLong(s)
	return v
}

// atoi mirrors glibc atoi, which truncates the long result to an int.
func atoi(s string) int {
	return int(int32(atol(s)))
}

// alldig mirrors Postfix alldig: non-empty and only decimal digits.
func alldig(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// sizeFields holds the six numbers of a size record.
type sizeFields struct {
	contentSpan   int64 // %ld
	contentOffset int64 // %ld
	rcptCount     int   // %d
	readFlags     int   // %d
	contentLength int64 // %ld
	smtputf8      int   // %d
}

// scanSize parses a size record as sscanf("%ld %ld %d %d %ld %d") does and
// returns the number of conversions. Fields beyond that count keep the
// values that f already holds. Like sscanf it returns -1 when the input
// ends before the first conversion.
func scanSize(s string, f *sizeFields) int {
	count := 0
	for field := 0; field < 6; field++ {
		rest := s
		for len(rest) > 0 && isSpace(rest[0]) {
			rest = rest[1:]
		}
		if rest == "" && count == 0 {
			return -1
		}
		value, tail, ok := scanLong(rest)
		if !ok {
			return count
		}
		s = tail
		count++
		switch field {
		case 0:
			f.contentSpan = value
		case 1:
			f.contentOffset = value
		case 2:
			f.rcptCount = int(int32(value))
		case 3:
			f.readFlags = int(int32(value))
		case 4:
			f.contentLength = value
		case 5:
			f.smtputf8 = int(int32(value))
		}
	}
	return count
}

// offsetFromPointer parses a pointer record value as rec_goto does: leading
// white space, then only decimal digits up to the end; no digits means 0.
// It returns false for anything else, including an offset that overflows.
func offsetFromPointer(s string) (int64, bool) {
	for len(s) > 0 && isSpace(s[0]) {
		s = s[1:]
	}
	var value int64
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return 0, false
		}
		digit := int64(s[i] - '0')
		if value > (math.MaxInt64-digit)/10 {
			return 0, false
		}
		value = value*10 + digit
	}
	return value, true
}

// splitAttr splits a named attribute record as split_nameval does. On
// failure it returns the reason Postfix logs.
func splitAttr(s string) (name, value, problem string) {
	i := 0
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	if i == len(s) || s[i] == '=' {
		return "", "", "missing attribute name"
	}
	nameStart := i
	for i < len(s) && !isSpace(s[i]) && s[i] != '=' {
		i++
	}
	nameEnd := i
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	if i == len(s) || s[i] != '=' {
		return "", "", "missing '=' after attribute name"
	}
	value = s[i+1:]
	j := 0
	for j < len(value) && isSpace(value[j]) {
		j++
	}
	value = value[j:]
	k := len(value)
	for k > 0 && isSpace(value[k-1]) {
		k--
	}
	return s[nameStart:nameEnd], value[:k], ""
}
