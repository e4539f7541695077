package main

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
)

// Chart geometry, in SVG user units.
const (
	chartWidth = 900
	labelWidth = 150 // server names, left of the bars
	textWidth  = 190 // figures, right of the bars
	barHeight  = 18
	barGap     = 6
	groupGap   = 30 // room for a scenario's title
	topMargin  = 50
)

// writeChart draws the suite as an SVG bar chart, by hand: one group of bars
// per scenario, one bar per server, its length the throughput relative to
// the scenario's baseline, whiskers for the range over runs, and a dashed
// line at 1x.
func writeChart(w io.Writer, s *Suite) error {
	type bar struct {
		label, text string
		sum         Summary
		ok          bool
		baseline    bool
		kasync      bool
	}
	type group struct {
		title string
		bars  []bar
	}
	var groups []group
	maxRatio := 1.0
	for _, c := range s.Cells {
		title := c.Scenario.Title()
		if len(groups) == 0 || groups[len(groups)-1].title != title {
			groups = append(groups, group{title: title})
		}
		b := bar{label: c.Server.Name, baseline: c.Server.Baseline, kasync: strings.HasPrefix(c.Server.Name, "kasync")}
		if len(c.Samples) > 0 {
			b.sum = summarize(c, baselineOf(s.Cells, c))
			b.ok = b.sum.HasRatio
			b.text = figure(b.sum.Throughput, c.Scenario.Unit()) + " " + c.Scenario.Unit()
			if b.ok {
				b.text = fmt.Sprintf("%.2fx  %s", b.sum.Ratio, b.text)
				maxRatio = max(maxRatio, b.sum.RatioHi)
			}
			if vs, _, _, ok := pairedRatio(c, twinOf(s.Cells, c)); ok {
				b.text += fmt.Sprintf("  %.3fx vs @base", vs)
			}
		} else {
			b.text = strings.SplitN(c.Status, ":", 2)[0]
		}
		g := &groups[len(groups)-1]
		g.bars = append(g.bars, b)
	}
	scaleMax := math.Ceil(maxRatio*1.1*2) / 2 // a round axis end, in halves
	plotWidth := float64(chartWidth - labelWidth - textWidth)
	x := func(ratio float64) float64 { return labelWidth + plotWidth*ratio/scaleMax }

	height := topMargin
	for _, g := range groups {
		height += groupGap + len(g.bars)*(barHeight+barGap)
	}
	height += 30

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		chartWidth, height, chartWidth, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="10" y="22" font-size="15" font-weight="bold">Throughput relative to the baseline (%s)</text>`+"\n", esc(baselines(s)))
	fmt.Fprintf(&b, `<text x="10" y="40" fill="#555">%s</text>`+"\n", esc(s.Machine.String()))

	y := topMargin
	for _, g := range groups {
		y += groupGap
		fmt.Fprintf(&b, `<text x="10" y="%d" font-weight="bold">%s</text>`+"\n", y-8, esc(g.title))
		top := y
		for _, br := range g.bars {
			mid := y + barHeight/2
			fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end" dominant-baseline="middle">%s</text>`+"\n", labelWidth-8, mid, esc(br.label))
			textX := float64(labelWidth + 4)
			if br.ok {
				color := "#4878a8"
				switch {
				case br.baseline:
					color = "#999999"
				case br.kasync:
					color = "#e07b39"
				}
				end := x(br.sum.Ratio)
				fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>`+"\n", labelWidth, y, end-labelWidth, barHeight, color)
				lo, hi := x(br.sum.RatioLo), x(br.sum.RatioHi)
				fmt.Fprintf(&b, `<path d="M%.1f %dH%.1fM%.1f %dV%dM%.1f %dV%d" stroke="black" fill="none"/>`+"\n",
					lo, mid, hi, lo, mid-4, mid+4, hi, mid-4, mid+4)
				textX = hi + 6
			}
			fill := "black"
			if !br.ok {
				fill = "#888"
			}
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" dominant-baseline="middle" fill="%s">%s</text>`+"\n", textX, mid, fill, esc(br.text))
			y += barHeight + barGap
		}
		one := x(1)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#333" stroke-dasharray="4 3"/>`+"\n", one, top-4, one, y-barGap+4)
	}
	// The axis: a tick every half.
	axisY := y + 6
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%.1f" y2="%d" stroke="#333"/>`+"\n", labelWidth, axisY, x(scaleMax), axisY)
	for v := 0.0; v <= scaleMax+1e-9; v += 0.5 {
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle" fill="#555">%gx</text>`+"\n", x(v), axisY+14, v)
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// baselines names each kind's baseline in the suite, in order: "net for
// echo, net/http for http".
func baselines(s *Suite) string {
	var out []string
	seen := map[Kind]bool{}
	for _, c := range s.Cells {
		if c.Server.Baseline && !seen[c.Scenario.Kind] {
			seen[c.Scenario.Kind] = true
			out = append(out, fmt.Sprintf("%s for %s", c.Server.Name, c.Scenario.Kind))
		}
	}
	return strings.Join(out, ", ")
}

func esc(s string) string { return html.EscapeString(s) }
