package queue

import (
	"fmt"
	"strings"
)

// defaultVERPFilter is the default of verp_delimiter_filter.
const defaultVERPFilter = "-=+"

// attribute handles a named attribute that does not stand for a record
// type. Attributes that the queue manager does not use are ignored.
func (w *walker) attribute(name, value string, offset int64) {
	m := w.m
	switch name {
	case "encoding":
		m.Encoding = value

	// Before Postfix 2.3 the logging attributes were called client_name
	// and so on. Those names now hold the real client, so they count only
	// in files without any log_* attribute.
	case "client_name":
		w.legacyClient(0, &m.LogClientName, value)
	case "client_address":
		w.legacyClient(1, &m.LogClientAddress, value)
	case "client_port":
		w.legacyClient(2, &m.LogClientPort, value)
	case "protocol_name":
		w.legacyClient(3, &m.LogProtocolName, value)
	case "helo_name":
		w.legacyClient(4, &m.LogHeloName, value)

	case "log_client_name":
		m.LogClientName, w.seen.logClientAttr = value, true
	case "log_client_address":
		m.LogClientAddress, w.seen.logClientAttr = value, true
	case "log_client_port":
		m.LogClientPort, w.seen.logClientAttr = value, true
	case "log_protocol_name":
		m.LogProtocolName, w.seen.logClientAttr = value, true
	case "log_helo_name":
		m.LogHeloName, w.seen.logClientAttr = value, true

	case "sasl_method":
		w.firstWins(name, &w.seen.sasl[0], &m.SASLMethod, value)
	case "sasl_username":
		w.firstWins(name, &w.seen.sasl[1], &m.SASLUsername, value)
	case "sasl_sender":
		w.firstWins(name, &w.seen.sasl[2], &m.SASLSender, value)
	case "log_ident":
		w.firstWins(name, &w.seen.logIdent, &m.LogIdent, value)
	case "rewrite_context":
		w.firstWins(name, &w.seen.rewriteContext, &m.RewriteContext, value)

	case "trace_flags":
		// The first record whose value keeps any known bit wins.
		if m.TraceFlags == 0 {
			m.TraceFlags = atoi(value) & traceFlagsMask
			m.TraceFlagsOffset = 0
			if m.TraceFlags == TraceRecord {
				m.TraceFlagsOffset = offset
			}
		}
	}
}

// legacyClient sets a logging attribute from its pre-2.3 name. The first
// such record counts, unless a log_* attribute came earlier.
func (w *walker) legacyClient(index int, field *string, value string) {
	if w.seen.logClientAttr || w.seen.legacyClient[index] {
		return
	}
	*field = value
	w.seen.legacyClient[index] = true
}

func (w *walker) firstWins(name string, seen *bool, field *string, value string) {
	if *seen {
		w.warn("%s: ignoring multiple %s attribute: %s", w.m.ID, name, value)
		return
	}
	*field, *seen = value, true
}

// verp handles a V record: the first valid one enables VERP, but only for a
// non-null sender seen before it.
func (w *walker) verp(value string) {
	m := w.m
	if w.seen.verp {
		return
	}
	switch {
	case m.Sender == "":
		w.warn("%s: ignoring VERP request for null sender", m.ID)
	case !validVERP(value, defaultVERPFilter):
		w.warn("%s: ignoring bad VERP request: \"%s\"", m.ID, truncate(value, 100))
	default:
		m.VERP, w.seen.verp = value, true
	}
}

// validVERP mirrors verp_delims_verify: exactly two characters, each one
// allowed by the filter.
// TODO(postfix): verp_delims_verify uses the configured
// verp_delimiter_filter; we check against its default "-=+".
func validVERP(delims, filter string) bool {
	return len(delims) == 2 &&
		strings.IndexByte(filter, delims[0]) >= 0 &&
		strings.IndexByte(filter, delims[1]) >= 0
}

// oldStyleSize derives the content position of a pre-1.0 queue file, whose
// size record holds one number, from its M record (which then holds the
// offset of the extracted segment), as qmgr_message_oldstyle_scan does.
//
// NOTE: the C queue manager exits with a fatal error where this returns a
// *FileError; master(8) then restarts it and it meets the same file again.
func (w *walker) oldStyleSize(offset int64) *FileError {
	m := w.m
	saved := w.r.pos
	defer func() { w.r.pos = saved }()

	w.r.pos = 0
	var last RecordType
	for {
		t, data, status, _, err := w.r.readRecord()
		if err != nil || status != recordOK || t == 0 {
			last = 0
			break
		}
		last = t
		if t == RecPointer {
			if w.jump(w.r.pos, cString(data)) != nil {
				w.lines = nil // the scan reports its own failure below
				last = 0
				break
			}
			continue
		}
		if t == RecEnd {
			break
		}
		if t == RecMessage && w.contentOffset == 0 {
			w.contentOffset = w.r.pos
			extra := atol(cString(data))
			if extra <= w.contentOffset {
				return w.fail(offset, fmt.Sprintf("bad extra offset %s file %s", cString(data), m.Path))
			}
			w.contentLength = extra - w.contentOffset
			w.r.pos = extra
		}
	}
	if w.contentOffset == 0 || last != RecEnd {
		return w.fail(offset, fmt.Sprintf("%s: envelope records out of order", m.ID))
	}
	return nil
}
