package train

import (
	"bytes"
	"encoding/json"
	"math"
)

// JSONFloat is a float64 that JSON encodes NaN and ±Inf as null (an
// unknown accuracy, an unbounded ε), which encoding/json refuses to write,
// and decodes null as NaN. Every NaN-able number dptrain writes (summary,
// metrics, `dptrain privacy --json`) has this type.
type JSONFloat float64

// MarshalJSON writes f as a JSON number, or null when it is not finite.
func (f JSONFloat) MarshalJSON() ([]byte, error) {
	v := float64(f)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return []byte("null"), nil
	}
	return json.Marshal(v)
}

// UnmarshalJSON reads a number, or null as NaN.
func (f *JSONFloat) UnmarshalJSON(b []byte) error {
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		*f = JSONFloat(math.NaN())
		return nil
	}
	var v float64
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*f = JSONFloat(v)
	return nil
}
