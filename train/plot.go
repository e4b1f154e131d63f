package train

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"dptrain/checkpoint"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// writePlots draws loss.png, accuracy.png and epsilon.png (against steps)
// from metrics.jsonl. epsilon.png shows ε of the run's accountant kind
// (the one it budgets and reports: at the log cadence and at every
// evaluation), RDP's alongside when kind is another, and the target ε as
// a horizontal line when the run has one (target > 0).
func writePlots(out, metricsPath, kind string, target float64) error {
	b, err := os.ReadFile(metricsPath)
	if err != nil {
		return err
	}
	var loss, acc, eps, rdp plotter.XYs
	for _, line := range strings.Split(string(b), "\n") {
		var m map[string]any
		if line == "" || json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		step, _ := m["step"].(float64)
		add := func(xy *plotter.XYs, key string, scale float64) {
			if v, ok := m[key].(float64); ok && !math.IsNaN(v) {
				*xy = append(*xy, plotter.XY{X: step, Y: scale * v})
			}
		}
		switch m["type"] {
		case "step":
			add(&loss, "loss", 1)
			add(&eps, "epsilon", 1)
			add(&rdp, "epsilon_rdp", 1)
		case "eval":
			add(&acc, "test_accuracy", 100)
			add(&eps, "epsilon", 1)
		}
	}
	sort.SliceStable(eps, func(i, j int) bool { return eps[i].X < eps[j].X })
	if err := linePlot(filepath.Join(out, "loss.png"), "training loss", "loss (mean per example)", series{"", loss}); err != nil {
		return err
	}
	if err := linePlot(filepath.Join(out, "accuracy.png"), "test accuracy", "top-1 accuracy (%)", series{"", acc}); err != nil {
		return err
	}
	if kind == "" {
		return nil
	}
	ss := []series{{"ε (" + strings.ToUpper(kind) + ", the run's accountant)", eps}}
	if kind != "rdp" {
		ss = append(ss, series{"ε (RDP)", rdp})
	}
	if target > 0 && len(rdp) > 0 {
		ss = append(ss, series{fmt.Sprintf("target ε = %g", target), plotter.XYs{{X: 0, Y: target}, {X: rdp[len(rdp)-1].X, Y: target}}})
	}
	return linePlot(filepath.Join(out, "epsilon.png"), "privacy spent", "ε", ss...)
}

// series is one named line of a plot ("" for a plot of one line).
type series struct {
	name string
	xy   plotter.XYs
}

func linePlot(path, title, ylabel string, ss ...series) error {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "step"
	p.Y.Label.Text = ylabel
	p.Add(plotter.NewGrid())
	drawn := 0
	for i, s := range ss {
		if len(s.xy) == 0 {
			continue
		}
		drawn++
		var th plot.Thumbnailer
		if len(s.xy) == 1 {
			sc, err := plotter.NewScatter(s.xy)
			if err != nil {
				return err
			}
			sc.Color = plotutil.Color(i)
			p.Add(sc)
			th = sc
		} else {
			l, err := plotter.NewLine(s.xy)
			if err != nil {
				return err
			}
			l.Color = plotutil.Color(i)
			l.Dashes = plotutil.Dashes(i)
			p.Add(l)
			th = l
		}
		if s.name != "" {
			p.Legend.Add(s.name, th)
		}
	}
	if drawn == 0 {
		return nil
	}
	p.Legend.Top, p.Legend.Left = true, true
	return savePNG(p, path)
}

// savePNG writes p as a 6×4 inch PNG at path: atomically, never through a
// link planted at the name.
func savePNG(p *plot.Plot, path string) error {
	wt, err := p.WriterTo(6*vg.Inch, 4*vg.Inch, "png")
	if err != nil {
		return err
	}
	var b bytes.Buffer
	if _, err := wt.WriteTo(&b); err != nil {
		return err
	}
	return checkpoint.WriteFileAtomic(path, b.Bytes())
}
