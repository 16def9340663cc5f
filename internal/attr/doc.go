// Package attr owns the encoding of Postfix's attribute protocol in its
// default, NUL-terminated flavour (Postfix util/attr_print0.c and
// util/attr_scan0.c), which every daemon the queue manager talks to uses.
//
// A list on the wire is a sequence of name NUL value NUL pairs ended by one
// extra NUL. A "{" NUL ... "}" NUL bracket may hold a table of further pairs.
// Numbers are decimal: an int is the unsigned form of a 32-bit value and a
// long the unsigned form of a 64-bit value, so -1 travels as 4294967295 or
// 18446744073709551615. Binary data travels as standard base64.
//
// A [Builder] encodes lists. A [Reader] decodes them with a size bound on
// every name and value, and its strict [Reader.Scan] reports unexpected and
// missing attributes in Postfix's words. A [Conn] applies a deadline to each
// read and write on a connection.
// Request and reply formats belong to package transport.
package attr
