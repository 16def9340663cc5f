package maillog

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestFormatDelay(t *testing.T) {
	tests := []struct {
		in         time.Duration
		resolution int
		want       string
	}{
		// The examples of the per-recipient log format.
		{0, 2, "0"},
		{10 * time.Millisecond, 2, "0.01"},
		{230 * time.Millisecond, 2, "0.23"},
		{1200 * time.Millisecond, 2, "1.2"},
		{45 * time.Second, 2, "45"},

		{2 * time.Millisecond, 2, "0"},    // below the resolution
		{5 * time.Millisecond, 2, "0.01"}, // rounds half up
		{4999 * time.Microsecond, 2, "0"},
		{200 * time.Millisecond, 2, "0.2"}, // trailing zero dropped
		{234567 * time.Microsecond, 2, "0.23"},
		{995 * time.Millisecond, 2, "1"}, // carries into the seconds
		{1050 * time.Millisecond, 2, "1.1"},
		{9960 * time.Millisecond, 2, "10"},
		{9940 * time.Millisecond, 2, "9.9"},
		{10500 * time.Millisecond, 2, "11"},
		{3*time.Hour + 400*time.Millisecond, 2, "10800"},
		{1234 * time.Microsecond, 3, "0.001"}, // two significant digits, but at most three decimals
		{1234 * time.Microsecond, 6, "0.0012"},
		{12 * time.Microsecond, 6, "0.000012"},
		{230 * time.Millisecond, 0, "0"}, // limit 0 shows whole seconds
		{700 * time.Millisecond, 0, "1"},
		{1200 * time.Millisecond, 0, "1"},
		{1200 * time.Millisecond, 1, "1.2"},
		{-time.Second, 2, "0"},
		{230 * time.Millisecond, 9, "0.23"}, // resolution clamped to 6
		{230 * time.Millisecond, -1, "0"},   // resolution clamped to 0
	}
	for _, tt := range tests {
		got := FormatDelay(tt.in, tt.resolution)
		assert.Equal(t, tt.want, got, "FormatDelay(%v, %d)", tt.in, tt.resolution)
	}
}

func TestFormatAddress(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"", ""},
		{"user@example.com", "user@example.com"},
		{"first.last@example.com", "first.last@example.com"},
		{"user+tag@example.com", "user+tag@example.com"},
		{"postmaster", "postmaster"},
		{"foo bar@example.com", `"foo bar"@example.com`},
		{"a..b@example.com", `"a..b"@example.com`},
		{".user@example.com", `".user"@example.com`},
		{"user.@example.com", `"user."@example.com`},
		{"a@b@example.com", `"a@b"@example.com`},
		{`say"hi"@example.com`, `"say\"hi\""@example.com`},
		{`back\slash@example.com`, `"back\\slash"@example.com`},
		{"a(b)@example.com", `"a(b)"@example.com`},
		{"a,b;c:d@example.com", `"a,b;c:d"@example.com`},
		{"a[b]@example.com", `"a[b]"@example.com`},
		{"tab\there@example.com", "\"tab\there\"@example.com"},
		{"cr\rhere@example.com", "\"cr\\\rhere\"@example.com"},
		{"@example.com", `""@example.com`},
		{"jöran@example.com", "jöran@example.com"}, // 8-bit text is left alone
		{"@relay.example:foo bar@example.com", `@relay.example:"foo bar"@example.com`},
		{"@relay.example:user@example.com", "@relay.example:user@example.com"},
	}
	for _, tt := range tests {
		got := FormatAddress(tt.in)
		assert.Equal(t, tt.want, got, "FormatAddress(%q)", tt.in)
	}
}

func TestPrintable(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"plain text", "plain text"},
		{"new\nline", "new?line"},
		{"tab\tand\x7f", "tab?and?"},
		{"jöran", "jöran"},
		{"lone \xff byte", "lone ? byte"},
		{"cut \xc3", "cut ?"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, printable(tt.in), "printable(%q)", tt.in)
	}
}
