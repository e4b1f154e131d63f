package train

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"

	"dptrain/accounting"
	"dptrain/checkpoint"
	"dptrain/dpsgd"
	"dptrain/nn"

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
	weights := map[string]checkpoint.Tensor{}
	for _, p := range r.model.Params() {
		weights[p.Name] = checkpoint.Tensor{Shape: p.Shape, Data: p.Value}
	}
	os := r.optim.State()
	optT := map[string]checkpoint.Tensor{}
	for k, v := range os.Tensors {
		optT[strings.ReplaceAll(k, "/", ".")] = checkpoint.Tensor{Shape: []int{len(v)}, Data: v}
	}
	st := runState{FormatVersion: stateVersion, Step: r.step, TotalSteps: r.totalSteps, Fingerprint: r.fingerprint,
		NoiseMultiplier: r.sigma, SamplingRate: r.q, Delta: r.delta,
		OptimizerKind: os.Kind, OptimizerSteps: os.Steps, OptimizerScalars: os.Scalars,
		Model: r.modelCfg, Classes: r.trainDS.Classes(), Normalize: r.cfg.Normalize, WallSeconds: r.wallSeconds(),
		TrainExamples: r.n, LostSteps: r.lostSteps}
	if r.noise != nil {
		b, err := r.noise.MarshalBinary()
		if err != nil {
			return err
		}
		st.NoiseState, st.NoiseMode = b, r.noise.Mode()
	}
	groups := map[string]map[string]checkpoint.Tensor{"weights": weights, "optimizer": optT}
	if r.ema != nil {
		es := r.ema.State()
		et := map[string]checkpoint.Tensor{}
		for k, v := range es.Tensors {
			et[strings.ReplaceAll(k, "/", ".")] = checkpoint.Tensor{Shape: []int{len(v)}, Data: v}
		}
		groups["ema"] = et
		st.EMASteps, st.EMAScalars = es.Steps, es.Scalars
	}
	stateJSON, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	ledgerJSON, err := r.ledger.MarshalJSON()
	if err != nil {
		return err
	}
	cfgYAML, err := yaml.Marshal(r.cfg)
	if err != nil {
		return err
	}
	ck := &checkpoint.Checkpoint{Step: r.step, Tensors: groups,
		Blobs: map[string][]byte{"state.json": stateJSON, "ledger.json": ledgerJSON, "config.yaml": cfgYAML},
		Meta:  map[string]string{"model": r.cfg.Model, "private": strconv.FormatBool(r.cfg.IsPrivate())}}
	if _, err := checkpoint.Save(r.ckptDir, ck); err != nil {
		return err
	}
	_, err = checkpoint.Prune(r.ckptDir, max(r.cfg.KeepCheckpoints, 1))
	return err
}

// restoreTensors turns a checkpoint group back into the dpsgd state map.
func restoreTensors(g map[string]checkpoint.Tensor) map[string][]float32 {
	out := map[string][]float32{}
	for k, v := range g {
		// names were "kind/i" → "kind.i"; the index is after the last dot.
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
	es, err := checkpoint.List(r.ckptDir)
	if err != nil {
		return false, fmt.Errorf("resume from %s: %w"+refuse, r.ckptDir, err)
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
	return false, fmt.Errorf("resume from %s: %w: all %d checkpoints are invalid; newest: %v"+refuse, r.ckptDir, checkpoint.ErrNoValidCheckpoint, len(es), first)
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
		return fmt.Errorf("resume %s: the run in %s was started with a different configuration%s (fingerprint %s, now %s); use a new --out to start a new run "+newOutNote, path, filepath.Dir(r.ckptDir), r.configChanges(ck.Blobs["config.yaml"]), st.Fingerprint, r.fingerprint)
	}
	var led accounting.Ledger
	if err := led.UnmarshalJSON(ck.Blobs["ledger.json"]); err != nil {
		return unusable("ledger.json: %w", err)
	}
	if st.TrainExamples != r.n || st.SamplingRate != r.q || st.NoiseMultiplier != r.sigma || st.Delta != r.delta {
		return fmt.Errorf("resume %s: the run used N=%d, q=%g, σ=%g, δ=%g; now N=%d, q=%g, σ=%g, δ=%g (did the training data change?); use a new --out "+newOutNote,
			path, st.TrainExamples, st.SamplingRate, st.NoiseMultiplier, st.Delta, r.n, r.q, r.sigma, r.delta)
	}
	r.priorCount = 1
	if err := r.checkLedger(&led); err != nil {
		return fmt.Errorf("resume %s: %w; refusing to resume", path, err)
	}
	if int64(led.Len()) != r.priorLen()+ck.Step+st.LostSteps && r.cfg.IsPrivate() || !r.cfg.IsPrivate() && led.Len() != 0 {
		return fmt.Errorf("resume %s: ledger records %d events, checkpoint says %d steps (+%d lost, +%d before training)", path, led.Len(), ck.Step, st.LostSteps, r.priorLen())
	}
	if err := loadWeights(r.model, ck.Tensors["weights"], true); err != nil {
		return unusable("%w", err)
	}
	if err := r.optim.Restore(dpsgd.State{Kind: st.OptimizerKind, Steps: st.OptimizerSteps, Scalars: st.OptimizerScalars, Tensors: restoreTensors(ck.Tensors["optimizer"])}); err != nil {
		return unusable("%w", err)
	}
	if r.ema != nil {
		if err := r.ema.Restore(dpsgd.State{Kind: "ema", Steps: st.EMASteps, Scalars: st.EMAScalars, Tensors: restoreTensors(ck.Tensors["ema"])}); err != nil {
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
	r.lostSteps = st.LostSteps
	r.ledger = &led
	r.step = ck.Step
	r.priorWall = st.WallSeconds
	r.logf("resumed from %s (step %d of %d)", path, ck.Step, r.totalSteps)
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

// loadWeights copies tensors into the model's parameters by name. With
// strict, every parameter must be present with its shape. Otherwise
// (transfer learning) parameters whose name is missing or whose shape
// differs (a new classification head) keep their initial values and are
// listed in the returned error-free report.
func loadWeights(m *nn.Model, ts map[string]checkpoint.Tensor, strict bool) error {
	_, err := copyWeights(m, ts, strict)
	return err
}

func copyWeights(m *nn.Model, ts map[string]checkpoint.Tensor, strict bool) (skipped []string, err error) {
	loaded := 0
	for _, p := range m.Params() {
		t, ok := ts[p.Name]
		if !ok || len(t.Data) != len(p.Value) {
			if strict {
				return nil, fmt.Errorf("weights: parameter %s %v missing or of another shape", p.Name, p.Shape)
			}
			skipped = append(skipped, p.Name)
			continue
		}
		for _, v := range t.Data {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return nil, fmt.Errorf("weights: parameter %s holds NaN or Inf values: expected finite weights (the file is corrupt or came from a diverged run)", p.Name)
			}
		}
		copy(p.Value, t.Data)
		loaded++
	}
	if loaded == 0 {
		return nil, fmt.Errorf("weights: no parameter of model %s found (names like %s)", m.Name, m.Params()[0].Name)
	}
	return skipped, nil
}

// initFrom loads starting weights for transfer learning from a checkpoint
// directory (its weights group), a run's --out directory (its newest
// checkpoint) or a .safetensors file.
func initFrom(m *nn.Model, path string) (skipped []string, err error) {
	var ts map[string]checkpoint.Tensor
	switch {
	case strings.HasSuffix(path, ".safetensors"):
		ts, _, err = checkpoint.ReadSafetensors(path)
	default:
		var ck *checkpoint.Checkpoint
		ck, err = checkpoint.Load(path)
		if err != nil {
			if _, e := os.Stat(filepath.Join(path, "checkpoints")); e == nil {
				ck, _, _, err = checkpoint.LoadLatest(filepath.Join(path, "checkpoints"))
			}
		}
		if err == nil {
			ts = ck.Tensors["weights"]
		}
	}
	if err != nil {
		return nil, fmt.Errorf("init %s: %w", path, err)
	}
	return copyWeights(m, ts, false)
}

// checkLedger verifies that every event of a resumed ledger is one this
// configuration releases: the prior release (data normalisation) first,
// if the run has one (more than once only after crashes before the first
// checkpoint), then DP-SGD steps Step(q, σ) only, and sets priorCount. The
// ledger's length alone would let an edited σ or q (with a recomputed
// manifest) lower ε.
func (r *run) checkLedger(led *accounting.Ledger) error {
	step := accounting.Event(accounting.Step(r.q, r.sigma))
	for i, e := range led.Entries() {
		want := step
		if i == 0 && r.prior != nil {
			want = r.prior
			r.priorCount = int64(e.Count)
		}
		if !reflect.DeepEqual(e.Event, want) {
			return fmt.Errorf("ledger entry %d is %s, but this run releases %s", i, e.Event, want)
		}
	}
	if r.prior != nil && led.Len() == 0 {
		return fmt.Errorf("ledger is empty, but this run releases %s before training", r.prior)
	}
	return nil
}

// openJournal opens the privacy journal (see journalName) after resume
// has restored the newest checkpoint (resumed) or found none.
func (r *run) openJournal(resumed bool) error {
	path := filepath.Join(r.opt.Out, journalName)
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		return fmt.Errorf("privacy journal %s is a symbolic link: dptrain never reads or writes the journal through a link (someone may have planted it); remove it", path)
	}
	hdr, events, err := readJournal(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("privacy journal: %w", err)
	}
	present := err == nil
	if !resumed {
		if !present || len(events) == 0 {
			r.journal, err = createJournal(path, journalHeader{Data: r.dataDigest, Examples: r.n})
			return err
		}
		// Only data-normalisation releases (a crash before the step-0
		// checkpoint): the start is re-done, and they are counted (secure
		// mode: the new release is an independent one) or checked to repeat
		// bit for bit (seeded mode).
		for _, e := range events {
			if e.Event != "data_norm" || r.prior == nil || hdr.Data != r.dataDigest || hdr.Examples != r.n {
				return fmt.Errorf("%s records %d releases of an earlier run in this folder, but no checkpoint of it is left: starting over would release again without counting them (privacy would be under-counted); restore the checkpoints, or use a new --out "+newOutNote, path, len(events))
			}
		}
		if r.cfg.Noise == dpsgd.ModeSecure {
			r.priorCount += int64(len(events))
			r.logf("secure mode: %d data-normalisation releases before an interruption were lost; they are counted as spent", len(events))
		} else if len(events) == 1 {
			r.replay = events
		} else {
			return fmt.Errorf("%s: seeded mode, but %d data-normalisation releases are journaled (want at most 1); use a new --out "+newOutNote, path, len(events))
		}
		r.journal, err = appendJournal(path, int64(len(events)))
		return err
	}
	if !present {
		if r.cfg.IsPrivate() {
			return fmt.Errorf("resume: %s is missing: the steps taken after the newest checkpoint cannot be counted, so ε would be under-counted; restore the journal, or use a new --out "+newOutNote, path)
		}
		r.journal, err = createJournal(path, journalHeader{Data: r.dataDigest, Examples: r.n})
		return err
	}
	if hdr.Data != r.dataDigest || hdr.Examples != r.n {
		return fmt.Errorf("resume: the training data %s changed since this run started (%d examples, %s; now %d examples, %s): a resumed run would train on other data than its ledger accounts for; use a new --out "+newOutNote, r.cfg.TrainData, hdr.Examples, hdr.Data, r.n, r.dataDigest)
	}
	taken, recorded := int64(len(events)), int64(r.ledger.Len())
	if taken < recorded {
		return fmt.Errorf("resume: %s records %d releases, the checkpoint's ledger %d: the journal was truncated or replaced, so the steps taken after the checkpoint cannot be counted; restore it, or use a new --out "+newOutNote, path, taken, recorded)
	}
	if extra := taken - recorded; extra > 0 {
		if r.cfg.Noise == dpsgd.ModeSecure {
			if err := r.ledger.RecordN(accounting.Step(r.q, r.sigma), int(extra)); err != nil {
				return err
			}
			r.lostSteps += extra
			r.logf("secure mode: %d steps taken after the last checkpoint were lost; they are counted as spent (the re-run draws fresh batches and noise)", extra)
		} else {
			r.replay = events[recorded:]
			r.logf("seeded mode: the %d steps taken after the last checkpoint are re-run and checked bit for bit against the journal", extra)
		}
	}
	r.journal, err = appendJournal(path, taken)
	return err
}

// journalRelease journals one release, or in seeded mode, while re-running
// steps lost in a crash, checks that it repeats the journaled one exactly.
func (r *run) journalRelease(e journalEvent) error {
	if len(r.replay) == 0 {
		return r.journal.append(e)
	}
	want := r.replay[0]
	r.replay = r.replay[1:]
	if want.Event == "" { // a line torn by the crash: contents unknown
		return nil
	}
	if want.N != e.N || want.Event != e.Event || want.Release != e.Release {
		return fmt.Errorf("seeded mode: the re-run of step %d released %s (ledger event %d), but before the interruption it released %s (event %d): the repeat is not bit-identical (another machine, library or thread-dependent kernel?), so it would be a second release of that step that no accountant covers; stopping before anything is written. Resume on the machine that took the step, or use a new --out "+newOutNote,
			e.Step, e.Release, e.N, want.Release, want.N)
	}
	return nil
}

// newOutNote follows every "use a new --out" in errors: the earlier run's
// releases stay spent.
const newOutNote = "(a new run on the same data: its privacy cost adds to what this folder's run already spent)"
