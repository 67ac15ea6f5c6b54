package bench

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
)

// chartStyle is how one variant is drawn.
type chartStyle struct {
	color string
	dash  string // SVG stroke-dasharray, "" for a solid line
}

var chartStyles = map[Variant]chartStyle{
	PgbenchTPCB:  {"#444444", "6 4"},
	PgxBegin:     {"#1f77b4", ""},
	PgxBeginFunc: {"#17becf", ""},
	UowTyped:     {"#d62728", ""},
	UowBatch:     {"#2ca02c", ""},
}

// WriteSVG draws TPS against client count, one line per TPC-B variant, as a
// standalone SVG image. Client counts are evenly spaced, in Config order.
// pgbench select-only, a different workload several times faster, is left
// out so that the TPC-B lines stay readable; the subtitle gives its range.
func (r *Report) WriteSVG(w io.Writer) error {
	const (
		width, height            = 780.0, 440.0
		left, right, top, bottom = 80.0, 250.0, 50.0, 60.0
		plotW, plotH             = width - left - right, height - top - bottom
	)
	clients := r.Config.Clients
	var variants []Variant
	for _, v := range AllVariants() {
		if v != PgbenchSelect {
			variants = append(variants, v)
		}
	}
	maxTPS, selMin, selMax := 0.0, math.Inf(1), 0.0
	for _, c := range r.Cells {
		if c.Variant == PgbenchSelect {
			selMin, selMax = min(selMin, c.TPS), max(selMax, c.TPS)
			continue
		}
		maxTPS = max(maxTPS, c.TPS)
	}
	step := niceStep(maxTPS / 5)
	yMax := math.Max(step, math.Ceil(maxTPS/step)*step)
	x := func(i int) float64 {
		if len(clients) == 1 {
			return left + plotW/2
		}
		return left + 20 + float64(i)*(plotW-40)/float64(len(clients)-1)
	}
	y := func(v float64) float64 { return top + plotH - v/yMax*plotH }

	var b strings.Builder
	p := func(format string, args ...any) { _, _ = fmt.Fprintf(&b, format, args...) }
	p(`<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	p(`<rect width="100%%" height="100%%" fill="white"/>` + "\n")
	p(`<text x="%.0f" y="24" font-size="15" font-weight="bold">TPC-B transactions per second (higher is better), scale %d</text>`+"\n", left, r.Config.Scale)
	p(`<text x="%.0f" y="40" fill="#555">%d-CPU machine shared by server and clients; %d rounds × %v per cell</text>`+"\n",
		left, r.Env.CPUs, r.Config.Rounds, r.Slice)
	if selMax > 0 {
		p(`<text x="%.1f" y="%.1f" fill="#555">Not drawn: pgbench select-only,</text>`+"\n", left+plotW+20, top+float64(len(variants))*22+24)
		p(`<text x="%.1f" y="%.1f" fill="#555">%s–%s tps (1 round trip).</text>`+"\n", left+plotW+20, top+float64(len(variants))*22+40, thousands(selMin), thousands(selMax))
	}
	for v := 0.0; v <= yMax+step/2; v += step {
		p(`<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#e5e5e5"/>`+"\n", left, left+plotW, y(v), y(v))
		p(`<text x="%.1f" y="%.1f" text-anchor="end" dominant-baseline="middle">%s</text>`+"\n", left-8, y(v), thousands(v))
	}
	p(`<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#333"/>`+"\n", left, left+plotW, top+plotH, top+plotH)
	p(`<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#333"/>`+"\n", left, left, top, top+plotH)
	for i, n := range clients {
		p(`<text x="%.1f" y="%.1f" text-anchor="middle">%d</text>`+"\n", x(i), top+plotH+18, n)
	}
	p(`<text x="%.1f" y="%.1f" text-anchor="middle">clients (connections)</text>`+"\n", left+plotW/2, height-14)
	p(`<text transform="translate(18 %.1f) rotate(-90)" text-anchor="middle">transactions per second</text>`+"\n", top+plotH/2)

	for vi, v := range variants {
		st := chartStyles[v]
		var pts []string
		for i, n := range clients {
			if c, ok := r.Cell(v, n); ok {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(i), y(c.TPS)))
			}
		}
		dash := ""
		if st.dash != "" {
			dash = fmt.Sprintf(` stroke-dasharray="%s"`, st.dash)
		}
		p(`<polyline points="%s" fill="none" stroke="%s" stroke-width="2"%s/>`+"\n", strings.Join(pts, " "), st.color, dash)
		for _, pt := range pts {
			xy := strings.Split(pt, ",")
			p(`<circle cx="%s" cy="%s" r="3.5" fill="%s"/>`+"\n", xy[0], xy[1], st.color)
		}
		ly := top + 10 + float64(vi)*22
		lx := left + plotW + 20
		p(`<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="%s" stroke-width="2"%s/>`+"\n", lx, lx+28, ly, ly, st.color, dash)
		p(`<circle cx="%.1f" cy="%.1f" r="3.5" fill="%s"/>`+"\n", lx+14, ly, st.color)
		p(`<text x="%.1f" y="%.1f" dominant-baseline="middle">%s</text>`+"\n", lx+36, ly, html.EscapeString(string(v)))
	}
	p("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// niceStep rounds raw up to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	if raw <= 0 {
		return 1
	}
	exp := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*exp >= raw {
			return m * exp
		}
	}
	return 10 * exp
}

// thousands formats a whole number with thin spaces between thousands.
func thousands(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	var out []string
	for len(s) > 3 {
		out = append([]string{s[len(s)-3:]}, out...)
		s = s[:len(s)-3]
	}
	out = append([]string{s}, out...)
	return strings.Join(out, "\u202f")
}
