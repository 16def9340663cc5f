package conf

// Reading main.cf. The logical-line rules follow Postfix 3.7
// src/util/readlline.c, the name = value split follows split_nameval.c, and
// the re-read of a file that is still being written follows
// dict_load_file_xt in src/util/dict.c.

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// hotFileDelay is how long ReadMainCF waits before reading a file again
// whose modification time is too recent to trust (300 ms in Postfix).
var hotFileDelay = 300 * time.Millisecond

// Errors from splitNameValue, worded as Postfix words them.
var (
	errMissingName  = errors.New("missing attribute name")
	errMissingEqual = errors.New("missing '=' after attribute name")
)

// ReadMainCF reads a main.cf file into a new dictionary. Comment lines,
// blank lines and continuation lines are handled as Postfix does; a line
// without '=' is an error naming the file and line. Warnings, such as a
// repeated name, are kept in the dictionary's Warnings.
func ReadMainCF(path string) (*Dict, error) {
	d := NewDict()
	if err := d.load(path); err != nil {
		return nil, err
	}
	return d, nil
}

// load reads path into d. While the file's modification time lies within
// one second of the read, the file may still be changing, so load waits
// hotFileDelay and reads it again, as Postfix does.
func (d *Dict) load(path string) error {
	before := time.Now().Unix()
	for {
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if err := d.loadText(path, data); err != nil {
			return err
		}
		info, err := os.Stat(path)
		if err != nil {
			return fmt.Errorf("stat %s: %w", path, err)
		}
		after := time.Now().Unix()
		mtime := info.ModTime().Unix()
		if mtime < before-1 || mtime > after {
			return nil
		}
		time.Sleep(hotFileDelay)
		before = after
	}
}

// loadText parses main.cf text into d; path is used in messages only.
func (d *Dict) loadText(path string, data []byte) error {
	r := newLineReader(path, string(data))
	for {
		line, lineNo, ok := r.next()
		if !ok {
			break
		}
		name, value, err := splitNameValue(line)
		if err != nil {
			return fmt.Errorf("%s, line %d: %w: \"%s\"", path, lineNo, err, line)
		}
		if old, exists := d.Raw(name); exists && old != value {
			d.warn("%s, line %d: overriding earlier entry: %s=%s", path, lineNo, name, old)
		}
		d.Set(name, value)
	}
	for _, warning := range r.warnings {
		d.warn("%s", warning)
	}
	return nil
}

// lineReader joins physical lines into logical lines.
type lineReader struct {
	path     string
	lines    []string
	pos      int
	warnings []string
}

func newLineReader(path, text string) *lineReader {
	lines := strings.Split(text, "\n")
	if strings.HasSuffix(text, "\n") || text == "" {
		lines = lines[:len(lines)-1]
	}
	return &lineReader{path: path, lines: lines}
}

// next returns the next logical line and the number of its first physical
// line. A physical line that starts with whitespace continues the previous
// line; the newline goes, the leading whitespace stays. Blank lines and
// lines whose first non-blank character is '#' are skipped everywhere, also
// inside a continued line. A logical line that itself starts with
// whitespace is dropped with a warning, as Postfix does.
func (r *lineReader) next() (string, int, bool) {
	for {
		var buf strings.Builder
		first := 0
		for r.pos < len(r.lines) {
			line := r.lines[r.pos]
			r.pos++
			if !isCommentOrBlank(line) {
				if buf.Len() == 0 {
					first = r.pos
				}
				buf.WriteString(line)
			}
			if buf.Len() > 0 && !r.continues() {
				break
			}
		}
		if buf.Len() == 0 {
			return "", 0, false
		}

		full := buf.String()
		line := full
		// Postfix handles the line as a C string, so a NUL byte ends it.
		if nul := strings.IndexByte(line, 0); nul >= 0 {
			line = line[:nul]
		}
		if isSpace(full[0]) {
			more := ""
			if len(full) > 30 {
				more = "..."
			}
			r.warnings = append(r.warnings, fmt.Sprintf(
				"%s: logical line must not start with whitespace: \"%s%s\"",
				r.path, clip(line, 30), more))
			continue
		}
		return line, first, true
	}
}

// continues reports whether the next physical line belongs to the current
// logical line: it is empty, or starts with whitespace or '#'.
func (r *lineReader) continues() bool {
	if r.pos >= len(r.lines) {
		return false
	}
	next := r.lines[r.pos]
	return next == "" || next[0] == '#' || isSpace(next[0])
}

func isCommentOrBlank(line string) bool {
	for i := 0; i < len(line); i++ {
		if !isSpace(line[i]) {
			return line[i] == '#'
		}
	}
	return true
}

// splitNameValue splits "name = value": the name ends at whitespace or '=',
// and blanks around the value are removed.
func splitNameValue(text string) (string, string, error) {
	start := 0
	for start < len(text) && isSpace(text[start]) {
		start++
	}
	if start == len(text) || text[start] == '=' {
		return "", "", errMissingName
	}
	end := start
	for end < len(text) && !isSpace(text[end]) && text[end] != '=' {
		end++
	}
	eq := end
	for eq < len(text) && isSpace(text[eq]) {
		eq++
	}
	if eq == len(text) || text[eq] != '=' {
		return "", "", errMissingEqual
	}
	value := strings.TrimRight(strings.TrimLeft(text[eq+1:], spaceChars), spaceChars)
	return text[start:end], value, nil
}

// spaceChars is the C isspace set in the C locale.
const spaceChars = " \t\n\v\f\r"

func isSpace(c byte) bool {
	return strings.IndexByte(spaceChars, c) >= 0
}

func clip(text string, n int) string {
	if len(text) > n {
		return text[:n]
	}
	return text
}
