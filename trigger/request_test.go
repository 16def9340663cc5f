package trigger

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Request
	}{
		{"empty", "", 0},
		{"wakeup from socket", "W\x00", ScanIncoming},
		{"wakeup from fifo", "W", ScanIncoming},
		{"incoming", "I\x00", ScanIncoming},
		{"deferred", "D\x00", ScanDeferred},
		{"flush dead", "F\x00", FlushDead},
		{"scan all", "A\x00", ScanAll},
		{"postqueue flush", "FADI\x00", ScanIncoming | ScanDeferred | ScanAll | FlushDead},
		{"order does not matter", "IDAF", ScanIncoming | ScanDeferred | ScanAll | FlushDead},
		{"duplicates collapse", "IIIWWW\x00I", ScanIncoming},
		{"garbage only", "xyz\x00\xff\n", 0},
		{"lower case is unknown", "ifadw", 0},
		{"garbage around requests", "zzDzz", ScanDeferred},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Parse([]byte(tt.in))
			assert.Equal(t, tt.want, got, "Parse(%q) = %v, want %v", tt.in, got, tt.want)
		})
	}
}

func TestRequestString(t *testing.T) {
	tests := []struct {
		in   Request
		want string
	}{
		{0, "none"},
		{ScanIncoming, "ScanIncoming"},
		{ScanIncoming | FlushDead, "ScanIncoming|FlushDead"},
		{ScanIncoming | ScanDeferred | ScanAll | FlushDead, "ScanIncoming|ScanDeferred|ScanAll|FlushDead"},
		{ScanDeferred | 0x80, "ScanDeferred|Request(0x80)"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, tt.in.String(), "Request(%#x).String()", uint8(tt.in))
	}
}

func TestRequestHas(t *testing.T) {
	r := ScanIncoming | ScanAll
	assert.True(t, r.Has(ScanIncoming))
	assert.True(t, r.Has(ScanIncoming|ScanAll))
	assert.False(t, r.Has(ScanDeferred))
	assert.False(t, r.Has(ScanIncoming|FlushDead))
}

// fuzzReference lists the request bytes of Postfix's mail_proto.h.
var fuzzReference = map[byte]Request{
	'W': ScanIncoming,
	'I': ScanIncoming,
	'D': ScanDeferred,
	'A': ScanAll,
	'F': FlushDead,
}

func FuzzParse(f *testing.F) {
	for _, seed := range []string{"", "W\x00", "I\x00", "FADI\x00", "D", "garbage\xff\x00"} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got := Parse(b)

		// The result is exactly the union of the per-byte requests, so it
		// never depends on order or repetition.
		var want Request
		for _, c := range b {
			want |= fuzzReference[c]
		}
		if got != want {
			t.Fatalf("Parse(%q) = %v, want %v", b, got, want)
		}
		if got&^(ScanIncoming|ScanDeferred|ScanAll|FlushDead) != 0 {
			t.Fatalf("Parse(%q) = %#x has unknown bits", b, uint8(got))
		}
		reversed := make([]byte, len(b))
		for i, c := range b {
			reversed[len(b)-1-i] = c
		}
		if r := Parse(reversed); r != got {
			t.Fatalf("Parse(reversed %q) = %v, want %v", b, r, got)
		}
	})
}
