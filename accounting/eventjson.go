package accounting

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Event JSON is a tagged union, e.g. one DP-SGD step:
//
//	{"type":"poisson_sampled","sampling_rate":0.01,
//	 "event":{"type":"gaussian","noise_multiplier":1.1}}
//
// with types "gaussian" (noise_multiplier), "poisson_sampled"
// (sampling_rate, event), "self_composed" (count, event) and "composed"
// (events). Floats round-trip exactly.
type jsonEvent struct {
	Type            string       `json:"type"`
	NoiseMultiplier *float64     `json:"noise_multiplier,omitempty"`
	SamplingRate    *float64     `json:"sampling_rate,omitempty"`
	Count           *int         `json:"count,omitempty"`
	Event           *jsonEvent   `json:"event,omitempty"`
	Events          []*jsonEvent `json:"events,omitempty"`
}

// MarshalEvent encodes one of this package's events as JSON; other Event
// implementations are an error wrapping [ErrUnsupported].
func MarshalEvent(e Event) ([]byte, error) {
	j, err := toJSONEvent(e)
	if err != nil {
		return nil, err
	}
	return json.Marshal(j)
}

// UnmarshalEvent decodes and validates an event encoded by [MarshalEvent].
func UnmarshalEvent(data []byte) (Event, error) {
	var j jsonEvent
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return nil, fmt.Errorf("event: %w", err)
	}
	e, err := fromJSONEvent(&j, "event")
	if err != nil {
		return nil, err
	}
	if err := e.Validate(); err != nil {
		return nil, err
	}
	return e, nil
}

func toJSONEvent(e Event) (*jsonEvent, error) {
	switch x := e.(type) {
	case Gaussian:
		s := x.NoiseMultiplier
		return &jsonEvent{Type: "gaussian", NoiseMultiplier: &s}, nil
	case PoissonSampled:
		in, err := toJSONEvent(x.Event)
		if err != nil {
			return nil, err
		}
		q := x.SamplingRate
		return &jsonEvent{Type: "poisson_sampled", SamplingRate: &q, Event: in}, nil
	case SelfComposed:
		in, err := toJSONEvent(x.Event)
		if err != nil {
			return nil, err
		}
		n := x.Count
		return &jsonEvent{Type: "self_composed", Count: &n, Event: in}, nil
	case Composed:
		out := &jsonEvent{Type: "composed", Events: make([]*jsonEvent, len(x.Events))}
		for i, s := range x.Events {
			in, err := toJSONEvent(s)
			if err != nil {
				return nil, err
			}
			out.Events[i] = in
		}
		return out, nil
	default:
		return nil, fmt.Errorf("%w: cannot encode %T as JSON", ErrUnsupported, e)
	}
}

// fromJSONEvent converts j; path names it in errors (e.g. "entries[3].event").
func fromJSONEvent(j *jsonEvent, path string) (Event, error) {
	if j == nil {
		return nil, fmt.Errorf("%s: missing event", path)
	}
	need := func(ok bool, field string) error {
		if !ok {
			return fmt.Errorf("%s: %q event needs field %q", path, j.Type, field)
		}
		return nil
	}
	switch j.Type {
	case "gaussian":
		if err := need(j.NoiseMultiplier != nil, "noise_multiplier"); err != nil {
			return nil, err
		}
		return Gaussian{NoiseMultiplier: *j.NoiseMultiplier}, nil
	case "poisson_sampled":
		if err := need(j.SamplingRate != nil, "sampling_rate"); err != nil {
			return nil, err
		}
		in, err := fromJSONEvent(j.Event, path+".event")
		if err != nil {
			return nil, err
		}
		return PoissonSampled{SamplingRate: *j.SamplingRate, Event: in}, nil
	case "self_composed":
		if err := need(j.Count != nil, "count"); err != nil {
			return nil, err
		}
		in, err := fromJSONEvent(j.Event, path+".event")
		if err != nil {
			return nil, err
		}
		return SelfComposed{Event: in, Count: *j.Count}, nil
	case "composed":
		c := Composed{Events: make([]Event, len(j.Events))}
		for i, s := range j.Events {
			in, err := fromJSONEvent(s, fmt.Sprintf("%s.events[%d]", path, i))
			if err != nil {
				return nil, err
			}
			c.Events[i] = in
		}
		return c, nil
	default:
		return nil, fmt.Errorf("%s: unknown event type %q (want gaussian, poisson_sampled, self_composed or composed)", path, j.Type)
	}
}
