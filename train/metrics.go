package train

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"

	"dptrain/checkpoint"
	"dptrain/dpsgd"
)

// metricsWriter appends one JSON object per line to metrics.jsonl.
type metricsWriter struct {
	f *os.File
	w *bufio.Writer
}

// openMetrics opens metrics.jsonl for appending. On resume, lines for steps
// after the checkpoint (written before a crash) are dropped first, so the
// file matches the run that continues.
func openMetrics(path string, step int64, resumed bool) (*metricsWriter, error) {
	if !resumed {
		// A fresh file, never written through a planted link.
		if err := checkpoint.WriteFileAtomic(path, nil); err != nil {
			return nil, err
		}
		f, err := openNoFollow(path, os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return nil, err
		}
		return &metricsWriter{f: f, w: bufio.NewWriter(f)}, nil
	}
	old, err := readNoFollow(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	var keep bytes.Buffer
	for _, line := range strings.Split(string(old), "\n") {
		var m struct {
			Step int64 `json:"step"`
		}
		if line == "" || json.Unmarshal([]byte(line), &m) != nil || m.Step > step {
			continue
		}
		keep.WriteString(line + "\n")
	}
	if err := checkpoint.WriteFileAtomic(path, keep.Bytes()); err != nil {
		return nil, err
	}
	f, err := openNoFollow(path, os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	return &metricsWriter{f: f, w: bufio.NewWriter(f)}, nil
}

// write appends one line. A failed write (a full disk) is returned: the run
// stops rather than go on with a metrics file that silently ends early.
func (m *metricsWriter) write(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	if _, err := m.w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("writing %s: %w", m.f.Name(), err)
	}
	if err := m.w.Flush(); err != nil {
		return fmt.Errorf("writing %s: %w", m.f.Name(), err)
	}
	return nil
}

// step writes a step line. eps is ε of the run's accountant, written
// when computed (not NaN: at the log cadence); epsRDP is written on every
// line of a private run. dataWait is the part of secs spent waiting for
// the loader (0 when it kept the step fed).
func (m *metricsWriter) step(step int64, st dpsgd.StepStats, lr, secs, dataWait, eps, epsRDP, wall float64) error {
	rec := map[string]any{"type": "step", "step": step, "loss": JSONFloat(st.MeanLoss()), "lr": lr, "examples": st.Examples,
		"seconds": secs, "data_wait_seconds": dataWait, "examples_per_sec": JSONFloat(float64(st.Examples) / secs), "wall_seconds": wall}
	if st.NoiseStd > 0 || st.Clipped > 0 {
		rec["clipped_fraction"] = float64(st.Clipped) / math.Max(1, float64(st.Examples))
		rec["mean_grad_norm"] = st.NormSum / math.Max(1, float64(st.Examples))
		rec["epsilon_rdp"] = JSONFloat(epsRDP)
		if !math.IsNaN(eps) {
			rec["epsilon"] = eps
		}
	}
	return m.write(rec)
}

func (m *metricsWriter) eval(step int64, e *EvalResult, eps float64) error {
	return m.write(map[string]any{"type": "eval", "step": step, "test_accuracy": e.Top1, "test_top5": e.Top5, "test_loss": e.Loss, "epsilon": JSONFloat(eps)})
}

func (m *metricsWriter) Close() error {
	if m == nil {
		return nil
	}
	m.w.Flush()
	return m.f.Close()
}

// readNoFollow reads a file of --out without following a link at its name.
func readNoFollow(path string) ([]byte, error) {
	f, err := openNoFollow(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}
