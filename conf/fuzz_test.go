package conf

import (
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// FuzzReadMainCF checks that any file either fails with a message naming the
// file and line, or yields names and values that a plain "name = value"
// file reproduces exactly.
func FuzzReadMainCF(f *testing.F) {
	f.Add([]byte("a = 1\nb = $a\n"))
	f.Add([]byte("list = a,\n  b\n# c\n\n\tc\n"))

	// The parser is fed the bytes directly: reading a file written just now
	// would wait for it to settle. The path appears in messages only.
	const path = "/fuzz/main.cf"
	f.Fuzz(func(t *testing.T, data []byte) {
		d := NewDict()
		err := d.loadText(path, data)
		if err != nil {
			assert.True(t, strings.HasPrefix(err.Error(), path+", line "), "error %q", err)
			return
		}

		var text strings.Builder
		names := d.Names()
		sort.Strings(names)
		for _, name := range names {
			value, _ := d.Raw(name)
			require.NotEmpty(t, name)
			require.False(t, strings.ContainsAny(name, "= \t\n\v\f\r\x00"), "name %q", name)
			require.NotContains(t, value, "\n")
			require.Equal(t, value, strings.Trim(value, spaceChars), "value %q has outer blanks", value)
			text.WriteString(name + " = " + value + "\n")
		}

		again := NewDict()
		require.NoError(t, again.loadText(path, []byte(text.String())))
		for _, name := range names {
			want, _ := d.Raw(name)
			got, ok := again.Raw(name)
			assert.True(t, ok, "name %q lost", name)
			assert.Equal(t, want, got, "name %q", name)
		}
		assert.Len(t, again.Names(), len(names))
	})
}

// FuzzExpand checks that expansion of any text against a fixed dictionary
// ends without a panic, and that text without '$' expands to itself.
func FuzzExpand(f *testing.F) {
	for _, seed := range []string{
		"$name ${name?{x}:{y}}", "${{$one} == {1} ? {a} : {b}}", "${{3.6} <level {2}}",
		"$self", "${a", "$$", "${{a} = {b}}",
	} {
		f.Add(seed)
	}
	d := dictOf("name", "value", "one", "1", "empty", "", "self", "$self", "nested", "${name?{$one}}")

	f.Fuzz(func(t *testing.T, text string) {
		got, err := d.Expand(text)
		if !strings.Contains(text, "$") {
			assert.NoError(t, err)
			assert.Equal(t, text, got)
		}
	})
}
