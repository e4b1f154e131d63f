package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"dptrain/data"
)

// progressBar renders a prepare's progress on stderr: a bar redrawn in
// place (at most 5 times a second) on a terminal, a line every 30 s
// otherwise (a log file), or nothing.
type progressBar struct {
	w        io.Writer
	mode     string // bar, lines or none
	start    time.Time
	last     time.Time
	every    time.Duration
	p        data.PrepareProgress
	timeNow  func() time.Time
	startAt  int // Done when this run began (resumed images)
	haveBase bool
}

func newProgressBar(mode string, w io.Writer) (*progressBar, error) {
	switch mode {
	case "auto":
		mode = "lines"
		if f, ok := w.(*os.File); ok {
			if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
				mode = "bar"
			}
		}
	case "bar", "lines", "none":
	default:
		return nil, fmt.Errorf("--progress %q: expected auto, bar, lines or none", mode)
	}
	b := &progressBar{w: w, mode: mode, timeNow: time.Now}
	b.every = 30 * time.Second
	if mode == "bar" {
		b.every = 200 * time.Millisecond
	}
	b.start = b.timeNow()
	b.last = b.start
	return b, nil
}

func (b *progressBar) update(p data.PrepareProgress) {
	if !b.haveBase {
		b.startAt, b.haveBase = p.Done-1, true
	}
	b.p = p
	if b.mode == "none" {
		return
	}
	if now := b.timeNow(); now.Sub(b.last) >= b.every {
		b.last = now
		b.draw(now)
	}
}

// line is the progress as text: count, percentage, rate of this run, ETA.
func (b *progressBar) line(now time.Time) string {
	p := b.p
	el := now.Sub(b.start).Seconds()
	rate := float64(p.Done-b.startAt) / max(el, 1e-9)
	eta := "?"
	if rate > 0 {
		eta = (time.Duration(float64(p.Total-p.Done)/rate) * time.Second).Round(time.Second).String()
	}
	frac := float64(p.Done) / float64(max(p.Total, 1))
	s := fmt.Sprintf("%5.1f%%  %d/%d images  %.0f images/s  ETA %s", 100*frac, p.Done, p.Total, rate, eta)
	if p.Skipped > 0 {
		s += fmt.Sprintf("  skipped %d", p.Skipped)
	}
	if p.Resumed > 0 {
		s += fmt.Sprintf("  (resumed at %d)", p.Resumed)
	}
	if b.mode == "bar" {
		const width = 30
		n := int(frac * width)
		s = "[" + strings.Repeat("=", n) + strings.Repeat(" ", width-n) + "] " + s
	}
	return s
}

func (b *progressBar) draw(now time.Time) {
	if b.mode == "bar" {
		fmt.Fprintf(b.w, "\r%s\x1b[K", b.line(now))
		return
	}
	fmt.Fprintf(b.w, "prepare: %s\n", b.line(now))
}

// finish ends the bar's line (the summary follows on stdout).
func (b *progressBar) finish() {
	if b.mode == "bar" && b.haveBase {
		b.draw(b.timeNow())
		fmt.Fprintln(b.w)
	}
}
