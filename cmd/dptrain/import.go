package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"dptrain/pretrained"
)

func init() {
	register("import", "import public pretrained weights: --from tfjs:DIR|torchvision:FILE --out DIR", runImport)
}

func runImport(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	from := fs.String("from", "", "tfjs:DIR (a Keras ResNet-50 as a TensorFlow.js layers-model: DIR/model.json and its shards) or torchvision:FILE.safetensors (a torchvision ResNet state dict; scripts/pth_to_safetensors.py converts a .pth)")
	model := fs.String("model", "", "torchvision architecture: resnet18, resnet34 or resnet50 (default: inferred from the tensors); for tfjs, resnet50-keras or empty")
	labels := fs.String("labels", "", "class names: a JSON object {\"0\": name, …}, a JSON array, or one name per line (default: labels.json beside the model, else numbers)")
	out := fs.String("out", "", "folder to write the dptrain checkpoint into (used as --init, --checkpoint)")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return nil
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (flags are --name=value)", fs.Arg(0))
	}
	if *from == "" || *out == "" {
		return errors.New("--from and --out are required")
	}
	kind, src, ok := strings.Cut(*from, ":")
	if !ok || src == "" {
		return fmt.Errorf("--from %q: want tfjs:DIR or torchvision:FILE", *from)
	}
	var im *pretrained.Imported
	var err error
	switch kind {
	case "tfjs":
		if *model != "" && *model != "resnet50-keras" {
			return fmt.Errorf("--model %s: a tfjs import is resnet50-keras (Keras's ResNet-50)", *model)
		}
		im, err = pretrained.FromTFJS(src)
	case "torchvision":
		im, err = pretrained.FromTorchvision(src, *model)
	default:
		return fmt.Errorf("--from %q: unknown source %q, want tfjs or torchvision", *from, kind)
	}
	if err != nil {
		return err
	}
	if *labels != "" {
		if err := im.SetLabels(*labels); err != nil {
			return err
		}
	}
	path, err := im.Save(*out)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "imported %s: %s, %d classes (%s, …), %d values, input %d×%d normalized as %s\nwrote %s (use it as init: %s, or --checkpoint %s)\n",
		im.Source, im.Config.Name, im.Config.NumClasses, strings.Join(im.Classes[:min(3, len(im.Classes))], ", "),
		im.Model.NumParams(), im.ImageSize, im.ImageSize, im.Normalize, path, *out, *out)
	return nil
}
