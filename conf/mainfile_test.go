package conf

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReadMainCF_Syntax(t *testing.T) {
	tests := []struct {
		name     string
		text     string
		want     map[string]string
		warnings []string // with the path replaced by FILE
	}{
		{
			name: "blanks around equals and value are trimmed",
			text: "  \nname   =   some value  \t\n",
			want: map[string]string{"name": "some value"},
		},
		{
			name: "no blanks and empty value",
			text: "a=b\nempty =\n",
			want: map[string]string{"a": "b", "empty": ""},
		},
		{
			name: "continuation keeps leading whitespace and drops newline",
			text: "list = a,\n  b,\n\tc\n",
			want: map[string]string{"list": "a,  b,\tc"},
		},
		{
			name: "comments and blank lines inside a continuation are skipped",
			text: "list = a\n# comment\n\n   # indented comment\n  b\nnext = 1\n",
			want: map[string]string{"list": "a  b", "next": "1"},
		},
		{
			name: "hash after text is literal",
			text: "a = x # not a comment\n",
			want: map[string]string{"a": "x # not a comment"},
		},
		{
			name: "last line without newline",
			text: "a = 1\nb = 2",
			want: map[string]string{"a": "1", "b": "2"},
		},
		{
			name: "carriage returns are trailing blanks",
			text: "a = 1\r\nb = 2\r\n",
			want: map[string]string{"a": "1", "b": "2"},
		},
		{
			name: "value keeps later equals signs",
			text: "a = b = c\n",
			want: map[string]string{"a": "b = c"},
		},
		{
			name:     "later entry wins with a warning",
			text:     "a = 1\n\na = 2\na = 2\n",
			want:     map[string]string{"a": "2"},
			warnings: []string{"FILE, line 3: overriding earlier entry: a=1"},
		},
		{
			name:     "leading whitespace line is dropped with a warning",
			text:     "  lead = 1\n  more\nb = 2\n",
			want:     map[string]string{"b": "2"},
			warnings: []string{`FILE: logical line must not start with whitespace: "  lead = 1  more"`},
		},
		{
			name: "long leading whitespace line is clipped in the warning",
			text: " 123456789012345678901234567890xyz\nb = 2\n",
			want: map[string]string{"b": "2"},
			warnings: []string{
				`FILE: logical line must not start with whitespace: " 12345678901234567890123456789..."`,
			},
		},
		{
			name: "empty file",
			text: "",
			want: map[string]string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeMainCF(t, tt.text)
			path := filepath.Join(dir, "main.cf")

			d, err := ReadMainCF(path)
			require.NoError(t, err)

			got := map[string]string{}
			for _, name := range d.Names() {
				got[name], _ = d.Raw(name)
			}
			assert.Equal(t, tt.want, got, "input %q", tt.text)

			var want []string
			for _, w := range tt.warnings {
				want = append(want, replaceFile(w, path))
			}
			assert.Equal(t, want, d.Warnings(), "input %q", tt.text)
		})
	}
}

func replaceFile(text, path string) string {
	return strings.ReplaceAll(text, "FILE", path)
}

func TestReadMainCF_Errors(t *testing.T) {
	tests := []struct {
		name string
		text string
		want string // with the path replaced by FILE
	}{
		{
			name: "missing equals names file and first line",
			text: "# comment\na = 1\n\nbogus line\n  continued\n",
			want: `FILE, line 4: missing '=' after attribute name: "bogus line  continued"`,
		},
		{
			name: "missing name",
			text: "a = 1\n= 2\n",
			want: `FILE, line 2: missing attribute name: "= 2"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeMainCF(t, tt.text)
			path := filepath.Join(dir, "main.cf")

			_, err := ReadMainCF(path)
			require.Error(t, err)
			assert.Equal(t, replaceFile(tt.want, path), err.Error())
		})
	}
}

func TestReadMainCF_MissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "main.cf")

	_, err := ReadMainCF(path)

	require.Error(t, err)
	assert.ErrorIs(t, err, os.ErrNotExist)
	assert.Contains(t, err.Error(), path)
}

func TestReadMainCF_HotFileIsReadAgain(t *testing.T) {
	saved := hotFileDelay
	hotFileDelay = 50 * time.Millisecond
	t.Cleanup(func() { hotFileDelay = saved })

	path := filepath.Join(t.TempDir(), "main.cf")
	require.NoError(t, os.WriteFile(path, []byte("a = 1\n"), 0o644))

	start := time.Now()
	d, err := ReadMainCF(path)
	elapsed := time.Since(start)

	require.NoError(t, err)
	value, _ := d.Raw("a")
	assert.Equal(t, "1", value)
	assert.GreaterOrEqual(t, elapsed, hotFileDelay,
		"a file modified just now must be read again after a pause")
}

func TestDictOverride(t *testing.T) {
	tests := []struct {
		arg       string
		wantName  string
		wantValue string
		wantErr   string
	}{
		{arg: "a=b", wantName: "a", wantValue: "b"},
		{arg: "  a  =  b c  ", wantName: "a", wantValue: "b c"},
		{arg: "a=b=c", wantName: "a", wantValue: "b=c"},
		{arg: "a=", wantName: "a", wantValue: ""},
		{arg: "a", wantErr: `invalid "-o a" option value: missing '=' after attribute name`},
		{arg: "=b", wantErr: `invalid "-o =b" option value: missing attribute name`},
	}
	for _, tt := range tests {
		t.Run(tt.arg, func(t *testing.T) {
			d := dictOf("a", "old")

			err := d.Override(tt.arg)

			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Equal(t, tt.wantErr, err.Error())
				return
			}
			require.NoError(t, err)
			value, ok := d.Raw(tt.wantName)
			assert.True(t, ok)
			assert.Equal(t, tt.wantValue, value)
		})
	}
}

func TestDictSetDefault_KeepsExistingValue(t *testing.T) {
	d := dictOf("a", "set")

	d.SetDefault("a", "default")
	d.SetDefault("b", "$a-default")

	a, _ := d.Raw("a")
	assert.Equal(t, "set", a)
	b, ok := d.Lookup("b")
	assert.True(t, ok)
	assert.Equal(t, "set-default", b)
}
