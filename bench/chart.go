package main

import (
	"fmt"
	"image/color"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

var implColors = [nImpl]color.Color{
	color.RGBA{R: 0x9e, G: 0x9e, B: 0x9e, A: 0xff}, // raw: grey
	color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}, // gossip: blue
	color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff}, // Watermill: orange
}

var implTitles = [nImpl]string{"raw", "gossip", "Watermill"}

// drawChart draws one panel per typed row (the scenarios with a
// Transport), each with three bars: raw, gossip, Watermill, in thousands of
// events per second on a linear axis of its own.
func drawChart(path string, scenarios []*Scenario, outcomes [][nImpl]*Outcome) error {
	var panels []*plot.Plot
	for k, s := range scenarios {
		if s.Transport == "" {
			continue
		}
		p := plot.New()
		p.Title.Text = s.Transport
		p.Title.TextStyle.Font.Size = vg.Points(11)
		p.Y.Label.Text = "k events/s"
		p.Y.Min = 0
		p.X.Tick.Label.Font.Size = vg.Points(9)
		p.Y.Tick.Label.Font.Size = vg.Points(8)
		names := make([]string, nImpl)
		w := vg.Points(30)
		var top float64
		for i := range nImpl {
			o := outcomes[k][i]
			v := o.Median() / 1e3
			top = max(top, v)
			bars, err := plotter.NewBarChart(plotter.Values{v}, w)
			if err != nil {
				return err
			}
			bars.Color = implColors[i]
			bars.LineStyle.Width = 0
			bars.XMin = float64(i)
			p.Add(bars)
			label := fmtRateBare(o.Median())
			switch {
			case len(o.Runs) == 0:
				label = missing(s, o, i)
			case o.Median() >= 1e6:
				label = fmt.Sprintf("%.2fM", o.Median()/1e6)
			case o.Median() >= 1e4:
				label = fmt.Sprintf("%.0fk", o.Median()/1e3)
			case o.Median() >= 1e3:
				label = fmt.Sprintf("%.1fk", o.Median()/1e3)
			}
			names[i] = implTitles[i]
			lbl, err := plotter.NewLabels(plotter.XYLabels{
				XYs:    plotter.XYs{{X: float64(i), Y: v}},
				Labels: []string{label},
			})
			if err != nil {
				return err
			}
			lbl.Offset = vg.Point{Y: vg.Points(3)}
			for j := range lbl.TextStyle {
				lbl.TextStyle[j].Font.Size = vg.Points(8)
				lbl.TextStyle[j].XAlign = draw.XCenter
			}
			p.Add(lbl)
		}
		p.Y.Max = max(top*1.18, 1)
		p.NominalX(names...)
		p.X.Min, p.X.Max = -0.7, float64(nImpl)-0.3
		panels = append(panels, p)
	}
	if len(panels) == 0 {
		return nil
	}
	cols := 4
	rows := (len(panels) + cols - 1) / cols
	img := vgimg.New(vg.Points(float64(cols)*200), vg.Points(float64(rows)*190))
	dc := draw.New(img)
	t := draw.Tiles{Rows: rows, Cols: cols, PadX: vg.Points(8), PadY: vg.Points(8),
		PadTop: vg.Points(6), PadBottom: vg.Points(6), PadLeft: vg.Points(6), PadRight: vg.Points(6)}
	grid := make([][]*plot.Plot, rows)
	for r := range grid {
		grid[r] = make([]*plot.Plot, cols)
		for c := range cols {
			if i := r*cols + c; i < len(panels) {
				grid[r][c] = panels[i]
			}
		}
	}
	canvases := plot.Align(grid, t, dc)
	for r := range grid {
		for c := range cols {
			if grid[r][c] != nil {
				grid[r][c].Draw(canvases[r][c])
			}
		}
	}
	return savePNG(path, img)
}
