package conf

// Typed reads of parameters. Each reader follows the matching Postfix 3.7
// function in src/global/mail_conf_{int,bool,str,time,nbool}.c and
// conv_time.c. When the parameter is undefined, its default is inserted into
// the dictionary, where $name references can find it. A bad value produces
// the exact text of Postfix's fatal error.

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// ParamError is an invalid parameter value. Its message is the text that
// Postfix logs as a fatal error for the same value.
type ParamError struct {
	// Name is the parameter and Value its expanded value.
	Name, Value string
	msg         string
}

func (e *ParamError) Error() string { return e.msg }

func paramError(name, value, format string, args ...any) *ParamError {
	return &ParamError{Name: name, Value: value, msg: fmt.Sprintf(format, args...)}
}

// IntParam reads a decimal integer that must fit a C int. A zero min or max
// means no bound, as in Postfix.
func (d *Dict) IntParam(name string, def, min, max int) (int, error) {
	value, found, err := d.intValue(name)
	if err != nil {
		return 0, err
	}
	if !found {
		value = def
		d.Set(name, strconv.Itoa(def))
	}
	return value, checkInt(name, value, min, max)
}

func (d *Dict) intValue(name string) (int, bool, error) {
	text, found, err := d.Eval(name)
	if err != nil || !found {
		return 0, found, err
	}
	n, ok := parseCLong(text)
	if !ok || n < math.MinInt32 || n > math.MaxInt32 {
		return 0, true, paramError(name, text, "bad numerical configuration: %s = %s", name, text)
	}
	return int(n), true, nil
}

func checkInt(name string, value, min, max int) error {
	if min != 0 && value < min {
		return paramError(name, strconv.Itoa(value), "invalid %s parameter value %d < %d", name, value, min)
	}
	if max != 0 && value > max {
		return paramError(name, strconv.Itoa(value), "invalid %s parameter value %d > %d", name, value, max)
	}
	return nil
}

// BoolParam reads "yes" or "no", in any letter case.
func (d *Dict) BoolParam(name string, def bool) (bool, error) {
	value, found, err := d.boolValue(name)
	if err != nil || found {
		return value, err
	}
	d.Set(name, formatBool(def))
	return def, nil
}

func (d *Dict) boolValue(name string) (bool, bool, error) {
	text, found, err := d.Eval(name)
	if err != nil || !found {
		return false, found, err
	}
	switch {
	case strings.EqualFold(text, "yes"):
		return true, true, nil
	case strings.EqualFold(text, "no"):
		return false, true, nil
	}
	return false, true, paramError(name, text, "bad boolean configuration: %s = %s", name, text)
}

// boolParamExpr reads a boolean whose default is text that expands to yes
// or no, such as a compatibility-level expression (get_mail_conf_nbool).
// The raw default goes into the dictionary.
func (d *Dict) boolParamExpr(name, def string) (bool, error) {
	d.SetDefault(name, def)
	value, _, err := d.boolValue(name)
	return value, err
}

func formatBool(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// StringParam reads a string. An undefined parameter gets its default,
// expanded at this moment, inserted into the dictionary. A zero minLen or
// maxLen means no bound.
func (d *Dict) StringParam(name, def string, minLen, maxLen int) (string, error) {
	value, found, err := d.Eval(name)
	if err != nil {
		return "", err
	}
	if !found {
		if value, err = d.Expand(def); err != nil {
			if expandErr, ok := err.(*ExpandError); ok {
				expandErr.Name = name
			}
			return "", err
		}
		d.Set(name, value)
	}
	return value, checkStringLength(name, value, minLen, maxLen)
}

func checkStringLength(name, value string, minLen, maxLen int) error {
	if minLen != 0 && len(value) < minLen {
		return paramError(name, value, "bad string length %d < %d: %s = %s", len(value), minLen, name, value)
	}
	if maxLen != 0 && len(value) > maxLen {
		return paramError(name, value, "bad string length %d > %d: %s = %s", len(value), maxLen, name, value)
	}
	return nil
}

// TimeParam reads a time value: a non-negative integer followed by an
// optional unit s, m, h, d or w. A value without a unit takes the unit of
// def, which must contain one (for example "300s" or "5d"). The raw default
// goes into the dictionary. A zero min or max means no bound.
func (d *Dict) TimeParam(name, def string, min, max time.Duration) (time.Duration, error) {
	defUnit, err := defaultTimeUnit(d, name, def)
	if err != nil {
		return 0, err
	}
	d.SetDefault(name, def)
	seconds, err := d.timeValue(name, defUnit)
	if err != nil {
		return 0, err
	}
	if err := checkTime(name, seconds, int(min/time.Second), int(max/time.Second)); err != nil {
		return 0, err
	}
	return time.Duration(seconds) * time.Second, nil
}

// timeParamSeconds reads a per-transport time parameter whose default is a
// number of seconds (get_mail_conf_time2 with unit 's').
func (d *Dict) timeParamSeconds(name string, defSeconds int) (int, error) {
	d.SetDefault(name, strconv.Itoa(defSeconds)+"s")
	return d.timeValue(name, 's')
}

func (d *Dict) timeValue(name string, defUnit byte) (int, error) {
	text, _, err := d.Eval(name)
	if err != nil {
		return 0, err
	}
	seconds, ok := parseTime(text, defUnit)
	if !ok {
		return 0, paramError(name, text, "parameter %s: bad time value or unit: %s", name, text)
	}
	return seconds, nil
}

// defaultTimeUnit returns the first letter of the expanded default.
func defaultTimeUnit(d *Dict, name, def string) (byte, error) {
	text, err := d.Expand(def)
	if err != nil {
		return 0, err
	}
	for i := 0; i < len(text); i++ {
		if isAlpha(text[i]) {
			return text[i], nil
		}
	}
	return 0, fmt.Errorf("parameter %s: missing time unit in default value: %s", name, def)
}

func checkTime(name string, seconds, min, max int) error {
	if min != 0 && seconds < min {
		return paramError(name, strconv.Itoa(seconds), "invalid %s: %d (min %d)", name, seconds, min)
	}
	if max != 0 && seconds > max {
		return paramError(name, strconv.Itoa(seconds), "invalid %s: %d (max %d)", name, seconds, max)
	}
	return nil
}

// parseTime converts a time value to seconds as conv_time does. Only the
// first character after the number is taken as the unit, so "10sec" means
// ten seconds, as in Postfix 3.7.
func parseTime(text string, defUnit byte) (int, bool) {
	if text == "" {
		return 0, false
	}

	// Like strtol, a value without digits reads as 0 and the unit check
	// decides: "s" alone is zero seconds.
	end := numberEnd(text)
	var n int64
	if end > 0 {
		var ok bool
		if n, ok = parseCLong(text[:end]); !ok || n < 0 || n > math.MaxInt32 {
			return 0, false
		}
	}
	unit := defUnit
	if end < len(text) {
		unit = text[end]
	}

	var size int64
	switch unit {
	case 's':
		return int(n), true
	case 'm':
		size = 60
	case 'h':
		size = 3600
	case 'd':
		size = 86400
	case 'w':
		size = 7 * 86400
	default:
		return 0, false
	}
	if n >= math.MaxInt32/size {
		return 0, false
	}
	return int(n * size), true
}

// numberEnd returns the length of the longest prefix of text that strtol
// would consume in base 10: blanks, an optional sign and digits.
func numberEnd(text string) int {
	i := 0
	for i < len(text) && isSpace(text[i]) {
		i++
	}
	if i < len(text) && (text[i] == '+' || text[i] == '-') {
		i++
	}
	digits := i
	for i < len(text) && text[i] >= '0' && text[i] <= '9' {
		i++
	}
	if i == digits {
		return 0
	}
	return i
}

func isAlpha(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// splitList splits a list value at commas and whitespace, dropping empty
// elements (CHARS_COMMA_SP in Postfix).
func splitList(text string) []string {
	return strings.FieldsFunc(text, func(r rune) bool {
		return r == ',' || r == ' ' || r == '\t' || r == '\r' || r == '\n'
	})
}

// parseCLong accepts what strtol accepts when it must consume all of s:
// optional leading blanks, an optional sign and at least one digit.
func parseCLong(s string) (int64, bool) {
	t := strings.TrimLeft(s, " \t\n\v\f\r")
	digits := strings.TrimLeft(t, "+-")
	if len(t)-len(digits) > 1 || digits == "" || !allDigits(digits) {
		return 0, false
	}
	n, err := strconv.ParseInt(t, 10, 64)
	return n, err == nil
}
