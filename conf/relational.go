package conf

// Relational expressions inside ${...}: "{left} OP {right}" compared as
// numbers, strings or Postfix compatibility levels, following mac_exp_eval
// in Postfix 3.7 src/util/mac_expand.c and src/global/compat_level.c.

import (
	"fmt"
	"strconv"
	"strings"
)

// Values a relational expression yields, as in mac_expand: any non-empty
// text counts as true for the ?/: operators that may follow.
const (
	relationTrue  = "true"
	relationFalse = ""
)

// relationalOperators lists the comparison operators in the order of
// Postfix's mac_exp_op_table.
var relationalOperators = []string{"==", "!=", "<", "<=", ">=", ">"}

// operatorChars are the characters Postfix takes as one operator token
// before it checks the token against relationalOperators.
const operatorChars = "<>!=?+-*/~&|%"

// operatorExpected is the list of operators as Postfix 3.7 spells it in the
// "expected at" warning, doubled quotes included.
const operatorExpected = `"==" or "!="" or "<"" or "<="" or ">="" or ">"`

// relational evaluates "{left} OP {right}" at the start of text, where OP is
// one of relationalOperators, optionally with the "level" suffix that
// compares Postfix compatibility levels. It returns "true" or "" and the
// input after the right operand.
func (x *expansion) relational(text string) (string, string, bool) {
	left, rest, ok := x.curlyPayload(text)
	if !ok {
		return "", "", false
	}

	opLen := 0
	for opLen < len(rest) && strings.IndexByte(operatorChars, rest[opLen]) >= 0 {
		opLen++
	}
	op := rest[:opLen]
	if !isRelationalOperator(op) {
		x.fail("%s expected at: \"...%s}>>>%s\"", operatorExpected, left, clip20(rest))
		return "", "", false
	}
	afterOp := rest[opLen:]

	compareLevels := false
	if afterOp != "" && isAlnum(afterOp[0]) {
		suffixLen := 1
		for suffixLen < len(afterOp) && isAlnum(afterOp[suffixLen]) {
			suffixLen++
		}
		if afterOp[:suffixLen] != "level" {
			x.fail("bad operator suffix at: \"...%s>>>%s\"", op, afterOp[:suffixLen])
			return "", "", false
		}
		compareLevels = true
		afterOp = afterOp[suffixLen:]
	}

	trimmed := strings.TrimLeft(afterOp, whitespace)
	if !strings.HasPrefix(trimmed, "{") {
		x.fail("\"{expression}\" expected at: \"...{%s} %s>>>%s\"", left, op, clip20(afterOp))
		return "", "", false
	}
	right, rest, ok := x.curlyPayload(trimmed)
	if !ok {
		return "", "", false
	}

	leftValue := x.subExpand(left)
	rightValue := x.subExpand(right)
	if x.err != nil {
		return "", "", false
	}

	var result bool
	var err error
	if compareLevels {
		result, err = compareCompatLevels(leftValue, op, rightValue)
	} else {
		result, err = compareValues(leftValue, op, rightValue)
	}
	if err != nil {
		if x.err == nil {
			x.err = err
		}
		return "", "", false
	}
	if result {
		return relationTrue, rest, true
	}
	return relationFalse, rest, true
}

// subExpand expands a relational operand in a fresh context, as Postfix
// calls mac_expand again for each operand.
func (x *expansion) subExpand(text string) string {
	sub := &expansion{lookup: x.lookup, depth: x.depth}
	sub.parse(text)
	if sub.err != nil && x.err == nil {
		x.err = sub.err
	}
	return sub.out.String()
}

// compareValues compares two operands as numbers when both are all digits,
// otherwise as byte strings, as mac_exp_eval does.
func compareValues(left, op, right string) (bool, error) {
	var delta int
	if allDigits(left) && allDigits(right) {
		l, err := strconv.ParseInt(left, 10, 64)
		if err != nil {
			return false, &ExpandError{Detail: "mac_exp_eval: bad conversion: " + left}
		}
		r, err := strconv.ParseInt(right, 10, 64)
		if err != nil {
			return false, &ExpandError{Detail: "mac_exp_eval: bad conversion: " + right}
		}
		delta = compareInt(l, r)
	} else {
		delta = strings.Compare(left, right)
	}
	return applyOperator(op, delta), nil
}

// compareCompatLevels compares two compatibility levels such as "2" or
// "3.6" (src/global/compat_level.c).
func compareCompatLevels(left, op, right string) (bool, error) {
	l, err := parseCompatLevel(left)
	if err != nil {
		return false, err
	}
	r, err := parseCompatLevel(right)
	if err != nil {
		return false, err
	}
	return applyOperator(op, compareInt(l, r)), nil
}

// parseCompatLevel converts "major[.minor[.patch]]" into one comparable
// number. Minor and patch must each fit in 10 bits.
func parseCompatLevel(s string) (int64, error) {
	bad := &ExpandError{Detail: fmt.Sprintf("malformed compatibility level syntax: \"%s\"", s)}
	parts := strings.Split(s, ".")
	if len(parts) > 3 {
		return 0, bad
	}
	limits := []int64{1<<43 - 1, 0x3ff, 0x3ff}
	var level int64
	for i, part := range parts {
		n, ok := parseCLong(part)
		if !ok || n < 0 || n > limits[i] {
			return 0, bad
		}
		level |= n << (20 - 10*i)
	}
	return level, nil
}

func applyOperator(op string, delta int) bool {
	switch op {
	case "==":
		return delta == 0
	case "!=":
		return delta != 0
	case "<":
		return delta < 0
	case "<=":
		return delta <= 0
	case ">=":
		return delta >= 0
	default: // ">"
		return delta > 0
	}
}

func compareInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func isRelationalOperator(op string) bool {
	for _, known := range relationalOperators {
		if op == known {
			return true
		}
	}
	return false
}
