package dist

import (
	"strings"
	"testing"
)

// launchVars are the variables detectLaunch reads.
var launchVars = []string{"OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_SIZE", "PMI_RANK",
	"SLURM_STEP_NUM_TASKS", "SLURM_STEP_ID", "SLURM_NTASKS", "SLURM_PROCID"}

func TestDetectLaunch(t *testing.T) {
	tests := []struct {
		env   map[string]string
		ok    bool
		want  launch
		multi bool
		by    string
	}{
		{env: nil, ok: false},
		{env: map[string]string{"SLURM_NTASKS": "4"}, ok: false},                                                    // sbatch script, not a step
		{env: map[string]string{"SLURM_STEP_NUM_TASKS": "1", "SLURM_STEP_ID": "0", "SLURM_PROCID": "0"}, ok: false}, // srun -n 1
		{env: map[string]string{"OMPI_COMM_WORLD_SIZE": "1", "OMPI_COMM_WORLD_RANK": "0"}, ok: true,
			want: launch{size: 1, rank: 0, mpi: true}, by: "mpirun"},
		{env: map[string]string{"OMPI_COMM_WORLD_SIZE": "4", "OMPI_COMM_WORLD_RANK": "2"}, ok: true,
			want: launch{size: 4, rank: 2, mpi: true}, multi: true, by: "OMPI_COMM_WORLD_SIZE=4"},
		{env: map[string]string{"PMIX_RANK": "0", "SLURM_STEP_NUM_TASKS": "8"}, ok: true,
			want: launch{size: 8, rank: 0, mpi: true}, multi: true, by: "PMIx"},
		{env: map[string]string{"PMIX_RANK": "3"}, ok: true, want: launch{size: 0, rank: 3, mpi: true}, multi: true, by: "PMIX_RANK=3"},
		{env: map[string]string{"PMI_SIZE": "2", "PMI_RANK": "1"}, ok: true, want: launch{size: 2, rank: 1, mpi: true}, multi: true, by: "PMI_SIZE=2"},
		{env: map[string]string{"SLURM_STEP_NUM_TASKS": "2", "SLURM_PROCID": "1"}, ok: true,
			want: launch{size: 2, rank: 1}, multi: true, by: "srun"},
		{env: map[string]string{"SLURM_STEP_ID": "5", "SLURM_NTASKS": "3", "SLURM_PROCID": "0"}, ok: true,
			want: launch{size: 3, rank: 0}, multi: true, by: "3 tasks"},
	}
	for _, tt := range tests {
		l, ok := detectLaunch(func(k string) string { return tt.env[k] })
		if ok != tt.ok {
			t.Errorf("%v: ok %v, want %v", tt.env, ok, tt.ok)
			continue
		}
		if !ok {
			continue
		}
		if l.size != tt.want.size || l.rank != tt.want.rank || l.mpi != tt.want.mpi || l.multi() != tt.multi || !strings.Contains(l.by, tt.by) {
			t.Errorf("%v: %+v (multi %v), want %+v (multi %v) by %q", tt.env, l, l.multi(), tt.want, tt.multi, tt.by)
		}
	}
}
