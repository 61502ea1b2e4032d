package report

import (
	"fmt"
	"html/template"
	"math"
	"strings"
)

// chartSeries is one line of a chart: a value per night, NaN where the
// night has none (the line breaks there).
type chartSeries struct {
	Name  string
	Class string // CSS class giving its colour (s0 … s7)
	Y     []float64
}

// chart describes a line chart over the nights, drawn as inline SVG: no
// script, no external asset, readable in any browser and in the page's
// source.
type chart struct {
	Title  string // the SVG's <title>, read by screen readers and shown on hover
	Labels []string
	Series []chartSeries
	YMax   float64 // the top of the scale
	YUnit  string  // appended to the axis labels: "%", "ms"
	// Limit draws a dashed line at this value when it is on the scale (0:
	// none): the verifier's instruction limit.
	Limit float64
}

// Chart geometry, in SVG user units (the SVG scales to its box).
const (
	chartW, chartH           = 320, 72
	chartLeft, chartRight    = 40, 6
	chartTop, chartBottom    = 6, 16
	chartPlotW, chartPlotH   = chartW - chartLeft - chartRight, chartH - chartTop - chartBottom
	chartMaxLabel, chartFont = 24, 9
)

// svg renders the chart. Coordinates are rounded to a tenth: 90 nights of a
// line are about 1 KB.
func (c chart) svg() template.HTML {
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %d %d" width="%d" height="%d" role="img">`, chartW, chartH, chartW, chartH)
	fmt.Fprintf(&b, `<title>%s</title>`, template.HTMLEscapeString(c.Title))
	yMax := c.YMax
	if yMax <= 0 || math.IsNaN(yMax) {
		yMax = 1
	}
	x := func(i int) float64 {
		if len(c.Labels) <= 1 {
			return chartLeft + chartPlotW/2
		}
		return chartLeft + float64(i)*chartPlotW/float64(len(c.Labels)-1)
	}
	y := func(v float64) float64 { return chartTop + chartPlotH - math.Min(v/yMax, 1)*chartPlotH }
	// Axes, the scale's top and bottom, the first and last night.
	fmt.Fprintf(&b, `<path class="axis" d="M%d %dV%dH%d"/>`, chartLeft, chartTop, chartTop+chartPlotH, chartLeft+chartPlotW)
	fmt.Fprintf(&b, `<text class="yl" x="%d" y="%d">%s</text>`, chartLeft-3, chartTop+chartFont-1, template.HTMLEscapeString(axisLabel(yMax, c.YUnit)))
	fmt.Fprintf(&b, `<text class="yl" x="%d" y="%d">0</text>`, chartLeft-3, chartTop+chartPlotH)
	if n := len(c.Labels); n > 0 {
		fmt.Fprintf(&b, `<text class="xl" x="%d" y="%d">%s</text>`, chartLeft, chartH-3, template.HTMLEscapeString(shorten(c.Labels[0], chartMaxLabel)))
		if n > 1 {
			fmt.Fprintf(&b, `<text class="xl end" x="%d" y="%d">%s</text>`, chartLeft+chartPlotW, chartH-3, template.HTMLEscapeString(shorten(c.Labels[n-1], chartMaxLabel)))
		}
	}
	if c.Limit > 0 && c.Limit <= yMax {
		fmt.Fprintf(&b, `<path class="limit" d="M%d %.1fH%d"/>`, chartLeft, y(c.Limit), chartLeft+chartPlotW)
	}
	for _, s := range c.Series {
		d := linePath(s.Y, x, y)
		if d == "" {
			continue
		}
		fmt.Fprintf(&b, `<path class="line %s" d="%s"><title>%s</title></path>`, s.Class, d, template.HTMLEscapeString(s.Name))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) //nolint:gosec // built here from escaped text and numbers
}

// linePath draws the values as an SVG path, broken where a value is NaN;
// a lone value between gaps is a dot (a zero-length line with round caps).
func linePath(vals []float64, x func(int) float64, y func(float64) float64) string {
	var b strings.Builder
	pen := false
	for i, v := range vals {
		if math.IsNaN(v) {
			pen = false
			continue
		}
		next := i+1 < len(vals) && !math.IsNaN(vals[i+1])
		switch {
		case pen:
			fmt.Fprintf(&b, "L%.1f %.1f", x(i), y(v))
		case next:
			fmt.Fprintf(&b, "M%.1f %.1f", x(i), y(v))
		default:
			fmt.Fprintf(&b, "M%.1f %.1fh0", x(i), y(v))
		}
		pen = true
	}
	return b.String()
}

// niceCeil rounds a scale's top up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func axisLabel(v float64, unit string) string {
	switch {
	case unit == "ms" && v >= 1000:
		return trimFloat(v/1000) + "s"
	case v >= 1e6:
		return trimFloat(v/1e6) + "M" + unit
	case v >= 1e4:
		return trimFloat(v/1e3) + "k" + unit
	}
	return trimFloat(v) + unit
}

func trimFloat(v float64) string {
	s := fmt.Sprintf("%.2f", v)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}
