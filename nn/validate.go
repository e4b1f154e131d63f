package nn

import (
	"errors"
	"fmt"
)

// ExampleMixer is implemented by layers whose output for one example depends
// on other examples of the batch (BatchNorm in training mode). DP-SGD's
// per-example gradients are undefined for them.
type ExampleMixer interface {
	MixesExamples() bool
}

// Validate checks that a model is fit for DP-SGD:
//
//   - no layer mixes examples within a batch;
//   - no trainable parameter escapes clipping: every leaf layer (below the
//     Containers, as Walk visits them) that owns a parameter that is not
//     frozen must be a GradLayer, whose per-example rule covers its
//     parameters. Any other layer type with trainable parameters (a custom
//     layer, or a container that does not implement Container) is
//     rejected: its gradient would be released without being clipped.
//
// The error names each offending layer (by path and description), its
// parameter, and what to do.
func Validate(m *Model) error {
	var errs []error
	Walk(m.Layers, func(p string, l Layer) bool {
		if mx, ok := l.(ExampleMixer); ok && mx.MixesExamples() {
			errs = append(errs, fmt.Errorf("model %s: layer %s (%s) mixes examples within a batch, so per-example gradients and their clipping are undefined; use GroupNorm (e.g. GroupNorm(min(32, C), C)) instead, or freeze it with fixed running statistics", m.Name, p, l.Describe()))
		}
		if _, ok := l.(Container); ok {
			return true
		}
		if _, ok := l.(GradLayer); ok {
			return false
		}
		for _, prm := range l.Params() {
			if !prm.Frozen {
				errs = append(errs, fmt.Errorf("model %s: layer %s (%s, %T) has trainable parameter %q but no per-example gradient rule (it is not a GradLayer), so its gradient would escape clipping; freeze it or implement GradLayer", m.Name, p, l.Describe(), l, prm.Name))
			}
		}
		return false
	})
	return errors.Join(errs...)
}
