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
// ε is the run's own accountant's (computed at the log cadence only: a PLD
// evaluation costs more than a small step).
type progress struct {
	w        io.Writer
	terminal bool
	total    int64
	start    time.Time
	first    int64
	drawn    bool
	loss     float64 // smoothed
	eps      string  // ε so far, as last computed
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

// update shows step. On the steps that are due (the log cadence and the
// last step) it logs a line and takes eps, the words for ε so far; the bar
// shows the last eps it was given.
func (p *progress) update(step int64, st dpsgd.StepStats, exPerSec float64, due bool, eps string, logf func(string, ...any)) {
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
	if due {
		p.eps = eps
	}
	epsS := p.eps
	if p.terminal {
		const width = 24
		fill := int(float64(width) * float64(step) / float64(max(p.total, 1)))
		bar := strings.Repeat("=", fill) + strings.Repeat(" ", width-fill)
		fmt.Fprintf(p.w, "\r\033[Kstep %d/%d [%s] %.0f ex/s loss %.4f%s left %v", step, p.total, bar, exPerSec, p.loss, epsS, left)
		p.drawn = true
		return
	}
	if due {
		logf("step %d/%d  %.0f ex/s  loss %.4f%s  left %v", step, p.total, exPerSec, p.loss, epsS, left)
	}
}
