package checkpoint_test

import (
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"dptrain/checkpoint"
)

func Example() {
	dir, err := os.MkdirTemp("", "ckpts")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	// A fresh run: nothing to resume from.
	_, _, _, err = checkpoint.LoadLatest(dir)
	fmt.Println("fresh start:", errors.Is(err, checkpoint.ErrNoCheckpoint))

	// The trainer saves every N steps.
	for step := int64(100); step <= 300; step += 100 {
		ck := &checkpoint.Checkpoint{
			Step: step,
			Tensors: map[string]map[string]checkpoint.Tensor{
				"weights":   {"fc.weight": {Shape: []int{2, 2}, Data: []float32{1, 2, 3, float32(step)}}},
				"optimizer": {"fc.weight.momentum": {Shape: []int{2, 2}, Data: []float32{0, 0, 0, 0}}},
			},
			Blobs: map[string][]byte{
				"state.json":  []byte(`{"rng":42}`),
				"ledger.json": fmt.Appendf(nil, `{"steps":%d}`, step),
			},
		}
		path, err := checkpoint.Save(dir, ck)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("saved", filepath.Base(path))
	}
	if _, err := checkpoint.Prune(dir, 2); err != nil {
		log.Fatal(err)
	}

	// A crash damaged the newest checkpoint.
	if err := os.WriteFile(filepath.Join(dir, "ckpt-0000000300", "weights.safetensors"), []byte("garbage"), 0o644); err != nil {
		log.Fatal(err)
	}

	// Re-running the same command resumes from the newest valid checkpoint.
	ck, path, skipped, err := checkpoint.LoadLatest(dir)
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range skipped {
		fmt.Println("skipped corrupt:", errors.Is(e, checkpoint.ErrChecksum))
	}
	fmt.Println("resumed from", filepath.Base(path), "at step", ck.Step)
	fmt.Println("weights:", ck.Tensors["weights"]["fc.weight"].Data)
	fmt.Println("ledger:", string(ck.Blobs["ledger.json"]))

	// Output:
	// fresh start: true
	// saved ckpt-0000000100
	// saved ckpt-0000000200
	// saved ckpt-0000000300
	// skipped corrupt: true
	// resumed from ckpt-0000000200 at step 200
	// weights: [1 2 3 200]
	// ledger: {"steps":200}
}

func ExampleReadSafetensors() {
	path := filepath.Join(os.TempDir(), "example-init.safetensors")
	defer os.Remove(path)
	// Weights exported for (or by) another tool.
	err := checkpoint.WriteSafetensors(path, map[string]checkpoint.Tensor{
		"conv1.weight": {Shape: []int{1, 1, 1, 2}, Data: []float32{0.5, -0.25}},
	}, map[string]string{"format": "pt"})
	if err != nil {
		log.Fatal(err)
	}
	ts, meta, err := checkpoint.ReadSafetensors(path)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ts["conv1.weight"].Shape, ts["conv1.weight"].Data, meta["format"])
	// Output: [1 1 1 2] [0.5 -0.25] pt
}
