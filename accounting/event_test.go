package accounting

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func TestEventValidate(t *testing.T) {
	cases := []struct {
		name string
		e    Event
		want string // substring naming the quantity; "" = valid
	}{
		{"gaussian", Gaussian{1}, ""},
		{"step", Step(0.01, 1.1), ""},
		{"q=1", Step(1, 1.1), ""},
		{"steps", Steps(0.01, 1.1, 0), ""},
		{"composed", Composed{Events: []Event{Gaussian{2}, Steps(0.5, 1, 3)}}, ""},
		{"sigma zero", Gaussian{0}, "σ=0"},
		{"sigma negative", Step(0.1, -1), "σ=-1"},
		{"sigma inf", Gaussian{math.Inf(1)}, "σ=+Inf"},
		{"sigma nan", Gaussian{math.NaN()}, "σ=NaN"},
		{"q too big", Step(1.5, 1), "sampling rate q=1.5 must be in (0, 1]"},
		{"q zero", Step(0, 1), "q=0"},
		{"q nan", Step(math.NaN(), 1), "q=NaN"},
		{"negative count", Steps(0.1, 1, -3), "n=-3"},
		{"nil inner", PoissonSampled{SamplingRate: 0.1}, "no inner event"},
		{"nil self", SelfComposed{Count: 2}, "no inner event"},
		{"nil in composed", Composed{Events: []Event{Gaussian{1}, nil}}, "event 1 is nil"},
		{"deep", Composed{Events: []Event{SelfComposed{Event: Step(2, 1), Count: 1}}}, "q=2"},
	}
	for _, c := range cases {
		err := c.e.Validate()
		if c.want == "" {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want ErrInvalid naming %q", c.name, err, c.want)
		}
	}
}

// foreign is an Event this package does not know.
type foreign struct{}

func (foreign) Validate() error { return nil }
func (foreign) String() string  { return "foreign" }

func TestConstructorPanics(t *testing.T) {
	expect := func(name string, f func(), check func(any) bool) {
		defer func() {
			if r := recover(); r == nil || !check(r) {
				t.Errorf("%s: panic %v", name, r)
			}
		}()
		f()
	}
	isOrders := func(r any) bool { _, ok := r.(*OrdersError); return ok }
	isDisc := func(r any) bool { _, ok := r.(*DiscretizationError); return ok }
	expect("order 1", func() { NewRDP([]float64{2, 1}) }, isOrders)
	expect("order inf", func() { NewRDP([]float64{math.Inf(1)}) }, isOrders)
	expect("interval -1", func() { NewPLD(PLDOptions{DiscretizationInterval: -1}) }, isDisc)
}

func TestEventJSONRoundTrip(t *testing.T) {
	events := []Event{
		Gaussian{0.1 + 0.2},
		Step(65536.0/1281167, 1.3127),
		Steps(1.0/3, 2.5, 1000),
		Composed{Events: []Event{Gaussian{3}, Steps(0.01, 1, 7), Composed{}}},
	}
	for _, e := range events {
		b, err := MarshalEvent(e)
		if err != nil {
			t.Fatal(err)
		}
		got, err := UnmarshalEvent(b)
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if !equalEvents(got, e) {
			t.Errorf("round trip of %v gave %v (%s)", e, got, b)
		}
	}
	if _, err := MarshalEvent(foreign{}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("MarshalEvent(foreign) = %v", err)
	}
	bad := []struct{ json, want string }{
		{`{"type":"laplace","noise_multiplier":1}`, `unknown event type "laplace"`},
		{`{"type":"gaussian"}`, `"noise_multiplier"`},
		{`{"type":"gaussian","noise_multiplier":-1}`, "σ=-1"},
		{`{"type":"poisson_sampled","sampling_rate":0.1}`, "event.event: missing event"},
		{`{"type":"composed","events":[{"type":"gaussian","noise_multiplier":1},{"type":"x"}]}`, "event.events[1]"},
		{`{"type":"gaussian","noise_multiplier":1,"sigma":2}`, `unknown field "sigma"`},
	}
	for _, c := range bad {
		if _, err := UnmarshalEvent([]byte(c.json)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("UnmarshalEvent(%s) = %v, want error naming %q", c.json, err, c.want)
		}
	}
}
