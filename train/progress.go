package train

import (
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"dptrain/dpsgd"
)

// progress shows training progress: a redrawn one-line bar on a terminal
// (steps, examples/s, loss, ε so far, time left), plain log lines otherwise.
type progress struct {
	w        io.Writer
	terminal bool
	total    int64
	start    time.Time
	first    int64
	drawn    bool
	loss     float64 // smoothed
}

func newProgress(w io.Writer, terminal bool, total int64) *progress {
	return &progress{w: w, terminal: terminal, total: total, start: time.Now(), first: -1, loss: math.NaN()}
}

func (p *progress) clear() {
	if p != nil && p.drawn && p.w != nil {
		fmt.Fprint(p.w, "\r\033[K")
		p.drawn = false
	}
}

func (p *progress) update(step int64, st dpsgd.StepStats, exPerSec, eps float64, every int, logf func(string, ...any)) {
	if p == nil || p.w == nil {
		return
	}
	if p.first < 0 {
		p.first = step - 1
		p.start = time.Now()
	}
	l := st.MeanLoss()
	if !math.IsNaN(l) {
		if math.IsNaN(p.loss) {
			p.loss = l
		} else {
			p.loss = 0.9*p.loss + 0.1*l
		}
	}
	done := step - p.first
	elapsed := time.Since(p.start)
	left := time.Duration(float64(elapsed) / float64(done) * float64(p.total-step)).Round(time.Second)
	epsS := ""
	if !math.IsNaN(eps) {
		epsS = fmt.Sprintf(" ε(rdp) %.3g", eps)
	}
	if p.terminal {
		const width = 24
		fill := int(float64(width) * float64(step) / float64(max(p.total, 1)))
		bar := strings.Repeat("=", fill) + strings.Repeat(" ", width-fill)
		fmt.Fprintf(p.w, "\r\033[Kstep %d/%d [%s] %.0f ex/s loss %.4f%s left %v", step, p.total, bar, exPerSec, p.loss, epsS, left)
		p.drawn = true
		return
	}
	if step%int64(max(every, 1)) == 0 || step == p.total {
		logf("step %d/%d  %.0f ex/s  loss %.4f%s  left %v", step, p.total, exPerSec, p.loss, epsS, left)
	}
}
