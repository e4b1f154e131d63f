package train

import (
	"encoding/json"
	"math"
	"testing"
)

func TestJSONFloatRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		in   float64
		json string
	}{
		{1.5, "1.5"}, {0, "0"}, {-2e-9, "-2e-9"},
		{math.NaN(), "null"}, {math.Inf(1), "null"}, {math.Inf(-1), "null"},
	} {
		b, err := json.Marshal(struct {
			X JSONFloat `json:"x"`
		}{JSONFloat(tc.in)})
		if err != nil || string(b) != `{"x":`+tc.json+`}` {
			t.Fatalf("%v: %s, %v; want x = %s", tc.in, b, err, tc.json)
		}
		var back struct {
			X JSONFloat `json:"x"`
		}
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		got := float64(back.X)
		if math.IsInf(tc.in, 0) {
			tc.in = math.NaN() // null reads back as unknown
		}
		if !(got == tc.in || math.IsNaN(got) && math.IsNaN(tc.in)) {
			t.Errorf("%s read back as %v, want %v", b, got, tc.in)
		}
	}
	var x JSONFloat
	if err := json.Unmarshal([]byte(`"1"`), &x); err == nil {
		t.Error("a string decoded as a number")
	}
}
