package queue

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// RecordType is the first byte of a queue file record (rec_type.h). One
// letter can mean different things in different segments: 'L' is the
// content filter in the envelope but a partial text line in the content.
type RecordType byte

// Record types written by cleanup(8) and read by the queue manager.
const (
	RecSize      RecordType = 'C' // size record, always first
	RecTime      RecordType = 'T' // arrival time "sec usec"
	RecCTime     RecordType = 'c' // create time (normally an A create_time record)
	RecFullName  RecordType = 'F' // sender full name
	RecInspect   RecordType = 'I' // inspector transport
	RecFilter    RecordType = 'L' // content filter, in envelope and extracted segments
	RecFrom      RecordType = 'S' // envelope sender
	RecDone      RecordType = 'D' // recipient already delivered
	RecRcpt      RecordType = 'R' // recipient still to deliver
	RecOrigRcpt  RecordType = 'O' // original recipient of the next R
	RecDropRcpt  RecordType = '/' // cancelled recipient
	RecWarn      RecordType = 'W' // time of the next delay warning, -1 once sent
	RecAttr      RecordType = 'A' // named attribute "name=value"
	RecKill      RecordType = 'K' // record hidden by overwriting its type
	RecRedirect  RecordType = '>' // redirect address
	RecMessage   RecordType = 'M' // end of envelope, start of content
	RecCont      RecordType = 'L' // content: partial line continued by the next record
	RecNorm      RecordType = 'N' // content: one line
	RecPadding   RecordType = 'w' // content: padding
	RecExtract   RecordType = 'X' // end of content, start of extracted segment
	RecRRTo      RecordType = 'r' // Return-Receipt-To (unused)
	RecErrorsTo  RecordType = 'e' // Errors-To (unused)
	RecPriority  RecordType = 'P' // priority (unused)
	RecPointer   RecordType = 'p' // "%15ld" absolute offset to continue at, 0 = placeholder
	RecVERP      RecordType = 'V' // VERP delimiters
	RecDSNRet    RecordType = '<' // DSN RET (normally A ret_flags)
	RecDSNEnvID  RecordType = 'i' // DSN ENVID (normally A envelope_id)
	RecDSNOrcpt  RecordType = 'o' // DSN ORCPT of the next R (normally A dsn_orig_rcpt)
	RecDSNNotify RecordType = 'n' // DSN NOTIFY of the next R (normally A notify_flags)
	RecEnd       RecordType = 'E' // end of the logical record stream
)

// Record types the queue manager accepts outside the message content
// (REC_TYPE_ENVELOPE and REC_TYPE_EXTRACT), and at the content end.
const (
	envelopeAndExtractTypes = "MCTcFILSDRO/WVA>K<ion" + "EDRO/PreAFIL>Kon"
	contentEndTypes         = "X"
)

// maxLengthShift is the bit shift at which the C record reader rejects a
// length as too long for an int, so at most 5 length bytes (Postfix 3.7).
const maxLengthShift = 32

// recordReader reads records from a queue file at explicit offsets, so
// that the envelope walk can follow pointer records and skip the content.
type recordReader struct {
	f    *os.File
	path string // for warnings, as Postfix names the file
	pos  int64

	buf      []byte
	bufStart int64
}

const readChunk = 8192

// chunkPool recycles the read buffers of finished walks, so that reading
// thousands of files a second does not make as many 8 KiB allocations.
var chunkPool = sync.Pool{New: func() any { return new([readChunk]byte) }}

// release returns the read buffer to chunkPool; the reader must not be
// used afterwards. Nothing read escapes the buffer: readFull copies.
func (r *recordReader) release() {
	if cap(r.buf) == readChunk {
		chunkPool.Put((*[readChunk]byte)(r.buf[:readChunk]))
	}
	r.buf = nil
}

// readByte returns the byte at the current position and advances.
func (r *recordReader) readByte() (byte, error) {
	if r.pos < r.bufStart || r.pos >= r.bufStart+int64(len(r.buf)) {
		if err := r.fill(); err != nil {
			return 0, err
		}
	}
	c := r.buf[r.pos-r.bufStart]
	r.pos++
	return c, nil
}

func (r *recordReader) fill() error {
	if r.pos < 0 {
		// A size record can push the position past the largest offset.
		// NOTE: the C queue manager exits with a fatal seek error here;
		// we report the file as truncated instead.
		return io.EOF
	}
	if cap(r.buf) < readChunk {
		r.buf = chunkPool.Get().(*[readChunk]byte)[:]
	}
	n, err := r.f.ReadAt(r.buf[:readChunk], r.pos)
	r.buf = r.buf[:n]
	r.bufStart = r.pos
	if n > 0 {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return io.EOF
	}
	return err
}

// readFull reads n bytes at the current position. It returns io.EOF when
// the file ends first.
func (r *recordReader) readFull(n int64) ([]byte, error) {
	out := make([]byte, 0, min(n, 1<<16))
	for int64(len(out)) < n {
		if r.pos < r.bufStart || r.pos >= r.bufStart+int64(len(r.buf)) {
			if err := r.fill(); err != nil {
				return out, err
			}
		}
		avail := r.buf[r.pos-r.bufStart:]
		take := min(int64(len(avail)), n-int64(len(out)))
		out = append(out, avail[:take]...)
		r.pos += take
	}
	return out, nil
}

// recordStatus is how reading one record ended, mirroring the C
// reader's REC_TYPE_EOF and REC_TYPE_ERROR results.
type recordStatus int

const (
	recordOK recordStatus = iota
	recordEOF
	recordBad
)

// readRecord reads one raw record at the current position, as rec_get_raw
// does without any transparency options. For a framing error it returns
// recordBad and the warning Postfix logs for it. An I/O error other than
// end of file is returned as err.
func (r *recordReader) readRecord() (t RecordType, data []byte, status recordStatus, warning string, err error) {
	c, err := r.readByte()
	if errors.Is(err, io.EOF) {
		return 0, nil, recordEOF, "", nil
	}
	if err != nil {
		return 0, nil, recordBad, "", err
	}
	t = RecordType(c)

	var length int64
	for shift := 0; ; shift += 7 {
		if shift >= maxLengthShift {
			return t, nil, recordBad, fmt.Sprintf("%s: too many length bits, record type %d", r.path, c), nil
		}
		lb, err := r.readByte()
		if errors.Is(err, io.EOF) {
			return t, nil, recordBad, fmt.Sprintf("%s: unexpected EOF reading length, record type %d", r.path, c), nil
		}
		if err != nil {
			return t, nil, recordBad, "", err
		}
		length |= int64(lb&0x7f) << shift
		if lb&0x80 == 0 {
			break
		}
	}

	// The C reader accumulates the length in an int (32 bits on Linux), so
	// a fifth length byte can make it negative.
	if length32 := int32(uint32(length)); length32 < 0 {
		return t, nil, recordBad, fmt.Sprintf("%s: illegal length %d, record type %d", r.path, length32, c), nil
	}
	length = int64(uint32(length))

	data, err = r.readFull(length)
	if errors.Is(err, io.EOF) {
		return t, nil, recordBad, fmt.Sprintf("%s: unexpected EOF in data, record type %d length %d", r.path, c, length), nil
	}
	if err != nil {
		return t, nil, recordBad, "", err
	}
	return t, data, recordOK, "", nil
}
