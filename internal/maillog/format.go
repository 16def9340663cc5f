package maillog

import (
	"strconv"
	"strings"
	"time"
)

// FormatAddress quotes the local part of addr where RFC 5321 needs it, for
// info_log_address_format = external. It follows quote_822_local in
// Postfix with 8-bit text left alone: a local part that is not a plain
// dot-atom string is put in double quotes, and '"', '\\' and CR inside it
// get a backslash. The domain and any source route stay as they are. The
// null sender stays empty, so it logs as "<>".
func FormatAddress(addr string) string {
	if addr == "" {
		return ""
	}

	// Skip a source route such as "@a,@b:user@c".
	start := 0
	if addr[0] == '@' {
		if colon := strings.IndexByte(addr, ':'); colon >= 0 {
			start = colon + 1
		}
	}
	end := len(addr)
	if at := strings.LastIndexByte(addr[start:], '@'); at >= 0 {
		end = start + at
	}

	local := addr[start:end]
	if isDotString(local) {
		return addr
	}
	var b strings.Builder
	b.WriteString(addr[:start])
	b.WriteByte('"')
	for i := 0; i < len(local); i++ {
		c := local[i]
		if c == '"' || c == '\\' || c == '\r' {
			b.WriteByte('\\')
		}
		b.WriteByte(c)
	}
	b.WriteByte('"')
	b.WriteString(addr[end:])
	return b.String()
}

// isDotString reports whether local is a sequence of atoms separated by
// single dots, with 8-bit bytes allowed.
func isDotString(local string) bool {
	if local == "" || local[0] == '.' || local[len(local)-1] == '.' || strings.Contains(local, "..") {
		return false
	}
	for i := 0; i < len(local); i++ {
		c := local[i]
		if c < 0x20 || c == 0x7f || c == ' ' || strings.IndexByte(`()<>@,;:\"[]`, c) >= 0 {
			return false
		}
	}
	return true
}

// FormatDelay formats a delay in seconds the way per-recipient log lines
// show it (format_tv with two significant digits). resolution is
// delay_logging_resolution_limit, the most decimals shown, clamped to 0..6.
// Delays of 10 s and more are whole seconds, delays from 1 s show one
// decimal, and shorter delays show two significant digits within the
// resolution. The value is rounded half up at the shown precision, and
// trailing zeros are dropped: 0, 0.01, 0.23, 1.2, 45. Negative delays
// show as 0, because Postfix clamps clock jumps backwards.
func FormatDelay(d time.Duration, resolution int) string {
	const (
		million   = 1_000_000
		sigDigits = 2
	)
	resolution = min(max(resolution, 0), 6)
	d = max(d, 0)
	sec := int64(d / time.Second)
	usec := int64(d % time.Second / time.Microsecond)

	// step is the value of the last printed digit, in microseconds.
	step := int64(million / pow10(resolution))
	if step < million {
		if sec > 0 {
			// One decimal below 10 s, none from 10 s on.
			scale := int64(1)
			for sec >= scale && scale <= pow10(sigDigits)/10 {
				scale *= 10
			}
			step = million / pow10(sigDigits) * scale
		} else {
			// Keep two significant digits of a sub-second delay.
			for usec >= pow10(sigDigits)*step {
				step *= 10
			}
		}
	}

	// Round half up at the chosen step.
	if step > 1 {
		usec += step / 2
		if usec >= million {
			sec++
			usec -= million
		}
	}

	s := strconv.FormatInt(sec, 10)
	if usec < step {
		return s
	}
	var b strings.Builder
	b.WriteString(s)
	b.WriteByte('.')
	for rest, unit := usec, int64(million/10); rest >= step && unit > 0; unit /= 10 {
		b.WriteByte(byte('0' + rest/unit))
		rest %= unit
	}
	return b.String()
}

func pow10(n int) int64 {
	p := int64(1)
	for range n {
		p *= 10
	}
	return p
}
