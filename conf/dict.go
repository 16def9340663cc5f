package conf

import (
	"fmt"
	"strings"
	"sync"
)

// Dict contains raw parameter values from main.cf, master.cf -o overrides
// and the defaults of parameters a program has read, like Postfix's
// "mail_dict" dictionary. Values are stored unexpanded and expanded on each
// read, so a $name reference expands to the value name has at that time.
// A Dict is safe for concurrent use.
type Dict struct {
	mu       sync.RWMutex
	values   map[string]string
	warnings []string
}

// NewDict returns an empty dictionary.
func NewDict() *Dict {
	return &Dict{values: make(map[string]string)}
}

// Set stores the raw value of name, replacing any earlier value.
func (d *Dict) Set(name, value string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.values[name] = value
}

// SetDefault stores value as the raw value of name unless name already has a
// value. A program calls it for each parameter it reads, because Postfix
// inserts the default of every parameter it loads into the dictionary, and
// only then can $name in other values refer to that default.
func (d *Dict) SetDefault(name, value string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.values[name]; !ok {
		d.values[name] = value
	}
}

// Override applies one master.cf "-o name=value" argument: the text is split
// at the first '=' and blanks around name and value are removed. The error
// text is the one Postfix's daemon skeleton stops with.
func (d *Dict) Override(nameEqualsValue string) error {
	name, value, err := splitNameValue(nameEqualsValue)
	if err != nil {
		return fmt.Errorf("invalid \"-o %s\" option value: %w", nameEqualsValue, err)
	}
	d.Set(name, value)
	return nil
}

// Raw returns the unexpanded value of name.
func (d *Dict) Raw(name string) (string, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	value, ok := d.values[name]
	return value, ok
}

// Lookup returns the expanded value of name and whether name is defined. It
// returns "" and false also when the value has a macro syntax error; Eval
// reports that error.
func (d *Dict) Lookup(name string) (string, bool) {
	value, ok, err := d.Eval(name)
	if err != nil {
		return "", false
	}
	return value, ok
}

// Eval returns the expanded value of name, whether name is defined, and an
// *ExpandError when the value contains a macro syntax error.
func (d *Dict) Eval(name string) (string, bool, error) {
	raw, ok := d.Raw(name)
	if !ok {
		return "", false, nil
	}
	value, err := d.Expand(raw)
	if err != nil {
		if expandErr, isExpand := err.(*ExpandError); isExpand {
			expandErr.Name = name
		}
		return "", true, err
	}
	return value, true, nil
}

// Expand expands $name references in text against the dictionary,
// recursively.
func (d *Dict) Expand(text string) (string, error) {
	if !strings.Contains(text, "$") {
		return text, nil
	}
	return expand(text, d.Raw)
}

// Names returns the names of all defined parameters in no particular order.
func (d *Dict) Names() []string {
	d.mu.RLock()
	defer d.mu.RUnlock()
	names := make([]string, 0, len(d.values))
	for name := range d.values {
		names = append(names, name)
	}
	return names
}

// Warnings returns the warnings Postfix would log while reading main.cf into
// this dictionary, such as an entry overriding an earlier one, in file order.
func (d *Dict) Warnings() []string {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return append([]string(nil), d.warnings...)
}

func (d *Dict) warn(format string, args ...any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.warnings = append(d.warnings, fmt.Sprintf(format, args...))
}
