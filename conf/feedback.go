package conf

// Concurrency feedback values, parsed as Postfix 3.7 qmgr_feedback_init in
// src/oqmgr/qmgr_feedback.c parses them with sscanf("%lf %1[/] %30s%c").

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Feedback is a parsed concurrency feedback value: a constant such as "1"
// or "0.5", a ratio such as "1/8", or a constant divided by the current
// concurrency window, written "1/concurrency".
type Feedback struct {
	base      float64
	perWindow bool
}

// ConstantFeedback returns feedback that does not depend on the window.
func ConstantFeedback(value float64) Feedback {
	return Feedback{base: value}
}

// ParseFeedback parses a feedback value. A result outside [0, 1] is an
// error, and for it Postfix warns and uses 1. As in Postfix, text after a
// leading number that does not start with '/' is ignored, so "0.5 extra"
// means 0.5.
func ParseFeedback(s string) (Feedback, error) {
	bad := fmt.Errorf("malformed or unreasonable feedback: %s", s)

	number, n, ok := scanFloat(s)
	if !ok {
		return Feedback{}, bad
	}
	rest := strings.TrimLeft(s[n:], spaceChars)
	if !strings.HasPrefix(rest, "/") {
		return checkFeedback(Feedback{base: number}, bad)
	}
	rest = strings.TrimLeft(rest[1:], spaceChars)

	// The denominator is one word of at most 30 bytes that must end the
	// input.
	word := rest
	if i := strings.IndexAny(rest, spaceChars); i >= 0 {
		word = rest[:i]
	}
	if word == "" || len(word) > 30 || len(word) < len(rest) {
		return Feedback{}, bad
	}

	if word == "concurrency" {
		return checkFeedback(Feedback{base: number, perWindow: true}, bad)
	}
	denominator, used, ok := scanFloat(word)
	if !ok || used != len(word) || number < 0 || number > math.MaxInt32 ||
		denominator < 1.0/math.MaxInt32 || denominator > math.MaxInt32 {
		return Feedback{}, bad
	}
	return checkFeedback(Feedback{base: number / denominator}, bad)
}

func checkFeedback(f Feedback, bad error) (Feedback, error) {
	if !(f.base >= 0 && f.base <= 1) {
		return Feedback{}, bad
	}
	return f, nil
}

// Value returns the feedback for a concurrency window of the given size.
func (f Feedback) Value(window int) float64 {
	if f.perWindow {
		return f.base / float64(window)
	}
	return f.base
}

// PerWindow reports whether the value is divided by the window size.
func (f Feedback) PerWindow() bool { return f.perWindow }

// Base returns the constant, or the numerator of a per-window value.
func (f Feedback) Base() float64 { return f.base }

// scanFloat reads the longest prefix of s that C strtod accepts, after
// optional blanks: a decimal or hexadecimal number, "inf", "infinity" or
// "nan". It returns the value, the bytes used and whether a number was
// found.
func scanFloat(s string) (float64, int, bool) {
	i := 0
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	start := i
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	lower := strings.ToLower(s[i:])

	switch {
	case strings.HasPrefix(lower, "infinity"):
		i += len("infinity")
	case strings.HasPrefix(lower, "inf"):
		i += len("inf")
	case strings.HasPrefix(lower, "nan"):
		i += len("nan")
		if j := strings.IndexByte(s[i:], ')'); strings.HasPrefix(s[i:], "(") && j > 0 &&
			isNanPayload(s[i+1:i+j]) {
			i += j + 1
		}
		return math.NaN(), i, true
	case (strings.HasPrefix(lower, "0x")) && hexDigitsFollow(lower[2:]):
		return scanHexFloat(s, start, i+2)
	default:
		end, ok := decimalEnd(s, i)
		if !ok {
			return 0, 0, false
		}
		i = end
	}
	value, err := strconv.ParseFloat(s[start:i], 64)
	if err != nil && !math.IsInf(value, 0) {
		return 0, 0, false
	}
	return value, i, true
}

// decimalEnd returns the end of "digits[.digits][e[sign]digits]" starting
// at i, which needs at least one mantissa digit.
func decimalEnd(s string, i int) (int, bool) {
	digits := 0
	for i < len(s) && isDigit(s[i]) {
		i++
		digits++
	}
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && isDigit(s[i]) {
			i++
			digits++
		}
	}
	if digits == 0 {
		return 0, false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		j := i + 1
		if j < len(s) && (s[j] == '+' || s[j] == '-') {
			j++
		}
		if j < len(s) && isDigit(s[j]) {
			for j < len(s) && isDigit(s[j]) {
				j++
			}
			i = j
		}
	}
	return i, true
}

// scanHexFloat reads "0x" hex digits with an optional fraction and binary
// exponent; Go's parser needs the exponent, so a missing one becomes p0.
func scanHexFloat(s string, start, i int) (float64, int, bool) {
	for i < len(s) && isHexDigit(s[i]) {
		i++
	}
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && isHexDigit(s[i]) {
			i++
		}
	}
	mantissa := s[start:i]
	exponent := "p0"
	if i < len(s) && (s[i] == 'p' || s[i] == 'P') {
		j := i + 1
		if j < len(s) && (s[j] == '+' || s[j] == '-') {
			j++
		}
		if j < len(s) && isDigit(s[j]) {
			for j < len(s) && isDigit(s[j]) {
				j++
			}
			exponent = s[i:j]
			i = j
		}
	}
	value, err := strconv.ParseFloat(mantissa+exponent, 64)
	if err != nil && !math.IsInf(value, 0) {
		return 0, 0, false
	}
	return value, i, true
}

func hexDigitsFollow(s string) bool {
	if s != "" && isHexDigit(s[0]) {
		return true
	}
	return len(s) > 1 && s[0] == '.' && isHexDigit(s[1])
}

func isNanPayload(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isNameChar(s[i]) {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isHexDigit(c byte) bool {
	return isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}
