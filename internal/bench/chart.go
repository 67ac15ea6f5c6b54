package bench

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
	"time"
)

// chartStyle is how one variant is drawn.
type chartStyle struct {
	color string
	dash  string // SVG stroke-dasharray, "" for a solid line
}

var chartStyles = map[variant]chartStyle{
	pgbenchTPCB:    {"#444444", "6 4"},
	pgbenchSelect:  {"#aaaaaa", "2 3"},
	pgxBegin:       {"#1f77b4", ""},
	pgxBeginFunc:   {"#17becf", ""},
	uowTyped:       {"#d62728", ""},
	uowBatch:       {"#2ca02c", ""},
	uowWriteBehind: {"#9467bd", ""},
}

// lineChart is a chart of TPS, one line per variant, drawn as SVG.
type lineChart struct {
	title, subtitle string
	xLabel, yLabel  string
	xTicks          []tick // at fractions 0..1 of the plot's width
	yTicks          []tick // at fractions 0..1 of its height, from the bottom
	lines           []chartLine
	notes           []string // below the legend
}

type tick struct {
	at    float64
	label string
}

type chartLine struct {
	v   variant
	pts [][2]float64 // (x, y) as fractions of the plot
}

// WriteSVG draws TPS against client count, one line per TPC-B variant, as a
// standalone SVG image. Client counts are evenly spaced, in Config order.
// pgbench select-only, a different workload several times faster, is left
// out so that the TPC-B lines stay readable; a note gives its range.
func (r *Report) WriteSVG(w io.Writer) error {
	clients := r.config.Clients
	x := func(i int) float64 {
		if len(clients) == 1 {
			return 0.5
		}
		return 0.03 + 0.94*float64(i)/float64(len(clients)-1)
	}
	maxTPS, selMin, selMax := 0.0, math.Inf(1), 0.0
	for _, c := range r.cells {
		if c.Variant == pgbenchSelect {
			selMin, selMax = min(selMin, c.TPS), max(selMax, c.TPS)
			continue
		}
		maxTPS = max(maxTPS, c.TPS)
	}
	step := niceStep(maxTPS / 5)
	yMax := math.Max(step, math.Ceil(maxTPS/step)*step)
	ch := lineChart{
		title:    fmt.Sprintf("TPC-B transactions per second (higher is better), scale %d", r.config.Scale),
		subtitle: fmt.Sprintf("%d-CPU machine shared by server and clients; %d rounds × %v per cell", r.env.CPUs, r.config.Rounds, r.slice),
		xLabel:   "clients (connections)",
		yLabel:   "transactions per second",
	}
	for i, n := range clients {
		ch.xTicks = append(ch.xTicks, tick{x(i), fmt.Sprint(n)})
	}
	for v := 0.0; v <= yMax+step/2; v += step {
		ch.yTicks = append(ch.yTicks, tick{v / yMax, thousands(v)})
	}
	for _, v := range allVariants() {
		if v == pgbenchSelect {
			continue
		}
		l := chartLine{v: v}
		for i, n := range clients {
			if c, ok := r.cell(v, n); ok {
				l.pts = append(l.pts, [2]float64{x(i), c.TPS / yMax})
			}
		}
		ch.lines = append(ch.lines, l)
	}
	if selMax > 0 {
		ch.notes = []string{"Not drawn: pgbench select-only,", fmt.Sprintf("%s–%s tps (1 round trip).", thousands(selMin), thousands(selMax))}
	}
	return ch.write(w)
}

// WriteRTTSVG draws TPS against the round-trip time the proxy added, one
// line per variant (pgbench select-only included: one round trip, the
// ceiling), on a logarithmic TPS axis so that every delay stays readable.
// It draws the cells measured through the proxy; with none, an empty plot.
func (r *Report) WriteRTTSVG(w io.Writer) error {
	rtts := r.config.RTTs
	maxRTT := time.Duration(0)
	for _, d := range rtts {
		maxRTT = max(maxRTT, d)
	}
	x := func(d time.Duration) float64 {
		if maxRTT == 0 {
			return 0.5
		}
		return 0.03 + 0.94*float64(d)/float64(maxRTT)
	}
	lo, hi := math.Inf(1), 0.0
	for _, c := range r.rttCells {
		if c.TPS > 0 {
			lo, hi = min(lo, c.TPS), max(hi, c.TPS)
		}
	}
	if hi == 0 {
		lo, hi = 1, 10
	}
	yMin, yMax := math.Pow(10, math.Floor(math.Log10(lo))), math.Pow(10, math.Ceil(math.Log10(hi)))
	if yMax <= yMin {
		yMax = yMin * 10
	}
	y := func(v float64) float64 {
		v = math.Max(v, yMin)
		return (math.Log10(v) - math.Log10(yMin)) / (math.Log10(yMax) - math.Log10(yMin))
	}
	ch := lineChart{
		title: fmt.Sprintf("TPC-B transactions per second against added round-trip time, %s, scale %d",
			clientsLabel(r.config.RTTClients), r.config.Scale),
		subtitle: fmt.Sprintf("through a delaying proxy on loopback; logarithmic scale; %d rounds × %v per cell", r.config.Rounds, r.slice),
		xLabel:   "round-trip time added by the proxy",
		yLabel:   "transactions per second (log)",
	}
	for _, d := range rtts {
		ch.xTicks = append(ch.xTicks, tick{x(d), rttLabel(d)})
	}
	for dec := yMin; dec <= yMax*1.001; dec *= 10 {
		for _, m := range []float64{1, 2, 5} {
			if v := dec * m; v <= yMax*1.001 {
				ch.yTicks = append(ch.yTicks, tick{y(v), thousands(v)})
			}
		}
	}
	for _, v := range allVariants() {
		l := chartLine{v: v}
		for _, d := range rtts {
			if c, ok := r.rttCell(v, d); ok {
				l.pts = append(l.pts, [2]float64{x(d), y(c.TPS)})
			}
		}
		ch.lines = append(ch.lines, l)
	}
	return ch.write(w)
}

// write renders ch as a standalone SVG image.
func (ch lineChart) write(w io.Writer) error {
	const (
		width, height            = 840.0, 440.0
		left, right, top, bottom = 80.0, 300.0, 50.0, 60.0
		plotW, plotH             = width - left - right, height - top - bottom
	)
	px := func(f float64) float64 { return left + f*plotW }
	py := func(f float64) float64 { return top + plotH - f*plotH }

	var b strings.Builder
	p := func(format string, args ...any) { _, _ = fmt.Fprintf(&b, format, args...) }
	p(`<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	p(`<rect width="100%%" height="100%%" fill="white"/>` + "\n")
	p(`<text x="%.0f" y="24" font-size="15" font-weight="bold">%s</text>`+"\n", left, html.EscapeString(ch.title))
	p(`<text x="%.0f" y="40" fill="#555">%s</text>`+"\n", left, html.EscapeString(ch.subtitle))
	for _, t := range ch.yTicks {
		p(`<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#e5e5e5"/>`+"\n", left, left+plotW, py(t.at), py(t.at))
		p(`<text x="%.1f" y="%.1f" text-anchor="end" dominant-baseline="middle">%s</text>`+"\n", left-8, py(t.at), html.EscapeString(t.label))
	}
	p(`<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#333"/>`+"\n", left, left+plotW, top+plotH, top+plotH)
	p(`<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#333"/>`+"\n", left, left, top, top+plotH)
	for _, t := range ch.xTicks {
		p(`<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", px(t.at), top+plotH+18, html.EscapeString(t.label))
	}
	p(`<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", left+plotW/2, height-14, html.EscapeString(ch.xLabel))
	p(`<text transform="translate(18 %.1f) rotate(-90)" text-anchor="middle">%s</text>`+"\n", top+plotH/2, html.EscapeString(ch.yLabel))

	for li, l := range ch.lines {
		st := chartStyles[l.v]
		dash := ""
		if st.dash != "" {
			dash = fmt.Sprintf(` stroke-dasharray="%s"`, st.dash)
		}
		pts := make([]string, len(l.pts))
		for i, pt := range l.pts {
			pts[i] = fmt.Sprintf("%.1f,%.1f", px(pt[0]), py(pt[1]))
		}
		p(`<polyline points="%s" fill="none" stroke="%s" stroke-width="2"%s/>`+"\n", strings.Join(pts, " "), st.color, dash)
		for _, pt := range l.pts {
			p(`<circle cx="%.1f" cy="%.1f" r="3.5" fill="%s"/>`+"\n", px(pt[0]), py(pt[1]), st.color)
		}
		ly, lx := top+10+float64(li)*22, left+plotW+20
		p(`<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="%s" stroke-width="2"%s/>`+"\n", lx, lx+28, ly, ly, st.color, dash)
		p(`<circle cx="%.1f" cy="%.1f" r="3.5" fill="%s"/>`+"\n", lx+14, ly, st.color)
		p(`<text x="%.1f" y="%.1f" dominant-baseline="middle">%s</text>`+"\n", lx+36, ly, html.EscapeString(string(l.v)))
	}
	for i, n := range ch.notes {
		p(`<text x="%.1f" y="%.1f" fill="#555">%s</text>`+"\n", left+plotW+20, top+float64(len(ch.lines))*22+24+float64(i)*16, html.EscapeString(n))
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
