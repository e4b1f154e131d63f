package tensor

import (
	"strings"
	"testing"
)

// TestSlowBLASWarning: the warning names the kernels in use and the
// setting that fixes them, and is silent once OPENBLAS_CORETYPE is set.
func TestSlowBLASWarning(t *testing.T) {
	core := BackendCore()
	t.Logf("GEMM kernels: %s (%s)", Backend, core)
	if w := SlowBLASWarning(); w != "" && (!strings.Contains(w, core) || !strings.Contains(w, "OPENBLAS_CORETYPE=")) {
		t.Errorf("warning %q does not name the kernels %s and the setting", w, core)
	}
	t.Setenv("OPENBLAS_CORETYPE", "Haswell")
	if w := SlowBLASWarning(); w != "" {
		t.Errorf("warning with OPENBLAS_CORETYPE set: %q", w)
	}
}
