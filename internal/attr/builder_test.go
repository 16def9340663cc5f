package attr

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBuilder_Encoding(t *testing.T) {
	tests := []struct {
		name  string
		build func(b *Builder)
		want  string
	}{
		{"string", func(b *Builder) { b.Str("sender", "a@b") }, "sender\x00a@b\x00\x00"},
		{"empty string", func(b *Builder) { b.Str("encoding", "") }, "encoding\x00\x00\x00"},
		{"int", func(b *Builder) { b.Int("flags", 4096) }, "flags\x004096\x00\x00"},
		{"negative int", func(b *Builder) { b.Int("status", -1) }, "status\x004294967295\x00\x00"},
		{"long", func(b *Builder) { b.Long("offset", 1<<40) }, "offset\x001099511627776\x00\x00"},
		{"negative long", func(b *Builder) { b.Long("offset", -1) }, "offset\x0018446744073709551615\x00\x00"},
		{"data", func(b *Builder) { b.Data("time", []byte{0, 1, 2, 0xff}) }, "time\x00AAEC/w==\x00\x00"},
		{"table", func(b *Builder) { b.Table([]Attr{{Name: "k", Value: "v"}}) }, "{\x00k\x00v\x00}\x00\x00"},
		{"empty list", func(b *Builder) {}, "\x00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b Builder
			tt.build(&b)
			b.End()
			got, err := b.Bytes()
			require.NoError(t, err)
			assert.Equal(t, tt.want, string(got))
		})
	}
}

func TestBuilder_RejectsUnencodable(t *testing.T) {
	tests := []struct {
		name  string
		build func(b *Builder)
	}{
		{"NUL in value", func(b *Builder) { b.Str("sender", "a\x00b") }},
		{"NUL in name", func(b *Builder) { b.Str("se\x00nder", "x") }},
		{"empty name", func(b *Builder) { b.Int("", 1) }},
		{"table bracket as name", func(b *Builder) { b.Str("}", "x") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b Builder
			b.Str("first", "ok")
			tt.build(&b)
			b.Str("last", "ok")
			_, err := b.Bytes()
			assert.ErrorIs(t, err, ErrInvalid)
		})
	}
}

func TestBuilder_ResetClearsError(t *testing.T) {
	var b Builder
	b.Str("x", "\x00")
	b.Reset()
	b.Str("x", "y")
	b.End()

	got, err := b.Bytes()
	require.NoError(t, err)
	assert.Equal(t, "x\x00y\x00\x00", string(got))
}
