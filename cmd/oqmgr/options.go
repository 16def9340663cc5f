package main

import (
	"fmt"
	"strings"
)

// daemonOptions is the getopt option string of Postfix's trigger server
// skeleton (trigger_server_main in src/master/trigger_server.c). A letter
// followed by ':' takes an argument.
const daemonOptions = "cdDi:lm:n:o:s:St:uvVz"

// getopt walks argv the way glibc getopt(3) does with a leading '+' in
// the option string, as Postfix calls it. Option letters may be grouped
// ("-lv"), and an argument may be attached ("-tunix") or follow as the
// next word. Scanning stops at "--" or at the first word that is not an
// option. Postfix sets opterr to 0, so getopt itself prints nothing.
type getopt struct {
	args   []string // argv without argv[0]
	optind int      // index in args of the word being scanned
	pos    int      // index of the next letter in args[optind]; 0 means a new word
}

// errInvalidOption is returned by next for an unknown letter or a letter
// whose required argument is missing. Both come back from getopt(3) as
// '?' with optopt set to the letter, so Postfix reports both as
// "invalid option: <letter>".
type errInvalidOption struct{ letter byte }

func (e errInvalidOption) Error() string { return fmt.Sprintf("invalid option: %c", e.letter) }

// next returns the next option letter and its argument. ok is false once
// the options end; operands then returns the words left.
func (g *getopt) next() (letter byte, arg string, ok bool, err error) {
	if g.pos == 0 {
		if g.optind >= len(g.args) {
			return 0, "", false, nil
		}
		word := g.args[g.optind]
		if word == "--" {
			g.optind++
			return 0, "", false, nil
		}
		if len(word) < 2 || word[0] != '-' {
			return 0, "", false, nil
		}
		g.pos = 1
	}

	word := g.args[g.optind]
	letter = word[g.pos]
	g.pos++
	atEnd := g.pos >= len(word)

	spec := strings.IndexByte(daemonOptions, letter)
	if spec < 0 || letter == ':' {
		g.advanceIf(atEnd)
		return 0, "", true, errInvalidOption{letter}
	}
	if spec+1 >= len(daemonOptions) || daemonOptions[spec+1] != ':' {
		g.advanceIf(atEnd)
		return letter, "", true, nil
	}

	// The option takes an argument: the rest of this word, or the next word.
	if !atEnd {
		arg = word[g.pos:]
		g.advanceIf(true)
		return letter, arg, true, nil
	}
	g.advanceIf(true)
	if g.optind >= len(g.args) {
		return 0, "", true, errInvalidOption{letter}
	}
	arg = g.args[g.optind]
	g.optind++
	return letter, arg, true, nil
}

// advanceIf moves to the next word when the current one is used up.
func (g *getopt) advanceIf(done bool) {
	if done {
		g.optind++
		g.pos = 0
	}
}

// operands returns the words after the options, which the queue manager
// rejects when the first trigger arrives.
func (g *getopt) operands() []string {
	return g.args[g.optind:]
}

// atoi converts the leading decimal digits of s the way C atoi(3) does:
// leading blanks and a sign are accepted, conversion stops at the first
// other character, and text without digits gives 0.
func atoi(s string) int {
	s = strings.TrimLeft(s, " \t\n\v\f\r")
	negative := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		negative = s[0] == '-'
		s = s[1:]
	}
	n := 0
	for i := 0; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		n = n*10 + int(s[i]-'0')
		if n > 1<<31 {
			n = 1 << 31 // glibc atoi overflows; any such value is invalid here anyway
		}
	}
	if negative {
		return -n
	}
	return n
}
