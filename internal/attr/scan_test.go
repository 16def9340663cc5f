package attr

import (
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestScan_StoresValues(t *testing.T) {
	input := "flags\x000\x00transport\x00smtp\x00offset\x0018446744073709551615\x00" +
		"time\x00AAEC/w==\x00status\x004294967295\x00protocol\x00x\x00\x00"

	var (
		flags, status int
		transport     string
		offset        int64
		data          []byte
	)
	err := NewReader(strings.NewReader(input), testLabel).Scan(
		Int("flags", &flags),
		Str("transport", &transport),
		Long("offset", &offset),
		Data("time", &data),
		Int("status", &status),
		Expect("protocol", "x"),
	)

	require.NoError(t, err)
	assert.Equal(t, 0, flags)
	assert.Equal(t, "smtp", transport)
	assert.Equal(t, int64(-1), offset)
	assert.Equal(t, []byte{0, 1, 2, 0xff}, data)
	assert.Equal(t, -1, status)
}

func TestScan_StrictErrors(t *testing.T) {
	tests := []struct {
		name    string
		input   string
		wantIs  error
		wantMsg string
	}{
		{"unexpected name", "flags\x000\x00nexthop\x00x\x00\x00", ErrProtocol,
			"unexpected attribute nexthop from private/test socket (expecting: transport)"},
		{"out of order", "transport\x00smtp\x00flags\x000\x00\x00", ErrProtocol,
			"unexpected attribute transport from private/test socket (expecting: flags)"},
		{"missing", "flags\x000\x00\x00", ErrProtocol,
			"missing attribute transport in input from private/test socket"},
		{"extra", "flags\x000\x00transport\x00smtp\x00extra\x00x\x00\x00", ErrProtocol,
			"unexpected attribute extra from private/test socket (expecting: (list terminator))"},
		{"table where attribute wanted", "{\x00}\x00\x00", ErrProtocol,
			"unexpected attribute { from private/test socket (expecting: flags)"},
		{"malformed number", "flags\x0012x\x00transport\x00smtp\x00\x00", ErrProtocol,
			"malformed numerical data from private/test socket while reading input attribute value: 12x"},
		{"negative number", "flags\x00-1\x00transport\x00smtp\x00\x00", ErrProtocol,
			"malformed numerical data from private/test socket while reading input attribute value: -1"},
		{"int overflow", "flags\x004294967296\x00transport\x00smtp\x00\x00", ErrProtocol,
			"malformed numerical data from private/test socket while reading input attribute value: 4294967296"},
		{"control characters shown as ?", "fl\x01gs\x000\x00\x00", ErrProtocol,
			"unexpected attribute fl?gs from private/test socket (expecting: flags)"},
		{"clean end", "", io.EOF, "end of input from private/test socket: EOF"},
		{"truncated", "flags\x000\x00trans", io.ErrUnexpectedEOF,
			"unexpected end-of-input from private/test socket while reading input attribute name: unexpected EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var flags int
			var transport string
			err := NewReader(strings.NewReader(tt.input), testLabel).Scan(
				Int("flags", &flags), Str("transport", &transport))
			require.Error(t, err)
			assert.ErrorIs(t, err, tt.wantIs)
			assert.EqualError(t, err, tt.wantMsg)
		})
	}
}

func TestScan_DataAndExpectErrors(t *testing.T) {
	tests := []struct {
		name    string
		input   string
		field   Field
		wantMsg string
	}{
		{"bad base64", "time\x00AA!=\x00\x00", Data("time", new([]byte)),
			"malformed base64 data from private/test socket while reading input attribute value: AA!="},
		{"base64 missing padding", "time\x00AAEC/w\x00\x00", Data("time", new([]byte)),
			"malformed base64 data from private/test socket while reading input attribute value: AAEC/w"},
		{"wrong protocol", "protocol\x00other\x00\x00", Expect("protocol", "trivial_rewrite_protocol"),
			"unexpected protocol other from private/test socket (expected: trivial_rewrite_protocol)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := NewReader(strings.NewReader(tt.input), testLabel).Scan(tt.field)
			assert.ErrorIs(t, err, ErrProtocol)
			assert.EqualError(t, err, tt.wantMsg)
		})
	}
}

func TestScan_BuilderRoundTrip(t *testing.T) {
	var b Builder
	b.Int("flags", -5)
	b.Long("size", 1<<33)
	b.Str("sender", "user@example.com")
	b.Data("time", make([]byte, 88))
	b.End()
	input, err := b.Bytes()
	require.NoError(t, err)

	var flags int
	var size int64
	var sender string
	var data []byte
	err = NewReader(strings.NewReader(string(input)), testLabel).Scan(
		Int("flags", &flags), Long("size", &size), Str("sender", &sender), Data("time", &data))

	require.NoError(t, err)
	assert.Equal(t, -5, flags)
	assert.Equal(t, int64(1<<33), size)
	assert.Equal(t, "user@example.com", sender)
	assert.Len(t, data, 88)
}
