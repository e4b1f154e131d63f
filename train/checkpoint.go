package train

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"

	"dptrain/accounting"
	"dptrain/checkpoint"
	"dptrain/dpsgd"
	"dptrain/nn"
	"dptrain/optim"

	"go.yaml.in/yaml/v3"
)

// runState is state.json in a checkpoint: everything but tensors needed to
// resume exactly.
type runState struct {
	FormatVersion    int                `json:"format_version"`
	Step             int64              `json:"step"`
	TotalSteps       int64              `json:"total_steps"`
	Fingerprint      string             `json:"config_fingerprint"`
	NoiseState       []byte             `json:"noise_state,omitempty"`
	NoiseMode        string             `json:"noise_mode"`
	NoiseMultiplier  float64            `json:"noise_multiplier"`
	SamplingRate     float64            `json:"sampling_rate"`
	Delta            float64            `json:"delta"`
	OptimizerKind    string             `json:"optimizer_kind"`
	OptimizerSteps   int64              `json:"optimizer_steps"`
	OptimizerScalars map[string]float64 `json:"optimizer_scalars"`
	EMASteps         int64              `json:"ema_steps"`
	EMAScalars       map[string]float64 `json:"ema_scalars,omitempty"`
	Model            nn.ModelConfig     `json:"model"`
	Classes          []string           `json:"classes"`
	Normalize        string             `json:"normalize"`
	WallSeconds      float64            `json:"wall_seconds"`
	TrainExamples    int                `json:"train_examples"`
	LostSteps        int64              `json:"lost_steps"`
}

// stateVersion 2: no sampling seeds (seeded mode derives its key from the
// config's seed; secure mode draws a fresh key in every process and never
// stores it).
const stateVersion = 2

// fingerprint hashes the settings that define a run's trajectory and its
// privacy: resuming under a different one is refused.
func fingerprint(cfg Config) string {
	b, _ := json.Marshal(trajectoryConfig(cfg))
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:8])
}

// trajectoryConfig is cfg without the settings that may differ on resume
// (they do not change the trajectory), with paths in a canonical form
// (mnist:DIR/ and mnist:DIR are the same data).
func trajectoryConfig(cfg Config) Config {
	c := cfg
	c.Threads, c.CheckpointEvery, c.KeepCheckpoints, c.EvalEvery, c.LogEvery, c.TestData, c.MaxTestExamples = 0, 0, 0, 0, 0, "", 0
	c.TrainData = cleanSpec(c.TrainData)
	if c.Init != "" {
		c.Init = filepath.Clean(c.Init)
	}
	if c.FeatureCache != "" {
		// Where the caches live does not matter (their keys name their
		// content); whether the run trains on float16 features does.
		c.FeatureCache = "on"
	}
	return c
}

// cleanSpec cleans the paths of a data spec ("scheme:PATH[,PATH]").
func cleanSpec(spec string) string {
	scheme, rest, ok := strings.Cut(spec, ":")
	if !ok || rest == "" {
		return spec
	}
	parts := strings.Split(rest, ",")
	for i, p := range parts {
		if p != "" {
			parts[i] = filepath.Clean(p)
		}
	}
	return scheme + ":" + strings.Join(parts, ",")
}

// saveCheckpoint writes the full training state atomically.
func (r *run) saveCheckpoint() error {
	ck, err := r.snapshot()
	if err != nil {
		return err
	}
	if _, err := checkpoint.Save(r.out.ckptDir, ck); err != nil {
		return err
	}
	_, err = checkpoint.Prune(r.out.ckptDir, max(r.cfg.KeepCheckpoints, 1))
	return err
}

// snapshot is the full training state as a checkpoint (what restore
// reads): saved by rank 0, and sent to the other ranks at the start.
func (r *run) snapshot() (*checkpoint.Checkpoint, error) {
	weights := map[string]checkpoint.Tensor{}
	for _, p := range r.model.model.Params() {
		weights[p.Name] = checkpoint.Tensor{Shape: p.Shape, Data: p.Value}
	}
	ost := r.trainer.optim.State()
	st := runState{FormatVersion: stateVersion, Step: r.step, TotalSteps: r.total, Fingerprint: r.fingerprint,
		NoiseMultiplier: r.plan.Sigma, SamplingRate: r.plan.Q, Delta: r.plan.Delta,
		OptimizerKind: ost.Kind, OptimizerSteps: ost.Steps, OptimizerScalars: ost.Scalars,
		Model: r.model.cfg, Classes: r.data.train.Classes(), Normalize: r.cfg.Normalize, WallSeconds: r.wallSeconds(),
		TrainExamples: r.plan.N, LostSteps: r.book.lost}
	if r.noise != nil {
		b, err := r.noise.MarshalBinary()
		if err != nil {
			return nil, err
		}
		st.NoiseState, st.NoiseMode = b, string(r.noise.Mode())
	}
	groups := map[string]map[string]checkpoint.Tensor{"weights": weights, "optimizer": stateGroup(ost)}
	if r.trainer.ema != nil {
		es := r.trainer.ema.State()
		groups["ema"] = stateGroup(es)
		st.EMASteps, st.EMAScalars = es.Steps, es.Scalars
	}
	stateJSON, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return nil, err
	}
	ledgerJSON, err := r.book.ledger.MarshalJSON()
	if err != nil {
		return nil, err
	}
	cfgYAML, err := yaml.Marshal(r.cfg)
	if err != nil {
		return nil, err
	}
	return &checkpoint.Checkpoint{Step: r.step, Tensors: groups,
		Blobs: map[string][]byte{"state.json": stateJSON, "ledger.json": ledgerJSON, "config.yaml": cfgYAML},
		Meta:  map[string]string{"model": r.cfg.Model, "private": strconv.FormatBool(r.cfg.IsPrivate())}}, nil
}

// stateGroup and groupState convert an optimizer's or EMA's state tensors
// to a checkpoint group and back: the one place that knows the names.
// optim names tensor i of a kind "kind/i"; checkpoint names may not hold
// "/", so the group calls it "kind.i".
func stateGroup(s optim.State) map[string]checkpoint.Tensor {
	g := map[string]checkpoint.Tensor{}
	for k, v := range s.Tensors {
		g[strings.ReplaceAll(k, "/", ".")] = checkpoint.Tensor{Shape: []int{len(v)}, Data: v}
	}
	return g
}

// groupState is stateGroup's inverse.
func groupState(g map[string]checkpoint.Tensor) map[string][]float32 {
	out := map[string][]float32{}
	for k, v := range g {
		// the index is after the last dot.
		if i := strings.LastIndex(k, "."); i >= 0 {
			k = k[:i] + "/" + k[i+1:]
		}
		out[k] = v.Data
	}
	return out
}

// resume restores the newest usable checkpoint in r.ckptDir, if any. It
// returns false when there is none (a fresh run). A checkpoint that fails
// its checksums, or passes them but cannot be restored (a missing tensor,
// unreadable state, non-finite weights), is skipped with a warning and the
// next older one is tried: the journal counts (secure mode) or re-checks
// (seeded mode) every step after it, so falling back never under-counts.
// A checkpoint of another configuration, or whose ledger is not this
// run's, stops the run instead.
func (r *run) resume() (bool, error) {
	refuse := " (refusing to start over: the privacy spent by the earlier run would be lost; use a new --out " + newOutNote + ")"
	es, err := checkpoint.List(r.out.ckptDir)
	if err != nil {
		return false, fmt.Errorf("resume from %s: %w"+refuse, r.out.ckptDir, err)
	}
	if len(es) == 0 {
		return false, nil
	}
	var first error
	for i := len(es) - 1; i >= 0; i-- {
		ck, err := checkpoint.Load(es[i].Path)
		if err == nil {
			err = r.restore(ck, es[i].Path)
			var u *unusableError
			if err != nil && !errors.As(err, &u) {
				return false, err
			}
		}
		if err == nil {
			return true, nil
		}
		r.logf("warning: skipping checkpoint: %v", err)
		if first == nil {
			first = err
		}
	}
	return false, fmt.Errorf("resume from %s: %w: all %d checkpoints are invalid; newest: %v"+refuse, r.out.ckptDir, checkpoint.ErrNoValidCheckpoint, len(es), first)
}

// unusableError is a checkpoint that passed its checksums but cannot be
// restored: resume falls back to an older one.
type unusableError struct {
	path string
	err  error
}

func (e *unusableError) Error() string { return fmt.Sprintf("%s: unusable: %v", e.path, e.err) }
func (e *unusableError) Unwrap() error { return e.err }

// restore loads one verified checkpoint into the run. Errors that say the
// checkpoint belongs to another configuration or carries a ledger this run
// does not release are returned as they are; the others are
// *unusableError.
func (r *run) restore(ck *checkpoint.Checkpoint, path string) error {
	unusable := func(format string, args ...any) error {
		return &unusableError{path: path, err: fmt.Errorf(format, args...)}
	}
	var st runState
	if err := json.Unmarshal(ck.Blobs["state.json"], &st); err != nil {
		return unusable("state.json: %w", err)
	}
	if st.FormatVersion != stateVersion {
		return fmt.Errorf("resume %s: state format %d, this dptrain reads %d", path, st.FormatVersion, stateVersion)
	}
	if st.Fingerprint != r.fingerprint {
		return fmt.Errorf("resume %s: the run in %s was started with a different configuration%s (fingerprint %s, now %s); use a new --out to start a new run "+newOutNote, path, filepath.Dir(r.out.ckptDir), r.configChanges(ck.Blobs["config.yaml"]), st.Fingerprint, r.fingerprint)
	}
	var led accounting.Ledger
	if err := led.UnmarshalJSON(ck.Blobs["ledger.json"]); err != nil {
		return unusable("ledger.json: %w", err)
	}
	p := r.plan
	if st.TrainExamples != p.N || st.SamplingRate != p.Q || st.NoiseMultiplier != p.Sigma || st.Delta != p.Delta {
		return fmt.Errorf("resume %s: the run used N=%d, q=%g, σ=%g, δ=%g; now N=%d, q=%g, σ=%g, δ=%g (did the training data change?); use a new --out "+newOutNote,
			path, st.TrainExamples, st.SamplingRate, st.NoiseMultiplier, st.Delta, p.N, p.Q, p.Sigma, p.Delta)
	}
	if err := r.book.adopt(&led, st.LostSteps); err != nil {
		return fmt.Errorf("resume %s: %w; refusing to resume", path, err)
	}
	if int64(led.Len()) != r.book.priorLen()+ck.Step+st.LostSteps && r.cfg.IsPrivate() || !r.cfg.IsPrivate() && led.Len() != 0 {
		return fmt.Errorf("resume %s: ledger records %d events, checkpoint says %d steps (+%d lost, +%d before training)", path, led.Len(), ck.Step, st.LostSteps, r.book.priorLen())
	}
	if err := loadWeights(r.model.model, ck.Tensors["weights"], true); err != nil {
		return unusable("%w", err)
	}
	if err := r.trainer.optim.Restore(optim.State{Kind: st.OptimizerKind, Steps: st.OptimizerSteps, Scalars: st.OptimizerScalars, Tensors: groupState(ck.Tensors["optimizer"])}); err != nil {
		return unusable("%w", err)
	}
	if r.trainer.ema != nil {
		if err := r.trainer.ema.Restore(optim.State{Kind: "ema", Steps: st.EMASteps, Scalars: st.EMAScalars, Tensors: groupState(ck.Tensors["ema"])}); err != nil {
			return unusable("%w", err)
		}
	}
	noise := r.noise
	if r.noise != nil && len(st.NoiseState) > 0 {
		n, err := dpsgd.RestoreNoise(st.NoiseState)
		if err != nil {
			return unusable("noise state: %w", err)
		}
		noise = n
	}
	r.noise = noise
	r.step = ck.Step
	r.priorWall = st.WallSeconds
	r.logf("resumed from %s (step %d of %d)", path, ck.Step, r.total)
	return nil
}

// configChanges names the keys whose values differ between a checkpoint's
// config.yaml and this run's configuration, as " (key: old → new, …)", or
// "" when it cannot tell.
func (r *run) configChanges(saved []byte) string {
	var old Config
	if err := ParseConfig(saved, &old); err != nil {
		return ""
	}
	a, b := trajectoryConfig(old), trajectoryConfig(r.cfg)
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	var diffs []string
	for i := 0; i < va.NumField(); i++ {
		x, y := va.Field(i).Interface(), vb.Field(i).Interface()
		if !reflect.DeepEqual(x, y) {
			diffs = append(diffs, fmt.Sprintf("%s: %s → %s", va.Type().Field(i).Tag.Get("yaml"), showValue(va.Field(i)), showValue(vb.Field(i))))
		}
	}
	if len(diffs) == 0 {
		return ""
	}
	return " (" + strings.Join(diffs, ", ") + ")"
}

func showValue(v reflect.Value) string {
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return "default"
		}
		v = v.Elem()
	}
	if v.Kind() == reflect.String && v.String() == "" {
		return `""`
	}
	return fmt.Sprint(v.Interface())
}

// newOutNote follows every "use a new --out" in errors: the earlier run's
// releases stay spent.
const newOutNote = "(a new run on the same data: its privacy cost adds to what this folder's run already spent)"
