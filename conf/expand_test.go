package conf

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestExpand(t *testing.T) {
	d := dictOf(
		"one", "1",
		"empty", "",
		"name", "value",
		"chain1", "$chain2",
		"chain2", "${chain3}!",
		"chain3", "end",
		"dollar", "$$one",
		"level", "3.6",
	)
	tests := []struct {
		text string
		want string
	}{
		{text: "plain", want: "plain"},
		{text: "$name ${name} $(name)", want: "value value value"},
		{text: "$name.x $name-x", want: "value.x value-x"},
		{text: "$$name and $$", want: "$name and $"},
		{text: "$undefined|${undefined}", want: "|"},
		{text: "$chain1", want: "end!"},
		{text: "$dollar", want: "$one"},
		{text: "${ name }", want: "value"},
		{text: "${name?yes}|${empty?yes}|${undefined?yes}", want: "yes||"},
		{text: "${name:no}|${empty:no}|${undefined:no}", want: "|no|no"},
		{text: "${name?{yes}}|${empty?{yes}}", want: "yes|"},
		{text: "${name:{no}}|${empty:{no}}", want: "|no"},
		{text: "${name?{yes}:{no}}|${empty?{yes}:{no}}", want: "yes|no"},
		{text: "${name ? {yes} : {no}}", want: "yes"},
		{text: "${name?{$one}:{$name}}|${empty?{$one}:{$name}}", want: "1|value"},
		{text: "${name?x:y}", want: "x:y"},
		{text: "${name? spaced}", want: " spaced"},
		{text: "${empty?{yes}:no}", want: "no"},
		{text: "${name?{a{b}c}}", want: "a{b}c"},
		{text: "$(name?(x))", want: "(x)"},
		{text: "${{a} == {a}}|${{a} == {b}}", want: "true|"},
		{text: "${{$one} == {1} ? {eq} : {ne}}", want: "eq"},
		{text: "${{a} != {b} ? {ne}}", want: "ne"},
		{text: "${{10} > {9} ? {numeric}:{text}}", want: "numeric"},
		{text: "${{10} > {9z} ? {numeric}:{text}}", want: "text"},
		{text: "${{010} == {10}}", want: "true"},
		{text: "${{} == {}}", want: "true"},
		{text: "${{} < {0}}", want: "true"},
		{text: "${{2} <= {2}}|${{3} <= {2}}", want: "true|"},
		{text: "${{2} >= {3}}|${{3} >= {2}}", want: "|true"},
		{text: "${{2} < {3}}|${{3} > {2}}", want: "true|true"},
		{text: "${{b} < {a}}", want: ""},
		{text: "${{$level} <level {3.10}}", want: "true"},
		{text: "${{$level} >level {3}}", want: "true"},
		{text: "${{3.6} ==level {3.6.0}}", want: "true"},
		{text: "${{0} <level {1} ? {no} : {yes}}", want: "no"},
		{text: "${{2} <level {10}}|${{2} < {10}}|${{2} < {10x}}", want: "true|true|"},
		{text: "${{a}=={a}?yes:no}", want: "yes:no"},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			got, err := d.Expand(tt.text)

			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestExpand_SyntaxErrors(t *testing.T) {
	d := dictOf("self", "$self", "name", "value", "empty", "")
	tests := []struct {
		text string
		want string
	}{
		{text: "${name", want: `truncated macro reference: "${name"`},
		{text: "$(name}", want: `truncated macro reference: "$(name}"`},
		{text: "cost $", want: `empty macro name: "cost $"`},
		{text: "a $ b", want: `empty macro name: "a $ b"`},
		{text: "${}", want: `empty macro name: "${}"`},
		{text: "$self", want: `unreasonable macro call nesting: "self"`},
		{text: "${na me}", want: `attribute name syntax error at: "...na>>> me"`},
		{text: "${na-me}", want: `attribute name syntax error at: "...na>>>-me"`},
		{text: "${name?{x}y}", want: `":" expected at: "...x}>>>y"`},
		{text: "${empty?{x}:{y}z}", want: `unexpected input at: "...y}>>>z"`},
		{text: "${name?{x}:{y}z}", want: `unexpected input at: "...y}>>>z"`},
		{text: "${name?{x}", want: `truncated macro reference: "${name?{x}"`},
		{text: "${{a} = {b}}", want: `"==" or "!="" or "<"" or "<="" or ">="" or ">" expected at: "...a}>>>= {b}"`},
		{text: "${{a} <> {b}}", want: `"==" or "!="" or "<"" or "<="" or ">="" or ">" expected at: "...a}>>><> {b}"`},
		{text: "${{a} == b}", want: `"{expression}" expected at: "...{a} ==>>> b"`},
		{text: "${{a} ==foo {b}}", want: `bad operator suffix at: "...==>>>foo"`},
		{text: "${{a} == {b} x}", want: `"?" or ":" expected at: "...}>>>x"`},
		{text: "${{a} == {b}{c}}", want: `"?" or ":" expected at: "...}>>>{c}"`},
		{text: "${{a} == {b} ? {x} : {y} z}", want: `unexpected input at: "...y}>>>z"`},
		{text: "${{a}{b}", want: `truncated macro reference: "${{a}{b}"`},
		{text: "${{x} <level {1}}", want: `malformed compatibility level syntax: "x"`},
		{text: "${{3.} <level {1}}", want: `malformed compatibility level syntax: "3."`},
		{text: "${{1.2.3.4} <level {1}}", want: `malformed compatibility level syntax: "1.2.3.4"`},
		{text: "${{99999999999999999999} == {1}}", want: `mac_exp_eval: bad conversion: 99999999999999999999`},
		{text: "${{" + strings.Repeat("x", 30) + "} = {b}}",
			want: `"==" or "!="" or "<"" or "<="" or ">="" or ">" expected at: "...` + strings.Repeat("x", 30) + `}>>>= {b}"`},
		{text: "${{a} = " + strings.Repeat("y", 30) + "}",
			want: `"==" or "!="" or "<"" or "<="" or ">="" or ">" expected at: "...a}>>>= ` + strings.Repeat("y", 18) + `"`},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			_, err := d.Expand(tt.text)

			require.Error(t, err)
			var expandErr *ExpandError
			require.ErrorAs(t, err, &expandErr)
			assert.Equal(t, tt.want, expandErr.Detail)
		})
	}
}

func TestExpand_UntakenBranchIsNotChecked(t *testing.T) {
	d := dictOf("name", "value")

	got, err := d.Expand("${name:{$}}")

	require.NoError(t, err, "Postfix parses only the operand it uses")
	assert.Equal(t, "", got)
}

func TestExpand_CycleThroughRelationalOperand(t *testing.T) {
	d := dictOf("loop", "${{$loop} == {x}}")

	_, err := d.Expand("$loop")

	var expandErr *ExpandError
	require.ErrorAs(t, err, &expandErr)
	assert.Contains(t, expandErr.Detail, "unreasonable macro call nesting")
}

func TestExpand_NestingLimit(t *testing.T) {
	// A chain of n references makes n+1 nested calls, and Postfix 3.7 allows
	// 101 (postconf fails at n = 100 with the text below).
	build := func(n int) *Dict {
		d := NewDict()
		for i := 0; i < n; i++ {
			d.Set(chainName(i), "$"+chainName(i+1))
		}
		d.Set(chainName(n), "end")
		return d
	}

	got, err := build(99).Expand("$" + chainName(0))
	require.NoError(t, err)
	assert.Equal(t, "end", got)

	_, err = build(100).Expand("$" + chainName(0))
	var expandErr *ExpandError
	require.ErrorAs(t, err, &expandErr)
	assert.Equal(t, `unreasonable macro call nesting: "end"`, expandErr.Detail)
}

func chainName(i int) string {
	return "p" + strings.Repeat("x", i)
}

func TestDictEval_NamesParameter(t *testing.T) {
	d := dictOf("bad", "${oops")

	_, ok, err := d.Eval("bad")

	assert.True(t, ok)
	require.Error(t, err)
	assert.Equal(t, `parameter bad: truncated macro reference: "${oops"`, err.Error())
	value, found := d.Lookup("bad")
	assert.False(t, found)
	assert.Equal(t, "", value)
}
