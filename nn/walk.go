package nn

import "strconv"

// Container is implemented by layers that hold other layers (Sequential,
// Residual). Children lists them in forward order, the order of Params: a
// container's Params is its children's, concatenated. Walk uses it to see
// into the container; a container that does not implement it hides its
// layers from Walk, and so from Validate and Model.GradLayers.
//
// A container may name its children in Walk's paths with a method
// ChildName(i int) string (Residual: "pre.0", "main.1", "shortcut.0");
// otherwise child i is named by its index.
type Container interface {
	Children() []Layer
}

type childNamer interface {
	ChildName(i int) string
}

// Walk visits the layers ls and, depth first, the children of every
// Container among them, in forward order: fn(path, l) is called for each
// layer before its children, which are visited only when fn returns true.
// path locates the layer: "2" is ls[2], "2.1" the second child of ls[2],
// and "2.main.1" the second layer of the main branch of the residual block
// ls[2]. The order is that of Model.Params, so the layers' parameters come
// in the order of the model's.
//
// Walk is the one traversal of the layer tree: Validate, Model.GradLayers
// (and so FreezeLayers) use it.
func Walk(ls []Layer, fn func(path string, l Layer) bool) {
	walk("", ls, nil, fn)
}

func walk(prefix string, ls []Layer, names childNamer, fn func(string, Layer) bool) {
	for i, l := range ls {
		name := strconv.Itoa(i)
		if names != nil {
			name = names.ChildName(i)
		}
		path := prefix + name
		if !fn(path, l) {
			continue
		}
		if c, ok := l.(Container); ok {
			n, _ := l.(childNamer)
			walk(path+".", c.Children(), n, fn)
		}
	}
}

// trainable reports whether a layer (or, for a container, any layer in
// it) has a parameter that is not frozen.
func trainable(l Layer) bool {
	for _, p := range l.Params() {
		if !p.Frozen {
			return true
		}
	}
	return false
}
