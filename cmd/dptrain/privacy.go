package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"strings"

	"dptrain/accounting"
)

func init() { register("privacy", "privacy accounting: epsilon, calibrate", runPrivacy) }

const privacyUsage = `usage:
  dptrain privacy epsilon   --sampling-rate Q --steps T --noise-multiplier S --delta D [--accountant rdp|pld] [--json]
  dptrain privacy epsilon   --dataset-size N --batch-size B --epochs E --noise-multiplier S --delta D [...]
  dptrain privacy calibrate --epsilon E --delta D (--sampling-rate Q --steps T | --dataset-size N --batch-size B --epochs E)
                            [--accountant rdp|pld] [--json]

With --dataset-size/--batch-size/--epochs, q = B/N and steps = ceil(epochs·N/B).
The default accountant is pld (as training uses); human output shows RDP alongside.
Run 'dptrain privacy <subcommand> -h' for the flags.
`

// runPrivacy is the "privacy" command: ε of a DP-SGD schedule, or the noise
// multiplier for a target ε.
func runPrivacy(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, privacyUsage)
		return errUsage
	}
	switch args[0] {
	case "-h", "--help", "help":
		fmt.Fprint(stdout, privacyUsage)
		return nil
	case "epsilon":
		return privacyEpsilon(args[1:], stdout, stderr)
	case "calibrate":
		return privacyCalibrate(args[1:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "dptrain privacy: unknown subcommand %q\n\n%s", args[0], privacyUsage)
		return errUsage
	}
}

// privacyFlags are the flags both subcommands share.
type privacyFlags struct {
	fs           *flag.FlagSet
	samplingRate float64
	steps        int
	datasetSize  int
	batchSize    int
	epochs       float64
	delta        float64
	accountant   string
	kind         accounting.Kind // parsed from accountant by resolve
	json         bool
}

func newPrivacyFlags(name string, stderr io.Writer) *privacyFlags {
	p := &privacyFlags{fs: flag.NewFlagSet("dptrain privacy "+name, flag.ContinueOnError)}
	fs := p.fs
	fs.SetOutput(stderr)
	fs.Float64Var(&p.samplingRate, "sampling-rate", 0, "Poisson sampling rate `Q` in (0, 1] (with --steps)")
	fs.IntVar(&p.steps, "steps", 0, "number of training steps `T` (with --sampling-rate)")
	fs.IntVar(&p.datasetSize, "dataset-size", 0, "number of training examples `N` (with --batch-size, --epochs)")
	fs.IntVar(&p.batchSize, "batch-size", 0, "expected logical batch size `B` (q = B/N)")
	fs.Float64Var(&p.epochs, "epochs", 0, "number of epochs `E` (steps = ceil(E·N/B))")
	fs.Float64Var(&p.delta, "delta", 0, "target `δ` in (0, 1) (required)")
	fs.StringVar(&p.accountant, "accountant", string(accounting.KindPLD), "accountant: "+strings.Join(accounting.Kinds(), " or "))
	fs.BoolVar(&p.json, "json", false, "print one JSON object instead of text")
	return p
}

// parse parses args; a nil error with done=true means -h was handled.
func (p *privacyFlags) parse(args []string) (set map[string]bool, done bool, err error) {
	if err := p.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, true, nil
		}
		return nil, false, errUsage // the flag package printed the problem
	}
	if p.fs.NArg() > 0 {
		return nil, false, fmt.Errorf("unexpected argument %q (all inputs are flags)", p.fs.Arg(0))
	}
	set = map[string]bool{}
	p.fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	return set, false, nil
}

// schedule is the resolved (q, steps) and how it was given.
type schedule struct {
	q     float64
	steps int
	desc  string // for human output
}

// at is the schedule with noise multiplier sigma, as the accountants take it.
func (s schedule) at(sigma float64) accounting.Schedule {
	return accounting.Schedule{SamplingRate: s.q, NoiseMultiplier: sigma, Steps: s.steps}
}

// resolve checks the flag combination and returns the schedule. minSteps
// is the smallest acceptable number of steps.
func (p *privacyFlags) resolve(set map[string]bool, minSteps int) (schedule, error) {
	if !set["delta"] {
		return schedule{}, errors.New("missing --delta")
	}
	if !(p.delta > 0 && p.delta < 1) {
		return schedule{}, fmt.Errorf("--delta=%g must be in (0, 1)", p.delta)
	}
	kind, err := accounting.ParseKind(p.accountant)
	if err != nil {
		return schedule{}, fmt.Errorf("--accountant=%q must be %s", p.accountant, strings.Join(accounting.Kinds(), " or "))
	}
	p.kind = kind
	byRate := []string{"sampling-rate", "steps"}
	byData := []string{"dataset-size", "batch-size", "epochs"}
	given := func(names []string) (in, out []string) {
		for _, n := range names {
			if set[n] {
				in = append(in, "--"+n)
			} else {
				out = append(out, "--"+n)
			}
		}
		return in, out
	}
	rateIn, rateMissing := given(byRate)
	dataIn, dataMissing := given(byData)
	switch {
	case len(rateIn) > 0 && len(dataIn) > 0:
		return schedule{}, fmt.Errorf("%s cannot be combined with %s: give either --sampling-rate and --steps, or --dataset-size, --batch-size and --epochs",
			strings.Join(rateIn, ", "), strings.Join(dataIn, ", "))
	case len(rateIn) > 0:
		if len(rateMissing) > 0 {
			return schedule{}, fmt.Errorf("missing %s (given %s)", strings.Join(rateMissing, ", "), strings.Join(rateIn, ", "))
		}
		if !(p.samplingRate > 0 && p.samplingRate <= 1) {
			return schedule{}, fmt.Errorf("--sampling-rate=%g must be in (0, 1]", p.samplingRate)
		}
		if p.steps < minSteps {
			return schedule{}, fmt.Errorf("--steps=%d must be >= %d", p.steps, minSteps)
		}
		return schedule{q: p.samplingRate, steps: p.steps,
			desc: fmt.Sprintf("%d steps at sampling rate q = %.6g", p.steps, p.samplingRate)}, nil
	case len(dataIn) > 0:
		if len(dataMissing) > 0 {
			return schedule{}, fmt.Errorf("missing %s (given %s)", strings.Join(dataMissing, ", "), strings.Join(dataIn, ", "))
		}
		if p.datasetSize < 1 {
			return schedule{}, fmt.Errorf("--dataset-size=%d must be >= 1", p.datasetSize)
		}
		if p.batchSize < 1 || p.batchSize > p.datasetSize {
			return schedule{}, fmt.Errorf("--batch-size=%d must be in [1, --dataset-size=%d]", p.batchSize, p.datasetSize)
		}
		if !(p.epochs > 0) || math.IsInf(p.epochs, 1) {
			return schedule{}, fmt.Errorf("--epochs=%g must be finite and > 0", p.epochs)
		}
		steps, err := accounting.StepsForEpochs(p.datasetSize, p.batchSize, p.epochs)
		if err != nil {
			return schedule{}, fmt.Errorf("--epochs: %w", err)
		}
		if steps < minSteps {
			return schedule{}, fmt.Errorf("--epochs=%g gives %d steps, need >= %d", p.epochs, steps, minSteps)
		}
		q, err := accounting.SamplingRate(p.datasetSize, p.batchSize)
		if err != nil {
			return schedule{}, err
		}
		return schedule{q: q, steps: steps,
			desc: fmt.Sprintf("%d steps = ceil(%g epochs × %d / %d) at sampling rate q = %d/%d = %.6g",
				steps, p.epochs, p.datasetSize, p.batchSize, p.batchSize, p.datasetSize, q)}, nil
	default:
		return schedule{}, errors.New("missing the schedule: give --sampling-rate and --steps, or --dataset-size, --batch-size and --epochs")
	}
}

// jsonFloat is a float64 that encodes +Inf (an unbounded ε) as null.
type jsonFloat float64

func (f jsonFloat) MarshalJSON() ([]byte, error) {
	if math.IsInf(float64(f), 0) || math.IsNaN(float64(f)) {
		return []byte("null"), nil
	}
	return json.Marshal(float64(f))
}

// epsilonResult is the JSON of `privacy epsilon`. Order is the optimal RDP
// order with the rdp accountant and null with pld; RDPEpsilon/RDPOrder (pld
// only) give the RDP value for comparison.
type epsilonResult struct {
	Epsilon         jsonFloat  `json:"epsilon"`
	Delta           float64    `json:"delta"`
	Accountant      string     `json:"accountant"`
	Order           *float64   `json:"order"`
	Steps           int        `json:"steps"`
	SamplingRate    float64    `json:"sampling_rate"`
	NoiseMultiplier float64    `json:"noise_multiplier"`
	RDPEpsilon      *jsonFloat `json:"rdp_epsilon,omitempty"`
	RDPOrder        *float64   `json:"rdp_order,omitempty"`
}

// calibrateResult is the JSON of `privacy calibrate`.
type calibrateResult struct {
	NoiseMultiplier float64 `json:"noise_multiplier"`
	Epsilon         float64 `json:"epsilon"`
	TargetEpsilon   float64 `json:"target_epsilon"`
	Delta           float64 `json:"delta"`
	Accountant      string  `json:"accountant"`
	Steps           int     `json:"steps"`
	SamplingRate    float64 `json:"sampling_rate"`
}

// rdpEpsilon returns the RDP ε and optimal order of a schedule.
func rdpEpsilon(s schedule, sigma, delta float64) (float64, float64, error) {
	a := accounting.NewRDP(nil)
	if err := a.Compose(s.at(sigma).Event()); err != nil {
		return 0, 0, err
	}
	return a.EpsilonAndOrder(delta)
}

func fmtEps(e float64) string {
	if math.IsInf(e, 1) {
		return "∞ (δ is below the mass at infinite privacy loss)"
	}
	return fmt.Sprintf("%.6g", e)
}

func privacyEpsilon(args []string, stdout, stderr io.Writer) error {
	p := newPrivacyFlags("epsilon", stderr)
	var sigma float64
	p.fs.Float64Var(&sigma, "noise-multiplier", 0, "noise multiplier `S` (σ, noise std / clip norm; required)")
	set, done, err := p.parse(args)
	if done || err != nil {
		return err
	}
	if !set["noise-multiplier"] {
		return errors.New("missing --noise-multiplier")
	}
	if !(sigma > 0) || math.IsInf(sigma, 1) {
		return fmt.Errorf("--noise-multiplier=%g must be finite and > 0", sigma)
	}
	s, err := p.resolve(set, 0)
	if err != nil {
		return err
	}
	res := epsilonResult{Delta: p.delta, Accountant: p.accountant, Steps: s.steps, SamplingRate: s.q, NoiseMultiplier: sigma}
	rdpEps, rdpOrder, err := rdpEpsilon(s, sigma, p.delta)
	if err != nil {
		return err
	}
	if p.kind == accounting.KindRDP {
		res.Epsilon, res.Order = jsonFloat(rdpEps), &rdpOrder
	} else {
		eps, err := accounting.Epsilon(accounting.KindPLD, p.delta, s.at(sigma))
		if err != nil {
			return err
		}
		re := jsonFloat(rdpEps)
		res.Epsilon, res.RDPEpsilon, res.RDPOrder = jsonFloat(eps), &re, &rdpOrder
	}
	if math.IsNaN(float64(res.Epsilon)) || math.IsNaN(rdpEps) {
		// JSON null means +Inf: a NaN must never be printed as a result.
		return fmt.Errorf("the accountant returned ε = NaN for q=%g, σ=%g, %d steps, δ=%g (a numerical failure, not a guarantee): use --accountant rdp, or report this", s.q, sigma, s.steps, p.delta)
	}
	if p.json {
		return writeJSON(stdout, res)
	}
	fmt.Fprintf(stdout, "ε = %s at δ = %g (%s accountant", fmtEps(float64(res.Epsilon)), p.delta, strings.ToUpper(p.accountant))
	if res.Order != nil {
		fmt.Fprintf(stdout, ", optimal order %g", *res.Order)
	} else {
		fmt.Fprintf(stdout, ", discretisation %g", accounting.DefaultDiscretizationInterval)
	}
	fmt.Fprintf(stdout, ")\n  %s, noise multiplier σ = %g\n", s.desc, sigma)
	if res.RDPEpsilon != nil {
		fmt.Fprintf(stdout, "  RDP accountant: ε = %s (order %g), for comparison with published work\n", fmtEps(rdpEps), rdpOrder)
	}
	return nil
}

func privacyCalibrate(args []string, stdout, stderr io.Writer) error {
	p := newPrivacyFlags("calibrate", stderr)
	var target float64
	p.fs.Float64Var(&target, "epsilon", 0, "target `ε` > 0 (required)")
	set, done, err := p.parse(args)
	if done || err != nil {
		return err
	}
	if !set["epsilon"] {
		return errors.New("missing --epsilon")
	}
	if !(target > 0) || math.IsInf(target, 1) {
		return fmt.Errorf("--epsilon=%g must be finite and > 0", target)
	}
	s, err := p.resolve(set, 1)
	if err != nil {
		return err
	}
	// s.at(0): CalibrateNoise ignores the noise multiplier, which it solves for.
	sigma, eps, err := accounting.CalibrateNoise(p.kind, accounting.Budget{Epsilon: target, Delta: p.delta}, s.at(0))
	if err != nil {
		if errors.Is(err, accounting.ErrUnreachable) {
			return fmt.Errorf("--epsilon=%g cannot be met: %w", target, err)
		}
		return err
	}
	res := calibrateResult{NoiseMultiplier: sigma, Epsilon: eps, TargetEpsilon: target, Delta: p.delta,
		Accountant: p.accountant, Steps: s.steps, SamplingRate: s.q}
	if p.json {
		return writeJSON(stdout, res)
	}
	fmt.Fprintf(stdout, "noise multiplier σ = %.6g gives ε = %.6g ≤ %g at δ = %g (%s accountant)\n",
		sigma, eps, target, p.delta, strings.ToUpper(p.accountant))
	fmt.Fprintf(stdout, "  %s\n", s.desc)
	if p.kind == accounting.KindPLD {
		if re, ro, err := rdpEpsilon(s, sigma, p.delta); err == nil {
			fmt.Fprintf(stdout, "  RDP accountant at this σ: ε = %s (order %g), for comparison with published work\n", fmtEps(re), ro)
		}
	}
	return nil
}

func writeJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}
