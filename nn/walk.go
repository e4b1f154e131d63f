package nn

import "strconv"

// Container is a layer made of other layers (Sequential, Residual). Walk
// descends into it; code that needs every leaf uses Walk rather than a
// type switch, so a new container needs no change elsewhere.
type Container interface {
	Layer
	// Children lists the layers it holds in forward order, each with its
	// path element ("0", "main.1", …).
	Children() []Child
}

// Child is one layer of a Container and its name within it.
type Child struct {
	Name  string
	Layer Layer
}

// Walk visits layers and, depth first in forward order, everything they
// contain: fn(path, l) for each, path naming its position ("3.main.0").
// A Container is visited before its children, which are skipped when fn
// returns false for it.
func Walk(layers []Layer, fn func(path string, l Layer) bool) {
	for i, l := range layers {
		walk(strconv.Itoa(i), l, fn)
	}
}

func walk(path string, l Layer, fn func(path string, l Layer) bool) {
	if !fn(path, l) {
		return
	}
	if c, ok := l.(Container); ok {
		for _, ch := range c.Children() {
			walk(path+"."+ch.Name, ch.Layer, fn)
		}
	}
}

// indexed names layers "prefix0", "prefix1", … as children.
func indexed(prefix string, ls []Layer) []Child {
	out := make([]Child, len(ls))
	for i, l := range ls {
		out[i] = Child{prefix + strconv.Itoa(i), l}
	}
	return out
}

// trainable reports whether a layer has any parameter that is not frozen.
func trainable(l Layer) bool { return anyTrainable(l.Params()...) }
