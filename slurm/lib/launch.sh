# shellcheck shell=bash
# Sourced by the slurm/*.sbatch templates inside a batch job: the one place that knows how a
# dualrs stage is started on an allocation (slurm/README.md). A template calls
#
#   dualrs_stage "COMMANDS IT SERVES" DUALRS_ARGV...
#
# which loads the site file, starts the ranks (srun --mpi=pmix, or mpirun with
# LAUNCHER=mpirun), forwards a preemption signal to them, and requeues the job when dualrs
# exits with 75 (stopped early, finished shards published, re-running completes the job).
#
# Environment (sbatch passes the submitting shell's environment by default):
#   DUALRS_ROOT          repository root (default: $SLURM_SUBMIT_DIR; sbatch runs a copy of
#                        the template, so it cannot find the repository from its own path)
#   DUALRS_SITE          site file slurm/site/$DUALRS_SITE.env (default: none)
#   DUALRS_BIN           the dualrs executable (default: $DUALRS_ROOT/build/dualrs)
#   LAUNCHER             srun (default) or mpirun
#   DUALRS_STAGE_RECORD, DUALRS_STAGE_RECORD_TO
#                        set by slurm/submit: the completion record `dualrs run` reads,
#                        copied into place when the stage succeeds
#   DUALRS_ARRAY_PARTS   array template: how many parts the stage's shards are split into

# Exit status of a dualrs stage that stopped early on SIGUSR1/SIGTERM and should run again
# (EX_TEMPFAIL, as agreed with the sharded stages).
readonly kDualrsRequeue=75

dualrs_log() { echo "[dualrs-slurm $(date -u +%FT%TZ) job ${SLURM_JOB_ID:-?}] $*" >&2; }
dualrs_die() { dualrs_log "error: $*"; exit 1; }

# Loads slurm/site/$DUALRS_SITE.env: modules, environment, launcher defaults.
dualrs_load_site() {
  DUALRS_ROOT="${DUALRS_ROOT:-${SLURM_SUBMIT_DIR:-$PWD}}"
  export DUALRS_ROOT
  if [ -n "${DUALRS_SITE:-}" ]; then
    local site_file="$DUALRS_ROOT/slurm/site/$DUALRS_SITE.env"
    [ -f "$site_file" ] || dualrs_die "site file $site_file not found (DUALRS_SITE=$DUALRS_SITE)"
    # shellcheck source=/dev/null
    source "$site_file"
  fi
  if [ -n "${SITE_MODULES:-}" ]; then
    command -v module >/dev/null 2>&1 || dualrs_die "SITE_MODULES is set but there is no 'module' command"
    # shellcheck disable=SC2086  # a list of module names
    module load $SITE_MODULES
  fi
}

# The srun or mpirun command line (into the array LAUNCH) for $SLURM_NTASKS ranks.
dualrs_launch_command() {
  local ntasks="$1" cpus="$2"
  case "${LAUNCHER:-${SITE_LAUNCHER:-srun}}" in
    srun)
      # --cpus-per-task is given again on the srun line: Slurm 22.05 and 23.02 do not pass the
      # job's value on to steps. --kill-on-bad-exit: a rank that dies must not leave the
      # others waiting in a collective.
      LAUNCH=(srun --mpi=pmix --kill-on-bad-exit=1 --ntasks="$ntasks" --cpus-per-task="$cpus")
      # GPUs: what the job was given, stated explicitly for the step. Ranks pick
      # cuda:(local rank mod visible GPUs), so both per-task and per-node GPUs work.
      if [ -n "${SLURM_GPUS_PER_TASK:-}" ]; then LAUNCH+=(--gpus-per-task="$SLURM_GPUS_PER_TASK"); fi
      if [ -n "${SLURM_GPUS_PER_NODE:-}" ]; then LAUNCH+=(--gpus-per-node="$SLURM_GPUS_PER_NODE"); fi
      # shellcheck disable=SC2206  # site options are words
      LAUNCH+=(${SITE_SRUN_ARGS:-})
      ;;
    mpirun)
      # Open MPI reads the allocation from Slurm; remote ranks get only the variables named
      # with -x. mpirun forwards SIGUSR1/SIGUSR2 and SIGTERM to the ranks.
      LAUNCH=(mpirun -np "$ntasks" --map-by "slot:PE=$cpus" --bind-to core
        -x HDF5_USE_FILE_LOCKING -x OMP_NUM_THREADS -x DUALRS_NUM_THREADS)
      # shellcheck disable=SC2206
      LAUNCH+=(${SITE_MPIRUN_ARGS:-})
      ;;
    *) dualrs_die "LAUNCHER must be srun or mpirun, got '${LAUNCHER:-${SITE_LAUNCHER:-}}'" ;;
  esac
}

# A stop request (SIGUSR1 from sbatch --signal=B:USR1@300 or scancel --batch, SIGTERM from a
# preemption) reaching the batch shell: remembered, and passed on to the launcher once it runs
# (srun and mpirun pass it to every rank). The traps are set before anything slow happens, so
# an early signal cannot end the batch shell itself.
DUALRS_STOP_SIGNAL=""
DUALRS_LAUNCHER_PID=""
dualrs_on_stop_signal() {
  DUALRS_STOP_SIGNAL="$1"
  dualrs_log "SIG$1: asking the ranks to stop at a batch boundary"
  if [ -n "$DUALRS_LAUNCHER_PID" ]; then kill -"$1" "$DUALRS_LAUNCHER_PID" 2>/dev/null || true; fi
}
dualrs_trap_stop_signals() {
  trap 'dualrs_on_stop_signal USR1' USR1
  trap 'dualrs_on_stop_signal TERM' TERM
}

# Runs "$@" (the launcher) in the background and waits for it, passing stop requests on.
# Sets LAUNCH_STATUS: the launcher's exit status, with two corrections:
#  - srun (Slurm 22.05) exits with 0 when its tasks could not be launched at all ("task 0
#    launch failed"), which would mark a stage complete that never ran; its stderr is copied
#    to a scratch file and such a launch counts as a failure (status 1);
#  - a stage that stopped early counts as 75 also when the launcher reports a rank ended by a
#    signal (see below).
dualrs_run_forwarding_signals() {
  local pid status tee_pid errfd scratch
  if [ -n "$DUALRS_STOP_SIGNAL" ]; then
    dualrs_log "asked to stop before the ranks started"
    LAUNCH_STATUS="$kDualrsRequeue"
    return
  fi
  scratch="$(mktemp "${TMPDIR:-/tmp}/dualrs-launch.XXXXXX")"
  exec {errfd}> >(tee -a "$scratch" >&2)
  tee_pid=$!
  "$@" 2>&"$errfd" &
  pid=$!
  DUALRS_LAUNCHER_PID="$pid"
  # A signal that came while the launcher was being started.
  if [ -n "$DUALRS_STOP_SIGNAL" ]; then kill -"$DUALRS_STOP_SIGNAL" "$pid" 2>/dev/null || true; fi
  while true; do
    status=0
    wait "$pid" || status=$?
    # wait returns early (status > 128) when a trapped signal arrives; the launcher runs on.
    if [ "$status" -gt 128 ] && kill -0 "$pid" 2>/dev/null; then continue; fi
    break
  done
  DUALRS_LAUNCHER_PID=""
  exec {errfd}>&-
  wait "$tee_pid" 2>/dev/null || while kill -0 "$tee_pid" 2>/dev/null; do sleep 0.1; done
  if [ "$status" -eq 0 ] && grep -Eq '^srun: error: task [0-9]+ launch failed|aborted before step completely launched' "$scratch"; then
    dualrs_log "error: the launcher reported success but its tasks were never started (see the srun errors above)"
    status=1
  fi
  # Ranks that stopped early exit 75 together, but the first to exit makes srun
  # (--kill-on-bad-exit) SIGTERM the others, and one caught outside its stop handler dies by
  # the signal: srun then reports 143. If every rank that exited by itself said 75, the stage
  # stopped early.
  if [ "$status" -ne 0 ] && [ "$status" -ne "$kDualrsRequeue" ] &&
      [ "$(grep -oE 'Exited with exit code [0-9]+' "$scratch" | sort -u)" = "Exited with exit code $kDualrsRequeue" ]; then
    dualrs_log "a rank exited $kDualrsRequeue and the launcher ended the others (status $status): stopped early"
    status="$kDualrsRequeue"
  fi
  # A stop request that reached the launcher or a rank before its handler was set (while
  # starting up) ends it by the signal; finished shards are kept all the same.
  if [ "$status" -gt 128 ] && [ -n "$DUALRS_STOP_SIGNAL" ]; then
    dualrs_log "the launcher ended by a signal (status $status) after SIG$DUALRS_STOP_SIGNAL: stopped early"
    status="$kDualrsRequeue"
  fi
  rm -f "$scratch"
  LAUNCH_STATUS="$status"
}

# Copies the completion record slurm/submit planned into the stage's folder, atomically.
dualrs_publish_record() {
  [ -n "${DUALRS_STAGE_RECORD:-}" ] || return 0
  local to="${DUALRS_STAGE_RECORD_TO:?DUALRS_STAGE_RECORD_TO must accompany DUALRS_STAGE_RECORD}"
  mkdir -p "$(dirname "$to")"
  cp "$DUALRS_STAGE_RECORD" "$to.tmp.$SLURM_JOB_ID"
  mv -f "$to.tmp.$SLURM_JOB_ID" "$to"
  dualrs_log "stage complete: $to"
}

# dualrs_stage "COMMANDS" ARGV... : runs `dualrs ARGV...` on every rank of the job.
dualrs_stage() {
  local allowed="$1"; shift
  [ $# -ge 1 ] || dualrs_die "usage: sbatch [options] TEMPLATE COMMAND [dualrs options] (COMMAND: $allowed)"
  local command="$1"
  case " $allowed " in
    *" $command "*) ;;
    *) dualrs_die "this template runs '$allowed', not '$command'" ;;
  esac
  [ -n "${SLURM_JOB_ID:-}" ] || dualrs_die "not inside a Slurm job (submit with sbatch or slurm/submit)"
  dualrs_trap_stop_signals

  dualrs_load_site
  local bin="${DUALRS_BIN:-$DUALRS_ROOT/build/dualrs}"
  [ -x "$bin" ] || dualrs_die "dualrs executable not found: $bin (build it, or set DUALRS_BIN)"

  # HDF5 locks files with flock/fcntl by default; on NFS and Lustre those locks fail or hang
  # ("unable to lock file"). dualrs never has two writers on one file (one file per shard,
  # temporary name + rename, one merging process), so locking protects nothing here.
  export HDF5_USE_FILE_LOCKING=FALSE
  local ntasks="${SLURM_NTASKS:-1}" cpus="${SLURM_CPUS_PER_TASK:-1}"
  export OMP_NUM_THREADS="$cpus" DUALRS_NUM_THREADS="$cpus"

  # The silent-singleton guard: with a broken PMIx, srun starts N copies that each think they
  # are rank 0 of 1; dualrs aborts when its world size differs from this.
  local guard=(--expect-world-size "$ntasks")
  if ! "$bin" "$command" --help 2>/dev/null | grep -q -- '--expect-world-size'; then
    [ "$ntasks" -eq 1 ] || dualrs_die "$bin has no --expect-world-size: it cannot run $ntasks ranks (a dualrs without MPI)"
    guard=()
    dualrs_log "note: $bin $command has no --expect-world-size; running one task"
  fi

  local LAUNCH=()
  dualrs_launch_command "$ntasks" "$cpus"
  dualrs_log "host $(hostname -s), restart ${SLURM_RESTART_COUNT:-0}: ${LAUNCH[*]} $bin $* ${guard[*]}"
  local LAUNCH_STATUS=0
  dualrs_run_forwarding_signals "${LAUNCH[@]}" "$bin" "$@" "${guard[@]}"

  case "$LAUNCH_STATUS" in
    0)
      dualrs_publish_record
      ;;
    "$kDualrsRequeue")
      dualrs_log "stopped early (exit $kDualrsRequeue): finished shards are kept; requeueing job $SLURM_JOB_ID"
      # The job goes back to the queue (same id, logs appended); the next run skips the
      # finished shards. Stages chained after it keep waiting (afterok).
      # It fails when Slurm is already requeueing the job (a preemption with
      # PreemptMode=REQUEUE) or the job was submitted with --no-requeue: then the job ends
      # with 75 and a resubmission completes it.
      trap - USR1 TERM  # the requeue ends this shell with SIGTERM
      scontrol requeue "$SLURM_JOB_ID" ||
        dualrs_log "warning: scontrol requeue $SLURM_JOB_ID failed; resubmit the job to complete the stage"
      exit "$kDualrsRequeue"
      ;;
    *)
      dualrs_log "error: $command failed with exit status $LAUNCH_STATUS"
      exit "$LAUNCH_STATUS"
      ;;
  esac
}
