package queue

import (
	"fmt"
	"time"
)

// record handles one record of the envelope or extracted segment, after
// the type check. It reports whether the walk stops here because the
// recipient limit was reached.
func (w *walker) record(t RecordType, value string, offset int64) (bool, *FileError) {
	m := w.m
	var name string
	if t == RecAttr {
		attrName, attrValue, problem := splitAttr(value)
		if problem != "" {
			return false, w.fail(offset, fmt.Sprintf("%s: bad attribute record: %s: %s", m.ID, problem, truncate(value, 200)))
		}
		name = attrName
		if mapped := attrRecordType(attrName); mapped != 0 {
			t, value = mapped, attrValue
		} else {
			value = attrValue
		}
	}

	// A recipient's own records are handled before anything else, because
	// they are read again by ReadMore.
	switch t {
	case RecRcpt:
		return w.recipient(value, offset), nil
	case RecDone, RecDropRcpt:
		if !w.limitReached() {
			w.resetPending()
		}
		return false, nil
	case RecDSNOrcpt:
		if w.haveOrcpt {
			w.warn("%s: ignoring out-of-order DSN original recipient address <%s>", m.ID, truncate(w.dsnOrcpt, 200))
			w.haveOrcpt, w.dsnOrcpt = false, ""
		}
		if !w.limitReached() {
			w.haveOrcpt, w.dsnOrcpt = true, value
		}
		return false, nil
	case RecDSNNotify:
		if w.notify != 0 {
			w.warn("%s: ignoring out-of-order DSN notify flags <%d>", m.ID, w.notify)
			w.notify = 0
		}
		if !w.limitReached() {
			n := atoi(value)
			if !alldig(value) || n == 0 || !notifyOK(n) {
				w.warn("%s: ignoring malformed DSN notify flags <%s>", m.ID, truncate(value, 200))
			} else {
				w.notify = n
			}
			return false, nil
		}
	case RecOrigRcpt:
		if w.haveOrig {
			w.warn("%s: ignoring out-of-order original recipient <%s>", m.ID, truncate(w.origRcpt, 200))
			w.haveOrig, w.origRcpt = false, ""
		}
		if !w.limitReached() {
			w.haveOrig, w.origRcpt = true, value
		}
		return false, nil
	}

	if w.seenAllNonRcpt {
		return false, nil
	}
	return false, w.envelope(t, name, value, offset)
}

// limitReached reports whether this pass stopped collecting recipients.
func (w *walker) limitReached() bool { return w.m.NextRecipientOffset != 0 }

func (w *walker) resetPending() {
	w.haveOrig, w.origRcpt = false, ""
	w.haveOrcpt, w.dsnOrcpt = false, ""
	w.notify = 0
}

// recipient adds an R record to the batch and applies the recipient limit.
func (w *walker) recipient(address string, offset int64) bool {
	m := w.m
	if w.limitReached() {
		return false
	}
	m.Recipients = append(m.Recipients, Recipient{
		Address:     address,
		OrigAddress: w.origRcpt,
		DSNOrig:     w.dsnOrcpt,
		Notify:      w.notify,
		Offset:      offset,
	})
	w.resetPending()
	if w.rcptLimit <= 0 || len(m.Recipients) < w.rcptLimit {
		return false
	}

	// The batch is full. Remember where the next one starts, then decide
	// how much of the file still needs reading for non-recipient records.
	m.NextRecipientOffset = w.r.pos
	switch {
	case w.seenAllNonRcpt:
		return true
	case m.ReadFlags&ReadFlagMixed != 0:
		return false // read on, skipping recipients
	case offset > w.contentOffset:
		// Already in the extracted segment, and nothing but recipients
		// follows.
		w.seenAllNonRcpt = true
		return true
	default:
		// Skip the remaining envelope recipients: jump to the content
		// start, which the loop skips in turn, and read the extracted
		// segment.
		w.r.pos = w.contentOffset
		return false
	}
}

// envelope handles a non-recipient record.
func (w *walker) envelope(t RecordType, name, value string, offset int64) *FileError {
	m := w.m
	switch t {
	case RecSize:
		return w.size(value, offset)
	case RecTime:
		if w.arrivalSec == 0 {
			sec, usec := scanTime(value)
			w.arrivalSec = sec
			m.Arrival = time.Unix(sec, 0).Add(time.Duration(usec) * time.Microsecond)
		}
	case RecCTime:
		if w.createTime == 0 {
			w.createTime = atol(value)
		}
	case RecFilter:
		m.Filter = value
	case RecInspect:
		m.Inspect = true
	case RecRedirect:
		m.Redirect = value
	case RecFrom:
		if !m.HasSender {
			m.Sender, m.HasSender = value, true
		}
	case RecDSNEnvID:
		m.EnvelopeID = value
	case RecDSNRet:
		n := atoi(value)
		if !alldig(value) || n == 0 || (n != RetFull && n != RetHdrs) {
			w.warn("%s: ignoring malformed DSN RET flags in queue file record:%s", m.ID, truncate(value, 100))
		} else {
			m.RetFlags = n
		}
	case RecAttr:
		w.attribute(name, value, offset)
	case RecWarn:
		if m.WarnOffset == 0 {
			m.WarnOffset = offset
			m.WarnTime = atol(value)
		}
	case RecVERP:
		w.verp(value)
	}
	return nil
}

// size parses the size record (only the first one counts).
func (w *walker) size(value string, offset int64) *FileError {
	m := w.m
	if w.contentOffset == 0 {
		fields := sizeFields{readFlags: m.ReadFlags}
		count := scanSize(value, &fields)
		switch {
		case count >= 3:
			if fields.contentOffset <= 0 || fields.contentSpan <= 0 {
				return w.fail(offset, fmt.Sprintf("%s: invalid size record: %s", m.ID, truncate(value, 100)))
			}
			if fields.readFlags&^readFlagUserMask != 0 {
				return w.fail(offset, fmt.Sprintf("%s: invalid flags in size record: %s", m.ID, truncate(value, 100)))
			}
			w.contentOffset, w.contentLength = fields.contentOffset, fields.contentSpan
			m.RcptCount, m.ReadFlags = fields.rcptCount, fields.readFlags
			m.DataSize, m.SMTPUTF8 = fields.contentLength, fields.smtputf8
		case count == 1:
			if ferr := w.oldStyleSize(offset); ferr != nil {
				return ferr
			}
		default:
			return w.fail(offset, fmt.Sprintf("%s: message rejected: weird size record", m.ID))
		}
		m.ContentOffset, m.ContentLength = w.contentOffset, w.contentLength
	}
	if m.DataSize == 0 {
		m.DataSize = w.contentLength
	} else if m.DataSize < 0 {
		return w.fail(offset, fmt.Sprintf("%s: invalid size record: %s", m.ID, truncate(value, 100)))
	}
	return nil
}

// scanTime parses a T record as REC_TYPE_TIME_SCAN does: the seconds, then
// the microseconds from wherever the leading digits end.
func scanTime(value string) (sec, usec int64) {
	sec = atol(value)
	i := 0
	for i < len(value) && isDigit(value[i]) {
		i++
	}
	return sec, atol(value[i:])
}

func notifyOK(n int) bool {
	const any = NotifySuccess | NotifyFailure | NotifyDelay
	return n == NotifyNever || n == n&any
}

// attrRecordType maps the named attributes that stand for record types
// (rec_attr_map).
func attrRecordType(name string) RecordType {
	switch name {
	case "dsn_orig_rcpt":
		return RecDSNOrcpt
	case "notify_flags":
		return RecDSNNotify
	case "envelope_id":
		return RecDSNEnvID
	case "ret_flags":
		return RecDSNRet
	case "create_time":
		return RecCTime
	}
	return 0
}
