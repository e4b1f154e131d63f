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
	"reflect"
	"strings"

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
		if err := writeFileAtomic(path, nil); err != nil {
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
	if err := writeFileAtomic(path, keep.Bytes()); err != nil {
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
	b, err := json.Marshal(nanToNull(v))
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

func (m *metricsWriter) step(step int64, st dpsgd.StepStats, lr, secs, epsRDP, wall float64) error {
	rec := map[string]any{"type": "step", "step": step, "loss": st.MeanLoss(), "lr": lr, "examples": st.Examples,
		"seconds": secs, "examples_per_sec": float64(st.Examples) / secs, "wall_seconds": wall}
	if st.NoiseStd > 0 || st.Clipped > 0 {
		rec["clipped_fraction"] = float64(st.Clipped) / math.Max(1, float64(st.Examples))
		rec["mean_grad_norm"] = st.NormSum / math.Max(1, float64(st.Examples))
		rec["epsilon_rdp"] = epsRDP
	}
	return m.write(rec)
}

func (m *metricsWriter) eval(step int64, e *EvalResult, eps float64) error {
	return m.write(map[string]any{"type": "eval", "step": step, "test_accuracy": e.Top1, "test_top5": e.Top5, "test_loss": e.Loss, "epsilon": eps})
}

func (m *metricsWriter) Close() error {
	if m == nil {
		return nil
	}
	m.w.Flush()
	return m.f.Close()
}

// nanToNull converts v (structs, maps, slices of them) to plain JSON values
// with NaN and ±Inf floats as null, which encoding/json cannot write.
func nanToNull(v any) any {
	return walk(reflect.ValueOf(v))
}

func walk(v reflect.Value) any {
	switch v.Kind() {
	case reflect.Invalid:
		return nil
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return walk(v.Elem())
	case reflect.Float32, reflect.Float64:
		f := v.Float()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil
		}
		return f
	case reflect.Struct:
		out := map[string]any{}
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name := f.Name
			tag := f.Tag.Get("json")
			if tag == "" {
				tag = f.Tag.Get("yaml")
			}
			omit := false
			if tag != "" {
				parts := strings.Split(tag, ",")
				if parts[0] == "-" {
					continue
				}
				if parts[0] != "" {
					name = parts[0]
				}
				omit = strings.Contains(tag, "omitempty")
			}
			if omit && v.Field(i).IsZero() {
				continue
			}
			out[name] = walk(v.Field(i))
		}
		return out
	case reflect.Map:
		out := map[string]any{}
		for _, k := range v.MapKeys() {
			out[k.String()] = walk(v.MapIndex(k))
		}
		return out
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.IsNil() {
			return nil
		}
		out := make([]any, v.Len())
		for i := range out {
			out[i] = walk(v.Index(i))
		}
		return out
	}
	return v.Interface()
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
