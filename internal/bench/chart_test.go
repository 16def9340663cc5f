package bench

import (
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWriteChart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bench.png")
	require.NoError(t, WriteChart(sampleReport(), path))

	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err)
	assert.Equal(t, image.Rect(0, 0, 1000, 750), img.Bounds())

	// Each panel has bars for ours and oqmgr; qmgr failed, so it has none.
	counts := map[color.RGBA]int{}
	for y := range 750 {
		for x := range 1000 {
			r, g, b, a := img.At(x, y).RGBA()
			counts[color.RGBA{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8), uint8(a >> 8)}]++
		}
	}
	assert.Greater(t, counts[contenderColors[0]], 10000, "pixels of ours' bars")
	assert.Greater(t, counts[contenderColors[1]], 10000, "pixels of oqmgr's bars")
	assert.Less(t, counts[contenderColors[2]], 14*14*3+1, "qmgr only in the legend")
	assert.Positive(t, counts[failedRed], "fail label for qmgr")
}

func TestDrawText_EveryGlyphHasPixels(t *testing.T) {
	for r, g := range glyphs {
		if r == ' ' {
			continue
		}
		img := image.NewRGBA(image.Rect(0, 0, cellWidth, glyphHeight))
		drawText(img, 0, 0, string(r), 1, black)
		n := 0
		for y := range glyphHeight {
			for x := range cellWidth {
				if img.RGBAAt(x, y) == black {
					n++
				}
			}
		}
		assert.Positive(t, n, "glyph %q %v", r, g)
	}
}

func TestFormatValue(t *testing.T) {
	tests := []struct {
		v    float64
		want string
	}{
		{3158.4, "3158"},
		{12.25, "12.2"},
		{8.094, "8.09"},
		{0.1064, "0.106"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, formatValue(tt.v), "formatValue(%v)", tt.v)
	}
}
