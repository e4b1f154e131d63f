package mnistdata

import "testing"

func TestDirFindsModuleData(t *testing.T) {
	d, err := Dir()
	if err != nil {
		t.Fatal(err)
	}
	if err := check(d); err != nil {
		t.Fatal(err)
	}
}
