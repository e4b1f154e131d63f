package nn

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestWalkOrderAndPaths: Walk visits containers before their children, in
// forward order (so the parameters of the leaves it visits come in the
// order of Model.Params), names residual branches in its paths, and skips
// a container's children when told to.
func TestWalkOrderAndPaths(t *testing.T) {
	m := smallResNet(rand.New(rand.NewPCG(1, 2)), true)
	var paths []string
	var params []*Param
	Walk(m.Layers, func(path string, l Layer) bool {
		paths = append(paths, path)
		if _, ok := l.(Container); !ok {
			params = append(params, l.Params()...)
		}
		return true
	})
	if !slices.Equal(params, m.Params()) {
		t.Errorf("leaves' parameters in Walk order differ from Model.Params")
	}
	for _, want := range []string{"0", "3", "3.main.0", "4.shortcut.1", "5.pre.0", "5.main.3", "5.shortcut.0", "7"} {
		if !slices.Contains(paths, want) {
			t.Errorf("no path %q in %v", want, paths)
		}
	}
	if i, j := slices.Index(paths, "4"), slices.Index(paths, "4.main.0"); i < 0 || j != i+1 {
		t.Errorf("container 4 not visited just before its first child: %v", paths)
	}
	var top []string
	Walk(m.Layers, func(path string, l Layer) bool { top = append(top, path); return false })
	if len(top) != len(m.Layers) {
		t.Errorf("fn returning false: visited %v, want only the %d top-level layers", top, len(m.Layers))
	}
	var gl []*Param
	for _, l := range m.GradLayers() {
		gl = append(gl, l.Params()...)
	}
	if !slices.Equal(gl, m.Params()) {
		t.Errorf("GradLayers' parameters differ from Model.Params")
	}
}
