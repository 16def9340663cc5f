package queue

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// damageBase is a real queue file written by cleanup(8) of Postfix 3.7.11
// (sendmail submission). Offsets below refer to its records:
// 97 T, 176 A rewrite_context=local (23 bytes), 199 F "root", 205 S,
// 487 R c@dest.example, 503 M, 505 first content record, 803 X,
// 843 R archive@dest.example (22 bytes), 865 E.
const damageBase = "testdata/real/34B96984C21"

type damageCase struct {
	name   string
	id     ID
	damage func(t *testing.T, file []byte) []byte
	offset int64
	lines  []string
}

// The expected lines were checked against the C oqmgr of Postfix 3.7.11,
// which logged them for these files after moving each to the active queue.
var damageCases = []damageCase{
	{
		name: "truncated inside envelope recipient", id: "DAMAGE01",
		damage: func(t *testing.T, b []byte) []byte { return b[:495] },
		offset: 487,
		lines: []string{
			"active/DAMAGE01: unexpected EOF in data, record type 82 length 14",
			"DAMAGE01: message rejected: missing end record",
		},
	},
	{
		name: "missing end record", id: "DAMAGE02",
		damage: func(t *testing.T, b []byte) []byte { return b[:865] },
		offset: 865,
		lines:  []string{"DAMAGE02: message rejected: missing end record"},
	},
	{
		name: "too many length bytes", id: "DAMAGE03",
		damage: func(t *testing.T, b []byte) []byte {
			return splice(t, b, 199, 6, []byte{'F', 0x80, 0x80, 0x80, 0x80, 0x80, 0x80})
		},
		offset: 199,
		lines: []string{
			"active/DAMAGE03: too many length bits, record type 70",
			"DAMAGE03: message rejected: missing end record",
		},
	},
	{
		name: "negative length", id: "DAMAGE04",
		damage: func(t *testing.T, b []byte) []byte {
			return splice(t, b, 199, 6, []byte{'F', 0x80, 0x80, 0x80, 0x80, 0x08})
		},
		offset: 199,
		lines: []string{
			"active/DAMAGE04: illegal length -2147483648, record type 70",
			"DAMAGE04: message rejected: missing end record",
		},
	},
	{
		name: "unknown record type", id: "DAMAGE05",
		damage: func(t *testing.T, b []byte) []byte { return setByte(b, 199, 'Z') },
		offset: 199,
		lines:  []string{"Unexpected record type 'Z' at offset 199"},
	},
	{
		name: "content span two bytes short", id: "DAMAGE06",
		damage: func(t *testing.T, b []byte) []byte {
			return setSize(t, b, sizeText(296, 505, 4, 28, 298, 0))
		},
		offset: 801,
		lines:  []string{"Unexpected record type 't' at offset 801"},
	},
	{
		name: "content span one byte short", id: "DAMAGE18",
		damage: func(t *testing.T, b []byte) []byte {
			return setSize(t, b, sizeText(297, 505, 4, 28, 298, 0))
		},
		offset: 802,
		lines: []string{
			"active/DAMAGE18: unexpected EOF in data, record type 46 length 88",
			"DAMAGE18: message rejected: missing end record",
		},
	},
	{
		name: "empty size record", id: "DAMAGE07",
		damage: func(t *testing.T, b []byte) []byte { return splice(t, b, 0, 97, []byte{'C', 0}) },
		offset: 0,
		lines:  []string{"DAMAGE07: message rejected: weird size record"},
	},
	{
		name: "zero content offset", id: "DAMAGE08",
		damage: func(t *testing.T, b []byte) []byte {
			return setSize(t, b, sizeText(298, 0, 4, 28, 298, 0))
		},
		offset: 0,
		lines:  []string{"DAMAGE08: invalid size record: " + sizeText(298, 0, 4, 28, 298, 0)},
	},
	{
		name: "unknown read flags", id: "DAMAGE09",
		damage: func(t *testing.T, b []byte) []byte {
			return setSize(t, b, sizeText(298, 505, 4, 32, 298, 0))
		},
		offset: 0,
		lines:  []string{"DAMAGE09: invalid flags in size record: " + sizeText(298, 505, 4, 32, 298, 0)},
	},
	{
		name: "attribute without name", id: "DAMAGE10",
		damage: func(t *testing.T, b []byte) []byte {
			return splice(t, b, 176, 23, AppendRecord(nil, RecAttr, []byte("=rewrite_context_local")))
		},
		offset: 176,
		lines:  []string{"DAMAGE10: bad attribute record: missing attribute name: =rewrite_context_local"},
	},
	{
		name: "missing sender", id: "DAMAGE11",
		damage: func(t *testing.T, b []byte) []byte { return setByte(b, 205, 'K') },
		offset: 865,
		lines:  []string{"DAMAGE11: message rejected: missing sender record"},
	},
	{
		name: "missing arrival time", id: "DAMAGE12",
		damage: func(t *testing.T, b []byte) []byte { return setByte(b, 97, 'K') },
		offset: 865,
		lines:  []string{"DAMAGE12: message rejected: missing arrival time record"},
	},
	{
		name: "malformed pointer", id: "DAMAGE13",
		damage: func(t *testing.T, b []byte) []byte {
			return splice(t, b, 199, 6, AppendRecord(nil, RecPointer, []byte("12x4")))
		},
		offset: 199,
		lines:  []string{"active/DAMAGE13: malformed pointer record value: 12x4"},
	},
	{
		name: "pointer loop", id: "DAMAGE14",
		damage: func(t *testing.T, b []byte) []byte {
			return splice(t, b, 176, 23, AppendRecord(nil, RecPointer, fmt.Appendf(nil, "%21d", 176)))
		},
		offset: 176,
		lines:  []string{"active/DAMAGE14: too many reverse jump records"},
	},
	{
		name: "record type zero", id: "DAMAGE15",
		damage: func(t *testing.T, b []byte) []byte { return setByte(b, 199, 0) },
		offset: 199,
		lines:  []string{"DAMAGE15: message rejected: missing end record"},
	},
	{
		name: "empty file", id: "DAMAGE16",
		damage: func(t *testing.T, b []byte) []byte { return nil },
		offset: 0,
		lines:  []string{"DAMAGE16: message rejected: missing end record"},
	},
	{
		name: "negative data size", id: "DAMAGE17",
		damage: func(t *testing.T, b []byte) []byte {
			return setSize(t, b, sizeText(298, 505, 4, 28, -1, 0))
		},
		offset: 0,
		lines:  []string{"DAMAGE17: invalid size record: " + sizeText(298, 505, 4, 28, -1, 0)},
	},
}

func TestRead_DamagedFiles(t *testing.T) {
	base, err := os.ReadFile(damageBase)
	require.NoError(t, err)

	for _, tc := range damageCases {
		t.Run(tc.name, func(t *testing.T) {
			file := tc.damage(t, bytes.Clone(base))
			f := writeTemp(t, file)
			path := "active/" + string(tc.id)

			m, err := Read(f, tc.id, path, 0)

			var fileErr *FileError
			require.ErrorAs(t, err, &fileErr)
			assert.Equal(t, tc.lines, fileErr.Lines)
			assert.Equal(t, tc.offset, fileErr.Offset)
			assert.Equal(t, tc.id, fileErr.QueueID)
			assert.Equal(t, path, fileErr.Path)
			require.NotNil(t, m, "a rejected file still returns what was read")
		})
	}
}

// TestDumpDamagedFiles writes the damaged files to $QUEUE_DAMAGE_DIR, to
// feed them to a real Postfix queue manager.
func TestDumpDamagedFiles(t *testing.T) {
	dir := os.Getenv("QUEUE_DAMAGE_DIR")
	if dir == "" {
		t.Skip("QUEUE_DAMAGE_DIR not set")
	}
	base, err := os.ReadFile(damageBase)
	require.NoError(t, err)
	for _, tc := range damageCases {
		path := filepath.Join(dir, string(tc.id))
		require.NoError(t, os.WriteFile(path, tc.damage(t, bytes.Clone(base)), 0o700))
	}
}

func setByte(b []byte, offset int, c byte) []byte {
	b[offset] = c
	return b
}

// splice replaces n bytes at offset with repl.
func splice(t *testing.T, b []byte, offset, n int, repl []byte) []byte {
	t.Helper()
	require.LessOrEqual(t, offset+n, len(b))
	out := append([]byte{}, b[:offset]...)
	out = append(out, repl...)
	return append(out, b[offset+n:]...)
}

func setSize(t *testing.T, b []byte, text string) []byte {
	t.Helper()
	require.Len(t, text, 95)
	return splice(t, b, 0, 97, AppendRecord(nil, RecSize, []byte(text)))
}

func writeTemp(t *testing.T, content []byte) *os.File {
	t.Helper()
	path := filepath.Join(t.TempDir(), "queuefile")
	require.NoError(t, os.WriteFile(path, content, 0o700))
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	return f
}
