package accounting

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"os"
	"strings"
	"testing"
)

func TestLedgerCoalescesAndRecomputes(t *testing.T) {
	var l Ledger
	for range 500 {
		if err := l.Record(Step(0.01, 1.1)); err != nil {
			t.Fatal(err)
		}
	}
	for range 200 {
		if err := l.Record(Step(0.02, 1.1)); err != nil { // the batch doubled
			t.Fatal(err)
		}
	}
	if err := l.RecordN(Step(0.01, 1.1), 300); err != nil {
		t.Fatal(err)
	}
	want := []LedgerEntry{{Step(0.01, 1.1), 500}, {Step(0.02, 1.1), 200}, {Step(0.01, 1.1), 300}}
	got := l.Entries()
	if len(got) != len(want) || l.Len() != 1000 {
		t.Fatalf("entries %v (len %d), want %v", got, l.Len(), want)
	}
	for i := range want {
		if !equalEvents(got[i].Event, want[i].Event) || got[i].Count != want[i].Count {
			t.Fatalf("entry %d = %v, want %v", i, got[i], want[i])
		}
	}
	// Event() merges the two runs of q = 0.01 (composition commutes).
	ev := l.Event()
	if len(ev.Events) != 2 || ev.Events[0].(SelfComposed).Count != 800 {
		t.Fatalf("Event() = %v", ev)
	}
	// ε from the ledger equals ε of the events composed directly.
	for _, kind := range []Kind{KindRDP, KindPLD} {
		a, _ := New(kind)
		if err := a.Compose(Steps(0.01, 1.1, 800)); err != nil {
			t.Fatal(err)
		}
		if err := a.Compose(Steps(0.02, 1.1, 200)); err != nil {
			t.Fatal(err)
		}
		direct, _ := a.Epsilon(1e-5)
		fromLedger, err := l.Epsilon(kind, 1e-5)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(direct-fromLedger) > 1e-12*direct {
			t.Errorf("%s: ledger ε = %.15g, direct %.15g", kind, fromLedger, direct)
		}
		d, err := l.Delta(kind, fromLedger)
		if err != nil || d > 1e-5*(1+1e-9) {
			t.Errorf("%s: ledger δ(ε) = %g, %v", kind, d, err)
		}
	}
}

func TestLedgerRejectsBadEvents(t *testing.T) {
	var l Ledger
	if err := l.Record(Step(0.01, 1)); err != nil {
		t.Fatal(err)
	}
	for _, e := range []Event{Step(1.5, 1), Step(0.1, 0), nil, foreign{}} {
		if err := l.Record(e); err == nil {
			t.Errorf("Record(%v) accepted", e)
		}
	}
	if err := l.RecordN(Step(0.01, 1), -1); !errors.Is(err, ErrInvalid) {
		t.Errorf("RecordN(-1): %v", err)
	}
	if l.Len() != 1 {
		t.Errorf("failed records changed the ledger: %v", l.Entries())
	}
	if _, err := l.Epsilon("moments", 1e-5); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad kind: %v", err)
	}
}

func TestLedgerJSONRoundTrip(t *testing.T) {
	var l Ledger
	_ = l.RecordN(Step(65536.0/1281167, 1.3127), 1369)
	_ = l.RecordN(Step(0.1+0.2, 2.5), 3)
	_ = l.Record(Gaussian{7})
	b, err := json.Marshal(&l)
	if err != nil {
		t.Fatal(err)
	}
	var back Ledger
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	want, got := l.Entries(), back.Entries()
	if len(got) != len(want) {
		t.Fatalf("round trip: %v, want %v", got, want)
	}
	for i := range want {
		if !equalEvents(got[i].Event, want[i].Event) || got[i].Count != want[i].Count {
			t.Errorf("entry %d: %v, want %v", i, got[i], want[i])
		}
	}
	e1, _ := l.Epsilon(KindRDP, 1e-6)
	e2, _ := back.Epsilon(KindRDP, 1e-6)
	if e1 != e2 {
		t.Errorf("ε changed over a round trip: %v → %v", e1, e2)
	}
	// An empty ledger round-trips too.
	b, _ = json.Marshal(&Ledger{})
	if err := json.Unmarshal(b, &back); err != nil || back.Len() != 0 {
		t.Errorf("empty ledger: %s, %v, %v", b, err, back.Entries())
	}
}

func TestLedgerUnmarshalErrors(t *testing.T) {
	const head = `{"format":"dptrain.accounting.ledger","version":1,"entries":`
	step := `{"type":"poisson_sampled","sampling_rate":0.01,"event":{"type":"gaussian","noise_multiplier":1}}`
	cases := []struct{ json, want string }{
		{`{"format":"other","version":1,"entries":[]}`, "format"},
		{`{"format":"dptrain.accounting.ledger","version":9,"entries":[]}`, "version 9"},
		{head + `[{"count":0,"event":` + step + `}]}`, "entries[0].count = 0"},
		{head + `[{"count":1,"event":` + step + `},{"count":2,"event":{"type":"gaussian","noise_multiplier":-1}}]}`, "entries[1].event: "},
		{head + `[{"count":1,"event":{"type":"poisson_sampled","sampling_rate":2,"event":{"type":"gaussian","noise_multiplier":1}}}]}`, "q=2"},
		{head + `[{"count":1}]}`, "entries[0].event: missing event"},
		{head + `[{"count":1,"event":` + step + `,"extra":1}]}`, `unknown field "extra"`},
		{`[1,2]`, "ledger:"},
	}
	for _, c := range cases {
		l := Ledger{}
		_ = l.Record(Gaussian{3})
		err := json.Unmarshal([]byte(c.json), &l)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to name %q", c.json, err, c.want)
		}
		if l.Len() != 1 {
			t.Errorf("%s: failed decode changed the ledger", c.json)
		}
	}
}

// TestLedgerV1Stable guards the evolution rules (doc.go): a version-1
// ledger as checkpoints hold it, with every event type, still decodes to
// the same events, encodes to the same JSON, and means the same ε.
func TestLedgerV1Stable(t *testing.T) {
	b, err := os.ReadFile("testdata/ledger_v1.json")
	if err != nil {
		t.Fatal(err)
	}
	var l Ledger
	if err := json.Unmarshal(b, &l); err != nil {
		t.Fatal(err)
	}
	want := []LedgerEntry{
		{Event: SelfComposed{Event: Gaussian{8}, Count: 2}, Count: 1},
		{Event: Step(256.0/60000, 1.1), Count: 2344},
		{Event: Composed{Events: []Event{Gaussian{5}, Steps(0.5, 4, 3)}}, Count: 1},
	}
	got := l.Entries()
	if len(got) != len(want) {
		t.Fatalf("entries %v, want %v", got, want)
	}
	for i := range want {
		if got[i].Count != want[i].Count || !equalEvents(got[i].Event, want[i].Event) {
			t.Errorf("entry %d = %v, want %v", i, got[i], want[i])
		}
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, b); err != nil {
		t.Fatal(err)
	}
	if again, _ := json.Marshal(&l); !bytes.Equal(again, compact.Bytes()) {
		t.Errorf("re-encoded as\n%s\nwant\n%s", again, compact.Bytes())
	}
	// dptrain's RDP ε of this ledger when the file was written.
	if eps, err := l.Epsilon(KindRDP, 1e-5); err != nil || math.Abs(eps-1.8388696729189649) > 1e-9*eps {
		t.Errorf("RDP ε = %.17g, %v; want 1.8388696729189649", eps, err)
	}
}
