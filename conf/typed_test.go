package conf

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseTime(t *testing.T) {
	tests := []struct {
		text    string
		unit    byte
		want    int
		wantErr bool
	}{
		{text: "300", unit: 's', want: 300},
		{text: "300s", unit: 'd', want: 300},
		{text: "5m", unit: 's', want: 300},
		{text: "2h", unit: 's', want: 7200},
		{text: "5d", unit: 's', want: 432000},
		{text: "1w", unit: 's', want: 604800},
		{text: "5", unit: 'd', want: 432000},
		{text: "10sec", unit: 's', want: 10},
		{text: "s", unit: 's', want: 0},
		{text: " 7", unit: 's', want: 7},
		{text: "+7", unit: 's', want: 7},
		{text: "-0", unit: 's', want: 0},
		{text: "0", unit: 'w', want: 0},
		{text: "3549w", unit: 's', want: 3549 * 604800},
		{text: "3550w", unit: 's', wantErr: true},
		{text: "2147483647", unit: 's', want: 2147483647},
		{text: "2147483648", unit: 's', wantErr: true},
		{text: "", unit: 's', wantErr: true},
		{text: "-1", unit: 's', wantErr: true},
		{text: "5x", unit: 's', wantErr: true},
		{text: "5 s", unit: 's', wantErr: true},
		{text: "abc", unit: 's', wantErr: true},
		{text: "1.5h", unit: 's', wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			got, ok := parseTime(tt.text, tt.unit)

			assert.Equal(t, !tt.wantErr, ok, "parseTime(%q, %q)", tt.text, tt.unit)
			if !tt.wantErr {
				assert.Equal(t, tt.want, got, "parseTime(%q, %q)", tt.text, tt.unit)
			}
		})
	}
}

func TestTypedParams_ErrorText(t *testing.T) {
	tests := []struct {
		name  string
		value string
		read  func(d *Dict) error
		want  string
	}{
		{
			name: "int not a number", value: "12x",
			read: func(d *Dict) error { _, err := d.IntParam("p", 1, 0, 0); return err },
			want: "bad numerical configuration: p = 12x",
		},
		{
			name: "int empty", value: "",
			read: func(d *Dict) error { _, err := d.IntParam("p", 1, 0, 0); return err },
			want: "bad numerical configuration: p = ",
		},
		{
			name: "int too large for C int", value: "2147483648",
			read: func(d *Dict) error { _, err := d.IntParam("p", 1, 0, 0); return err },
			want: "bad numerical configuration: p = 2147483648",
		},
		{
			name: "int below minimum", value: "0",
			read: func(d *Dict) error { _, err := d.IntParam("p", 1, 1, 0); return err },
			want: "invalid p parameter value 0 < 1",
		},
		{
			name: "int above maximum", value: "101",
			read: func(d *Dict) error { _, err := d.IntParam("p", 1, 10, 100); return err },
			want: "invalid p parameter value 101 > 100",
		},
		{
			name: "bool", value: "true",
			read: func(d *Dict) error { _, err := d.BoolParam("p", false); return err },
			want: "bad boolean configuration: p = true",
		},
		{
			name: "time unit", value: "5y",
			read: func(d *Dict) error { _, err := d.TimeParam("p", "1s", 0, 0); return err },
			want: "parameter p: bad time value or unit: 5y",
		},
		{
			name: "time below minimum", value: "0",
			read: func(d *Dict) error { _, err := d.TimeParam("p", "1s", time.Second, 0); return err },
			want: "invalid p: 0 (min 1)",
		},
		{
			name: "time above maximum", value: "101d",
			read: func(d *Dict) error { _, err := d.TimeParam("p", "5d", 0, 100*24*time.Hour); return err },
			want: "invalid p: 8726400 (max 8640000)",
		},
		{
			name: "string too short", value: "",
			read: func(d *Dict) error { _, err := d.StringParam("p", "x", 1, 0); return err },
			want: "bad string length 0 < 1: p = ",
		},
		{
			name: "string too long", value: "abc",
			read: func(d *Dict) error { _, err := d.StringParam("p", "x", 2, 2); return err },
			want: "bad string length 3 > 2: p = abc",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := dictOf("p", tt.value)

			err := tt.read(d)

			require.Error(t, err)
			var paramErr *ParamError
			require.ErrorAs(t, err, &paramErr)
			assert.Equal(t, "p", paramErr.Name)
			assert.Equal(t, tt.want, err.Error())
		})
	}
}

func TestTypedParams_DefaultsEnterDictionary(t *testing.T) {
	d := dictOf("ref", "$i $b $s $t")

	i, err := d.IntParam("i", 7, 0, 0)
	require.NoError(t, err)
	b, err := d.BoolParam("b", true)
	require.NoError(t, err)
	s, err := d.StringParam("s", "<$i>", 0, 0)
	require.NoError(t, err)
	tm, err := d.TimeParam("t", "2m", 0, 0)
	require.NoError(t, err)

	assert.Equal(t, 7, i)
	assert.True(t, b)
	assert.Equal(t, "<7>", s)
	assert.Equal(t, 2*time.Minute, tm)
	ref, _ := d.Lookup("ref")
	assert.Equal(t, "7 yes <7> 2m", ref)
}

func TestTypedParams_ValuesExpandAndKeepCase(t *testing.T) {
	d := dictOf("base", "30", "i", "$base", "b", "YeS", "t", "${base}m", "s", " $base ")

	i, err := d.IntParam("i", 1, 0, 0)
	require.NoError(t, err)
	b, err := d.BoolParam("b", false)
	require.NoError(t, err)
	tm, err := d.TimeParam("t", "1s", 0, 0)
	require.NoError(t, err)
	s, err := d.StringParam("s", "", 0, 0)
	require.NoError(t, err)

	assert.Equal(t, 30, i)
	assert.True(t, b)
	assert.Equal(t, 30*time.Minute, tm)
	assert.Equal(t, " 30 ", s, "values set with Set are not trimmed")
}

func TestTimeParam_UnitlessValueTakesDefaultUnit(t *testing.T) {
	d := dictOf("t", "5")

	got, err := d.TimeParam("t", "5d", 0, 0)

	require.NoError(t, err)
	assert.Equal(t, 5*24*time.Hour, got)
}

func TestSplitList(t *testing.T) {
	assert.Equal(t, []string{"deferred", "defer"}, splitList("deferred, defer"))
	assert.Equal(t, []string{"a", "b", "c"}, splitList(" a,,b\t\r\nc ,"))
	assert.Empty(t, splitList(" , "))
}
