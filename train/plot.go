package train

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// writePlots draws loss.png, accuracy.png and epsilon.png (against steps)
// from metrics.jsonl.
func writePlots(out, metricsPath string) error {
	b, err := os.ReadFile(metricsPath)
	if err != nil {
		return err
	}
	var loss, acc, eps plotter.XYs
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		step, _ := m["step"].(float64)
		if m["type"] == "step" {
			if v, ok := m["loss"].(float64); ok && !math.IsNaN(v) {
				loss = append(loss, plotter.XY{X: step, Y: v})
			}
			if v, ok := m["epsilon_rdp"].(float64); ok {
				eps = append(eps, plotter.XY{X: step, Y: v})
			}
		} else if m["type"] == "eval" {
			if v, ok := m["test_accuracy"].(float64); ok {
				acc = append(acc, plotter.XY{X: step, Y: 100 * v})
			}
		}
	}
	for _, p := range []struct {
		file, title, y string
		xy             plotter.XYs
	}{
		{"loss.png", "training loss", "loss (mean per example)", loss},
		{"accuracy.png", "test accuracy", "top-1 accuracy (%)", acc},
		{"epsilon.png", "privacy spent (RDP accountant)", "ε", eps},
	} {
		if len(p.xy) == 0 {
			continue
		}
		if err := linePlot(filepath.Join(out, p.file), p.title, p.y, p.xy); err != nil {
			return err
		}
	}
	return nil
}

func linePlot(path, title, ylabel string, xy plotter.XYs) error {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "step"
	p.Y.Label.Text = ylabel
	p.Add(plotter.NewGrid())
	if len(xy) == 1 {
		s, err := plotter.NewScatter(xy)
		if err != nil {
			return err
		}
		p.Add(s)
	} else {
		l, err := plotter.NewLine(xy)
		if err != nil {
			return err
		}
		p.Add(l)
	}
	wt, err := p.WriterTo(6*vg.Inch, 4*vg.Inch, "png")
	if err != nil {
		return err
	}
	var b bytes.Buffer
	if _, err := wt.WriteTo(&b); err != nil {
		return err
	}
	// Atomically, never through a link planted at the name.
	return writeFileAtomic(path, b.Bytes())
}
