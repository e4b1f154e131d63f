package tensor

import (
	"fmt"
	"os"
	"strings"
)

// genericCores are OpenBLAS kernels of CPUs without AVX2, which OpenBLAS
// falls back to when it does not recognise a newer CPU model.
var genericCores = map[string]bool{"prescott": true, "core2": true, "katmai": true, "coppermine": true, "northwood": true, "banias": true, "penryn": true, "dunnington": true, "nehalem": true, "sandybridge": true, "atom": true}

// SlowBLASWarning returns a warning when the GEMM library runs kernels
// older than the CPU supports (OpenBLAS not recognising the CPU model and
// falling back to SSE3 "Prescott" kernels on an AVX2 or AVX-512 machine:
// GEMM is then several times slower), and "" otherwise. OPENBLAS_CORETYPE,
// read when the library loads, chooses the kernels.
func SlowBLASWarning() string {
	core := BackendCore()
	if !genericCores[strings.ToLower(core)] || os.Getenv("OPENBLAS_CORETYPE") != "" {
		return ""
	}
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	flags := ""
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "flags") {
			flags = " " + l + " "
			break
		}
	}
	want := ""
	switch {
	case strings.Contains(flags, " avx512f ") && strings.Contains(flags, " avx512bw "):
		want = "SkylakeX"
	case strings.Contains(flags, " avx2 ") && strings.Contains(flags, " fma "):
		want = "Haswell"
	default:
		return ""
	}
	return fmt.Sprintf("OpenBLAS did not recognise this CPU and runs its %s kernels, though the CPU has %s's instructions: matrix products run several times slower. Start dptrain with OPENBLAS_CORETYPE=%s (or Haswell) in the environment", core, want, want)
}
