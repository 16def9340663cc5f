package attr

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const testLabel = "private/test socket"

func TestReadList_Decodes(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  []Attr
	}{
		{"empty list", "\x00", nil},
		{"pairs", "a\x001\x00b\x00\x00\x00", []Attr{{Name: "a", Value: "1"}, {Name: "b", Value: ""}}},
		{"duplicate names kept", "status\x00\x00status\x000\x00\x00",
			[]Attr{{Name: "status"}, {Name: "status", Value: "0"}}},
		{"table", "x\x001\x00{\x00k\x00v\x00k2\x00v2\x00}\x00y\x002\x00\x00", []Attr{
			{Name: "x", Value: "1"},
			{Name: TableOpen, Table: []Attr{{Name: "k", Value: "v"}, {Name: "k2", Value: "v2"}}},
			{Name: "y", Value: "2"},
		}},
		{"empty table", "{\x00}\x00\x00", []Attr{{Name: TableOpen, Table: []Attr{}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(strings.NewReader(tt.input), testLabel)
			got, err := r.ReadList()
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)

			_, err = r.ReadList()
			assert.ErrorIs(t, err, io.EOF, "input should be fully consumed")
		})
	}
}

func TestReadList_Errors(t *testing.T) {
	tests := []struct {
		name    string
		input   string
		wantIs  error
		wantMsg string
	}{
		{"clean end", "", io.EOF, "end of input from private/test socket: EOF"},
		{"end inside name", "sta", io.ErrUnexpectedEOF,
			"unexpected end-of-input from private/test socket while reading input attribute name: unexpected EOF"},
		{"end after name", "status\x00", io.ErrUnexpectedEOF,
			"premature end-of-input on private/test socket while reading input attribute value: unexpected EOF"},
		{"end before terminator", "status\x000\x00", io.ErrUnexpectedEOF,
			"premature end-of-input on private/test socket while reading input attribute name: unexpected EOF"},
		{"close without open", "}\x00\x00", ErrProtocol,
			"unexpected '}' without '{' in input from private/test socket"},
		{"terminator inside table", "{\x00k\x00v\x00\x00", ErrProtocol,
			"missing '}' at end of table in input from private/test socket"},
		{"nested table", "{\x00{\x00}\x00}\x00\x00", ErrProtocol,
			"nested '{' in input from private/test socket"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewReader(strings.NewReader(tt.input), testLabel).ReadList()
			require.Error(t, err)
			assert.ErrorIs(t, err, tt.wantIs)
			assert.EqualError(t, err, tt.wantMsg)
		})
	}
}

func TestReadList_Limits(t *testing.T) {
	longValue := strings.Repeat("x", MaxValueSize+1)
	tooManyAttrs := strings.Repeat("a\x00b\x00", MaxListAttrs+1) + "\x00"
	tooManyEntries := "{\x00" + strings.Repeat("k\x00v\x00", MaxTableEntries+1) + "}\x00\x00"

	tests := []struct {
		name    string
		input   string
		wantMsg string
	}{
		{"value one byte over", "v\x00" + longValue + "\x00\x00",
			"input attribute value from private/test socket exceeds 1048576 bytes"},
		{"name one byte over", longValue + "\x00v\x00\x00",
			"input attribute name from private/test socket exceeds 1048576 bytes"},
		{"value never terminated", "v\x00" + longValue + longValue,
			"input attribute value from private/test socket exceeds 1048576 bytes"},
		{"too many attributes", tooManyAttrs,
			"attribute count exceeds limit 1024 in input from private/test socket"},
		{"too many table entries", tooManyEntries,
			"attribute count exceeds limit 1024 in input from private/test socket"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewReader(strings.NewReader(tt.input), testLabel).ReadList()
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrTooLong)
			assert.ErrorIs(t, err, ErrProtocol)
			assert.EqualError(t, err, tt.wantMsg)
		})
	}
}

func TestReadList_AcceptsMaximumValue(t *testing.T) {
	value := strings.Repeat("x", MaxValueSize)
	r := NewReader(strings.NewReader("v\x00"+value+"\x00\x00"), testLabel)

	got, err := r.ReadList()
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Len(t, got[0].Value, MaxValueSize)
}

// endlessReader returns the same byte forever, like a peer that keeps
// sending one value without a terminator.
type endlessReader struct{ read int }

func (e *endlessReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	e.read += len(p)
	return len(p), nil
}

func TestReadList_EndlessValueStops(t *testing.T) {
	src := &endlessReader{}
	_, err := NewReader(io.MultiReader(strings.NewReader("v\x00"), src), testLabel).ReadList()

	assert.ErrorIs(t, err, ErrTooLong)
	assert.Less(t, src.read, 2*MaxValueSize, "reader should stop soon after the limit")
}

func TestReadList_ConsecutiveLists(t *testing.T) {
	var b Builder
	b.Str("protocol", "delivery_status_protocol")
	b.End()
	b.Int("status", 0)
	b.End()
	input, err := b.Bytes()
	require.NoError(t, err)

	r := NewReader(bytes.NewReader(input), testLabel)
	first, err := r.ReadList()
	require.NoError(t, err)
	second, err := r.ReadList()
	require.NoError(t, err)

	assert.Equal(t, []Attr{{Name: "protocol", Value: "delivery_status_protocol"}}, first)
	assert.Equal(t, []Attr{{Name: "status", Value: "0"}}, second)
}
