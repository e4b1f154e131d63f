package nn

import "dptrain/tensor"

// Test helpers of package nn lent to its external tests (package nn_test),
// which use nntest (itself importing nn).

var (
	RandGN           = randGN
	RandBN           = randBN
	StatsStandardize = statsStandardize
	SmallModel       = smallModel
)

// ConvRanBackward reports whether c computed an input gradient, and
// whether it ran a PerExample backward pass.
func ConvRanBackward(c *Conv2d) (dx, perExample bool) { return c.dx != nil, c.dy != nil }

// ConvHasPlans reports whether c ran on convolution kernels (tensor.ConvPlan).
func ConvHasPlans(c *Conv2d) bool { return !c.noPlans && len(c.plans) > 0 }

// WeightTasks is weightTasks (the slots and channel blocks of a planned
// weight gradient).
var WeightTasks = weightTasks

// ConvPlanCount returns how many plans c keeps.
func ConvPlanCount(c *Conv2d) int { return len(c.plans) }

// ConvPlanImpls returns the implementations (tensor.ConvPlan.Impl) of c's
// plans by call shape.
func ConvPlanImpls(c *Conv2d) map[tensor.ConvShape]string {
	m := make(map[tensor.ConvShape]string, len(c.plans))
	for s, p := range c.plans {
		m[s] = p.Impl()
	}
	return m
}
