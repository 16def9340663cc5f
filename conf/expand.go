package conf

// Macro expansion of parameter values. The rules follow Postfix 3.7
// src/util/mac_parse.c (splitting text into literals and $name references)
// and src/util/mac_expand.c (named lookups, ?/: conditionals and relational
// expressions), including the text of every syntax warning, which becomes
// the message of an *ExpandError here.

import (
	"fmt"
	"strings"
)

// maxNesting is the nesting level at which Postfix's mac_expand gives up
// with "unreasonable macro call nesting".
const maxNesting = 100

// maxTotalDepth bounds recursion across the separate expansion contexts that
// relational operands open. Postfix resets its nesting counter for each
// operand and overflows the stack on a cycle through an operand; we report
// the nesting error instead.
const maxTotalDepth = 10 * maxNesting

// whitespace is the separator set that Postfix skips around operands
// (CHARS_SPACE in src/util/sys_defs.h).
const whitespace = " \t\r\n"

// ExpandError reports a macro syntax error in a parameter value. Detail is
// the warning that Postfix logs just before it stops with the fatal error
// "dictionary mail_dict: macro processing error"; Error adds the parameter
// name in front when it is known.
type ExpandError struct {
	// Name is the parameter whose value failed to expand, or empty when the
	// text did not come from a named parameter.
	Name string
	// Detail is the Postfix warning text, for example
	// `truncated macro reference: "${a"`.
	Detail string
}

func (e *ExpandError) Error() string {
	if e.Name == "" {
		return e.Detail
	}
	return fmt.Sprintf("parameter %s: %s", e.Name, e.Detail)
}

// lookupFunc returns the raw value of a parameter and whether it is defined.
type lookupFunc func(name string) (string, bool)

// expansion is the state of one mac_expand call: the output, the nesting
// level and the first error.
type expansion struct {
	lookup lookupFunc
	out    strings.Builder
	level  int
	depth  *int
	err    error
}

// expand evaluates text recursively against lookup.
func expand(text string, lookup lookupFunc) (string, error) {
	depth := 0
	x := &expansion{lookup: lookup, depth: &depth}
	x.parse(text)
	if x.err != nil {
		return "", x.err
	}
	return x.out.String(), nil
}

// fail records the first syntax error; later ones are dropped as Postfix's
// caller stops at the first error too.
func (x *expansion) fail(format string, args ...any) {
	if x.err == nil {
		x.err = &ExpandError{Detail: fmt.Sprintf(format, args...)}
	}
}

// parse splits text into literal runs and macro references, as mac_parse
// does, and hands each piece to x.literal or x.reference. "$$" stands for
// one literal dollar.
func (x *expansion) parse(text string) {
	var lit strings.Builder
	i := 0
	for i < len(text) && x.err == nil {
		if text[i] != '$' {
			lit.WriteByte(text[i])
			i++
			continue
		}
		if i+1 < len(text) && text[i+1] == '$' {
			lit.WriteByte('$')
			i += 2
			continue
		}

		if lit.Len() > 0 {
			x.literal(lit.String())
			lit.Reset()
		}
		i++

		name, next, ok := macroName(text, i)
		if !ok {
			x.fail("truncated macro reference: \"%s\"", text)
			return
		}
		if name == "" {
			x.fail("empty macro name: \"%s\"", text)
			return
		}
		i = next
		x.reference(name)
	}
	if lit.Len() > 0 && x.err == nil {
		x.literal(lit.String())
	}
}

// macroName extracts the reference that starts at text[i], just after a '$':
// a bracketed ${...} or $(...) body with nesting of the same bracket kind,
// or a run of letters, digits and underscores. It returns the body, the
// index after the reference, and false when a bracket is never closed.
func macroName(text string, i int) (string, int, bool) {
	if i < len(text) && (text[i] == '{' || text[i] == '(') {
		open := text[i]
		closing := byte('}')
		if open == '(' {
			closing = ')'
		}
		level := 1
		for j := i + 1; j < len(text); j++ {
			switch text[j] {
			case open:
				level++
			case closing:
				level--
				if level == 0 {
					return text[i+1 : j], j + 1, true
				}
			}
		}
		return "", len(text), false
	}

	j := i
	for j < len(text) && isNameChar(text[j]) {
		j++
	}
	return text[i:j], j, true
}

// enter applies Postfix's nesting limit to one callback. It returns false
// when expansion must stop.
func (x *expansion) enter(text string) bool {
	if x.level > maxNesting || *x.depth > maxTotalDepth {
		x.fail("unreasonable macro call nesting: \"%s\"", text)
	}
	x.level++
	*x.depth++
	return x.err == nil
}

func (x *expansion) leave() {
	x.level--
	*x.depth--
}

func (x *expansion) literal(text string) {
	if !x.enter(text) {
		return
	}
	x.out.WriteString(text)
	x.leave()
}

// reference evaluates the body of one macro reference: a named parameter or
// a relational expression, optionally followed by ?text and/or :text.
func (x *expansion) reference(body string) {
	if !x.enter(body) {
		return
	}

	var (
		value   string
		defined bool
		op      byte
		rest    string
	)
	if strings.HasPrefix(strings.TrimLeft(body, whitespace), "{") {
		var ok bool
		value, rest, ok = x.relational(strings.TrimLeft(body, whitespace))
		if !ok {
			return
		}
		defined = true
		if rest != "" {
			if rest[0] != '?' && rest[0] != ':' {
				x.fail("\"?\" or \":\" expected at: \"...}>>>%s\"", clip20(rest))
				return
			}
			op, rest = rest[0], rest[1:]
		}
	} else {
		var name string
		var ok bool
		name, op, rest, ok = x.splitName(body)
		if !ok {
			return
		}
		value, defined = x.lookup(name)
	}
	nonEmpty := defined && value != ""

	switch op {
	case '?':
		text, after, ok := x.operand(rest)
		if !ok {
			return
		}
		if nonEmpty {
			x.parse(text)
		}
		if after == "" {
			break
		}
		if after[0] != ':' {
			x.fail("\":\" expected at: \"...%s}>>>%s\"", text, clip20(after))
			return
		}
		x.alternative(after[1:], nonEmpty)
	case ':':
		x.alternative(rest, nonEmpty)
	default:
		if nonEmpty {
			x.parse(value)
		}
	}
	if x.err == nil {
		x.leave()
	}
}

// alternative handles the text after ':', which is used when the tested
// value is empty or undefined.
func (x *expansion) alternative(rest string, nonEmpty bool) {
	text, after, ok := x.operand(rest)
	if !ok {
		return
	}
	if !nonEmpty {
		x.parse(text)
	}
	if after != "" && x.err == nil {
		x.fail("unexpected input at: \"...%s}>>>%s\"", text, clip20(after))
	}
}

// operand returns the text of a ?/: result: a {braced} payload with the
// remaining input after it, or, without braces, all remaining input.
func (x *expansion) operand(rest string) (string, string, bool) {
	trimmed := strings.TrimLeft(rest, whitespace)
	if !strings.HasPrefix(trimmed, "{") {
		return rest, "", true
	}
	return x.curlyPayload(trimmed)
}

// splitName parses "name", "name?text" or "name:text" with optional blanks
// around the name. The name may be empty, which looks up nothing.
func (x *expansion) splitName(body string) (name string, op byte, rest string, ok bool) {
	start := len(body) - len(strings.TrimLeft(body, whitespace))
	for i := start; ; i++ {
		blanks := len(body[i:]) - len(strings.TrimLeft(body[i:], whitespace))
		if i+blanks == len(body) {
			return body[start:i], 0, "", true
		}
		if c := body[i+blanks]; c == '?' || c == ':' {
			return body[start:i], c, body[i+blanks+1:], true
		}
		if !isNameChar(body[i]) {
			x.fail("attribute name syntax error at: \"...%s>>>%s\"", body[:i], clip20(body[i:]))
			return "", 0, "", false
		}
	}
}

// curlyPayload takes text that starts with '{' and returns the balanced
// payload and the input after the closing brace with leading blanks removed.
func (x *expansion) curlyPayload(text string) (string, string, bool) {
	level := 1
	for i := 1; i < len(text); i++ {
		switch text[i] {
		case '{':
			level++
		case '}':
			level--
			if level == 0 {
				return text[1:i], strings.TrimLeft(text[i+1:], whitespace), true
			}
		}
	}
	x.fail("unbalanced {} in attribute expression: \"%s\"", text)
	return "", "", false
}

func isNameChar(c byte) bool {
	return isAlnum(c) || c == '_'
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// clip20 shortens text to 20 bytes, as the "%.20s" in Postfix's warnings.
func clip20(text string) string {
	if len(text) > 20 {
		return text[:20]
	}
	return text
}
