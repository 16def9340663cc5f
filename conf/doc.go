// Package conf owns the queue manager's configuration: main.cf and master.cf
// "-o" values, held raw in a Dict and expanded on read with Postfix's $name
// rules, and the typed Config that Load builds from them with Postfix 3.7.11
// defaults and bounds.
//
// The package promises Postfix's observable behaviour: the same logical-line
// and name = value syntax, the same expansion results (including ?/:
// conditionals and relational expressions), the same order in which
// defaults become visible to $name references, and error and warning texts
// worded exactly as Postfix's fatal and warning messages, so that the caller
// can log them with the matching severity. Per-transport limits are read
// lazily through Config.Transport, as the queue manager reads them when it
// first meets a transport.
//
// It leaves logging, master.cf parsing and command-line handling to its
// callers, and imports nothing else of this module.
package conf
