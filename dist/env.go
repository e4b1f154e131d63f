package dist

import (
	"fmt"
	"strconv"
)

// launch is what the environment says about how the process was started.
type launch struct {
	by   string // the launcher and the variable that shows it, for messages
	size int    // number of ranks, 0 when the environment does not say
	rank int    // this process's rank, −1 when the environment does not say
	mpi  bool   // a launcher that MPI_Init can connect to (not plain srun)
}

// multi reports whether the launch has more than one rank.
func (l launch) multi() bool { return l.size > 1 || l.rank > 0 }

// detectLaunch inspects the variables that MPI launchers set: Open MPI's
// mpirun (OMPI_COMM_WORLD_SIZE), PMIx launchers such as srun --mpi=pmix or
// prterun (PMIX_RANK), PMI-1/2 launchers such as MPICH's hydra or srun
// --mpi=pmi2 (PMI_SIZE), and a plain srun job step of more than one task
// (SLURM_STEP_NUM_TASKS, or SLURM_NTASKS with SLURM_STEP_ID). ok is false
// when none is set.
func detectLaunch(getenv func(string) string) (l launch, ok bool) {
	num := func(name string) int {
		v, err := strconv.Atoi(getenv(name))
		if err != nil {
			return -1
		}
		return v
	}
	l = launch{rank: -1}
	slurm := num("SLURM_STEP_NUM_TASKS")
	if slurm < 0 && getenv("SLURM_STEP_ID") != "" {
		slurm = num("SLURM_NTASKS")
	}
	switch {
	case getenv("OMPI_COMM_WORLD_SIZE") != "":
		l.by = fmt.Sprintf("Open MPI's mpirun (OMPI_COMM_WORLD_SIZE=%s)", getenv("OMPI_COMM_WORLD_SIZE"))
		l.size, l.rank, l.mpi = max(num("OMPI_COMM_WORLD_SIZE"), 0), num("OMPI_COMM_WORLD_RANK"), true
	case getenv("PMIX_RANK") != "":
		l.by = fmt.Sprintf("a PMIx launcher (PMIX_RANK=%s)", getenv("PMIX_RANK"))
		l.size, l.rank, l.mpi = max(slurm, 0), num("PMIX_RANK"), true
	case getenv("PMI_SIZE") != "":
		l.by = fmt.Sprintf("a PMI launcher (PMI_SIZE=%s)", getenv("PMI_SIZE"))
		l.size, l.rank, l.mpi = max(num("PMI_SIZE"), 0), num("PMI_RANK"), true
	case slurm > 1:
		l.by = fmt.Sprintf("srun (a job step of %d tasks)", slurm)
		l.size, l.rank = slurm, num("SLURM_PROCID")
	default:
		return launch{rank: -1}, false
	}
	return l, true
}
