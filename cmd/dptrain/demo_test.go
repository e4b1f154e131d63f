package main

import (
	"os"
	"reflect"
	"testing"

	"dptrain/train"
)

// TestDemoConfigIsShippedConfig keeps the embedded demo settings equal to
// configs/mnist-scatternet-eps3.yaml, whose results README reports for the
// demo.
func TestDemoConfigIsShippedConfig(t *testing.T) {
	shipped, err := os.ReadFile("../../configs/mnist-scatternet-eps3.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var demo, want train.Config
	if err := train.ParseConfig(demoConfig, &demo); err != nil {
		t.Fatalf("embedded demo config: %v", err)
	}
	if err := train.ParseConfig(shipped, &want); err != nil {
		t.Fatalf("configs/mnist-scatternet-eps3.yaml: %v", err)
	}
	if !reflect.DeepEqual(demo, want) {
		t.Errorf("demo config\n%+v\ndiffers from configs/mnist-scatternet-eps3.yaml\n%+v", demo, want)
	}
}
