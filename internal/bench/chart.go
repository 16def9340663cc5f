package bench

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
)

// Chart geometry in pixels.
const (
	chartWidth   = 1000
	panelHeight  = 250
	panelPadding = 14
	labelScale   = 2 // font pixels are 2x2: 12 by 14 pixels per character
	plotTop      = 44
	plotBottom   = 40 // room for workload names under the bars
)

var (
	white     = color.RGBA{0xFF, 0xFF, 0xFF, 0xFF}
	black     = color.RGBA{0x20, 0x20, 0x20, 0xFF}
	gridGray  = color.RGBA{0xD8, 0xD8, 0xD8, 0xFF}
	textGray  = color.RGBA{0x60, 0x60, 0x60, 0xFF}
	failedRed = color.RGBA{0xC0, 0x20, 0x20, 0xFF}
	// contenderColors are taken in contender order: ours, oqmgr, qmgr.
	contenderColors = []color.RGBA{
		{0xE0, 0x70, 0x20, 0xFF},
		{0x30, 0x60, 0xC0, 0xFF},
		{0x40, 0xA0, 0x60, 0xFF},
		{0x90, 0x50, 0xB0, 0xFF},
	}
)

// panel is one bar chart of the PNG: one figure for every workload and
// contender.
type panel struct {
	title string
	value func(*Summary) float64
}

// WriteChart draws the medians of r as a PNG at path: one panel each for
// throughput, CPU time per 1000 messages and peak memory. Within a workload
// bar heights are relative to the highest bar, because workloads differ by
// orders of magnitude, and each bar carries its value.
func WriteChart(r *Report, path string) error {
	panels := []panel{
		{"messages per second, median (higher is better)", func(s *Summary) float64 { return s.MessagesPerSecond }},
		{"qmgr cpu s per 1000 messages, median (lower is better)", func(s *Summary) float64 { return s.CPUPer1000 }},
		{"qmgr peak rss in mb, median (lower is better)", func(s *Summary) float64 { return s.PeakRSSMB }},
	}
	img := image.NewRGBA(image.Rect(0, 0, chartWidth, panelHeight*len(panels)))
	fillRect(img, 0, 0, chartWidth, img.Bounds().Dy(), white)
	for i, p := range panels {
		drawPanel(img, r, p, i*panelHeight)
	}

	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return fmt.Errorf("write chart %s: %w", path, err)
	}
	return f.Close()
}

func drawPanel(img *image.RGBA, r *Report, p panel, top int) {
	drawText(img, panelPadding, top+panelPadding, p.title, labelScale, black)
	drawLegend(img, r.Contenders, top+panelPadding)

	left, right := panelPadding, chartWidth-panelPadding
	plotY0 := top + plotTop + 2*glyphHeight*labelScale // room for value labels
	baseline := top + panelHeight - plotBottom
	fillRect(img, left, baseline, right-left, 1, gridGray)
	if len(r.Workloads) == 0 {
		return
	}

	groupWidth := (right - left) / len(r.Workloads)
	slots := max(len(r.Contenders), 1)
	barWidth := (groupWidth - 2*panelPadding) / slots
	for g, res := range r.Workloads {
		x0 := left + g*groupWidth + panelPadding
		name := res.Name
		drawText(img, left+g*groupWidth+(groupWidth-textWidth(name, labelScale))/2, baseline+10, name, labelScale, black)

		highest := 0.0
		for _, c := range res.Results {
			if c.Median != nil {
				highest = max(highest, p.value(c.Median))
			}
		}
		for _, c := range res.Results {
			slot := contenderIndex(r.Contenders, c.Contender)
			if slot < 0 {
				continue
			}
			x := x0 + slot*barWidth
			if c.Median == nil {
				label := "fail"
				drawText(img, x+(barWidth-textWidth(label, 1))/2, baseline-2*glyphHeight, label, 1, failedRed)
				continue
			}
			v := p.value(c.Median)
			h := 0
			if highest > 0 {
				h = int(float64(baseline-plotY0) * v / highest)
			}
			fillRect(img, x+2, baseline-h, barWidth-4, h, contenderColors[slot%len(contenderColors)])
			label := formatValue(v)
			scale := labelScale
			if textWidth(label, scale) > barWidth {
				scale = 1
			}
			drawText(img, x+(barWidth-textWidth(label, scale))/2, baseline-h-glyphHeight*scale-4, label, scale, textGray)
		}
	}
}

// drawLegend draws a colour key for the contenders at the top right.
func drawLegend(img *image.RGBA, cs []Contender, y int) {
	x := chartWidth - panelPadding
	for i := len(cs) - 1; i >= 0; i-- {
		name := cs[i].Name
		x -= textWidth(name, labelScale) + 24
		fillRect(img, x, y, 14, 14, contenderColors[i%len(contenderColors)])
		drawText(img, x+20, y, name, labelScale, black)
	}
}

// formatValue prints v with about three significant digits.
func formatValue(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	case v >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}
