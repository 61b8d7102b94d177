#!/bin/bash
# A stand-in for the dualrs executable that exercises slurm/lib/launch.sh on the test cluster
# without the sharded stages: it behaves like a stage that is preempted once.
#   first run of the job (SLURM_RESTART_COUNT unset or 0): marks "started.RANK", then waits
#     for SIGUSR1 (marking "usr1.RANK") and exits 75 like a stage that stopped early;
#   later runs: mark "done.RANK" and exit 0.
# FAKE_DUALRS_DIR names the folder for the marks; every run also writes its arguments to
# args.RUN.RANK. FAKE_DUALRS_FAIL=1 makes every run fail with exit 3. FAKE_DUALRS_STRAGGLER=1
# makes rank 1 exit 75 only 5 s after SIGUSR1, so srun's --kill-on-bad-exit ends it first. `CMD --help` prints the
# option the template probes for.
set -euo pipefail
if [ "${2:-}" = "--help" ]; then echo "  --expect-world-size N   ranks the launcher must have started"; exit 0; fi
dir="${FAKE_DUALRS_DIR:?FAKE_DUALRS_DIR must name a folder}"
rank="${OMPI_COMM_WORLD_RANK:-${SLURM_PROCID:-0}}"
run="${SLURM_RESTART_COUNT:-0}"
echo "$*" >"$dir/args.$run.$rank"
if [ "${FAKE_DUALRS_FAIL:-0}" = "1" ]; then exit 3; fi
if [ "$run" -eq 0 ]; then
  if [ "${FAKE_DUALRS_STRAGGLER:-0}" = "1" ] && [ "$rank" = "1" ]; then
    trap 'touch "$dir/usr1.$rank"; sleep 5; exit 75' USR1
  else
    trap 'touch "$dir/usr1.$rank"; exit 75' USR1
  fi
  touch "$dir/started.$rank"
  # slurmstepd may signal the whole process group, so a sleep can die of SIGUSR1 before this
  # shell runs its trap: without errexit the loop survives that and the trap decides the exit.
  set +e
  end=$((SECONDS + 120))
  while [ "$SECONDS" -lt "$end" ]; do sleep 0.1; done
  exit 4  # no signal within two minutes
fi
touch "$dir/done.$rank"
