// Package torchref produces reference outputs from real PyTorch for tests of
// the torchvision weight importers.
//
// It runs an embedded Python script (resnet_ref.py) under a python3 that
// imports torch and torchvision: the script builds a torchvision ResNet from
// a seed, randomises its BatchNorm statistics and affine parameters (so that
// eval-mode normalisation is exercised, not the identity of a fresh model),
// saves its state_dict as safetensors with torchvision's tensor names and
// records the eval-mode logits for a deterministic input, in float32 and
// float64.
//
// PyTorch is optional: Skip skips a test when no suitable python3 is found,
// unless DPTRAIN_REQUIRE_TORCH=1 is set, in which case it fails. On Debian,
// apt-get install python3-torch python3-torchvision provides it for
// /usr/bin/python3.
//
// The package is imported only by tests, but is an ordinary package so that
// tests of several packages can share it.
package torchref
