package conf

import (
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseFeedback(t *testing.T) {
	tests := []struct {
		text      string
		want      float64 // Value at window 1
		perWindow bool
		wantErr   bool
	}{
		{text: "1", want: 1},
		{text: "0", want: 0},
		{text: "0.5", want: 0.5},
		{text: " 0.25", want: 0.25},
		{text: "1/8", want: 0.125},
		{text: "1 / 4", want: 0.25},
		{text: "3/4", want: 0.75},
		{text: "1/concurrency", want: 1, perWindow: true},
		{text: "0.5 / concurrency", want: 0.5, perWindow: true},
		{text: "1e-1", want: 0.1},
		{text: "0x1p-1", want: 0.5},
		{text: "0x.8", want: 0.5},
		{text: "0.5 extra", want: 0.5},
		{text: "1e", want: 1},
		{text: "0/8", want: 0},
		{text: "1/0.5", wantErr: true},
		{text: "2", wantErr: true},
		{text: "-0.5", wantErr: true},
		{text: "nan", wantErr: true},
		{text: "inf", wantErr: true},
		{text: "", wantErr: true},
		{text: "x", wantErr: true},
		{text: "1/", wantErr: true},
		{text: "1/8x", wantErr: true},
		{text: "1/8 x", wantErr: true},
		{text: "1/Concurrency", wantErr: true},
		{text: "1/sqrt_concurrency", wantErr: true},
		{text: "2/concurrency", wantErr: true},
		{text: "1/0", wantErr: true},
		{text: "1/1234567890123456789012345678901", wantErr: true},
		{text: "1/" + strings.Repeat("0", 29) + "8", want: 0.125},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			got, err := ParseFeedback(tt.text)

			if tt.wantErr {
				require.Error(t, err, "ParseFeedback(%q) = %+v", tt.text, got)
				assert.Equal(t, "malformed or unreasonable feedback: "+tt.text, err.Error())
				return
			}
			require.NoError(t, err)
			assert.InDelta(t, tt.want, got.Value(1), 1e-12)
			assert.Equal(t, tt.perWindow, got.PerWindow())
		})
	}
}

func TestFeedbackValue_DividesByWindow(t *testing.T) {
	perWindow, err := ParseFeedback("1/concurrency")
	require.NoError(t, err)
	constant := ConstantFeedback(0.5)

	assert.Equal(t, 0.25, perWindow.Value(4))
	assert.Equal(t, 0.05, perWindow.Value(20))
	assert.Equal(t, 0.5, constant.Value(4))
	assert.False(t, math.IsNaN(perWindow.Value(1)))
}
