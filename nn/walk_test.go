package nn

import (
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

func TestWalkPathsAndSkip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	conv := func() Layer { return NewConv2d("c", 2, 2, 3, 1, 1, false, false, r) }
	res := &Residual{Pre: []Layer{&ReLU{}}, Main: []Layer{conv(), conv()}, Shortcut: []Layer{conv()}}
	layers := []Layer{conv(), &Sequential{Layers: []Layer{res, &ReLU{}}}}
	var paths []string
	Walk(layers, func(p string, l Layer) bool { paths = append(paths, p); return true })
	want := []string{"0", "1", "1.0", "1.0.pre.0", "1.0.main.0", "1.0.main.1", "1.0.shortcut.0", "1.1"}
	if !reflect.DeepEqual(paths, want) {
		t.Fatalf("paths %v, want %v", paths, want)
	}
	paths = nil
	Walk(layers, func(p string, l Layer) bool { paths = append(paths, p); _, isRes := l.(*Residual); return !isRes })
	if want := []string{"0", "1", "1.0", "1.1"}; !reflect.DeepEqual(paths, want) {
		t.Fatalf("skipping the residual: paths %v, want %v", paths, want)
	}
	m := &Model{Name: "m", Layers: layers}
	if n := len(m.GradLayers()); n != 4 {
		t.Fatalf("%d grad layers, want 4", n)
	}
}

// box is a container Validate knows nothing about except Children.
type box struct {
	Sequential
}

// bare holds a trainable parameter without a per-example rule.
type bare struct {
	Flatten
	p *Param
}

func (b *bare) Params() []*Param { return []*Param{b.p} }

func TestValidateSeesIntoAnyContainer(t *testing.T) {
	inner := &bare{p: newParam("hidden.w", false, 3)}
	m := &Model{Name: "m", Layers: []Layer{&box{Sequential{Layers: []Layer{&ReLU{}, inner}}}}}
	err := Validate(m)
	if err == nil || !strings.Contains(err.Error(), `layer 0.1`) || !strings.Contains(err.Error(), `"hidden.w"`) {
		t.Fatalf("Validate: %v, want the hidden parameter at 0.1 refused", err)
	}
}
