"""Helpers for the slurm-tier tests: the test cluster (tests/slurm/cluster.sh) as a CTest
fixture, job submission and waiting with timeouts, and logs printed when something fails.

As a program it is the fixture itself:
    slurm_testlib.py start STATE_FILE   start a cluster in a fresh temp dir, write its path
                                        (or "skip: REASON" where Slurm cannot start) to STATE_FILE
    slurm_testlib.py stop STATE_FILE    stop the daemons and remove the temp dir
"""
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from dualrs_testlib import BIN, SOURCE  # noqa: E402

CLUSTER_SH = os.path.join(HERE, "cluster.sh")
SUBMIT = os.path.join(SOURCE, "slurm", "submit")
SKIP_CODE = 77
STATE_FILE = os.environ.get("DUALRS_SLURM_STATE", "")


def dualrs_has(*words):
    """True when `dualrs --help` (or `dualrs CMD --help` for two words) mentions the last word."""
    proc = subprocess.run([BIN, *words[:-1], "--help"], capture_output=True, text=True)
    return words[-1] in proc.stdout


# Distributed execution (MPI worlds, sharded stages, merge, exit 75 on SIGUSR1;
# docs/cluster.md §2, §3, §7) is detected by its `merge` subcommand.
HAVE_SHARDS = dualrs_has("merge")
NEEDS_SHARDS = "needs sharded stages (this dualrs has no 'merge' subcommand)"


def cluster_dir():
    """The running test cluster's directory; raises SkipTest where Slurm could not start."""
    if not STATE_FILE or not os.path.exists(STATE_FILE):
        raise unittest.SkipTest("no test cluster: run through ctest (fixture slurm.cluster_start)")
    with open(STATE_FILE) as f:
        text = f.read().strip()
    if text.startswith("skip:"):
        raise unittest.SkipTest("Slurm cannot start here:" + text[len("skip:"):])
    return text


def slurm_env(extra=None):
    env = dict(os.environ)
    env["SLURM_CONF"] = os.path.join(cluster_dir(), "slurm.conf")
    env.setdefault("OMP_NUM_THREADS", "1")
    env.update(extra or {})
    return env


def run(cmd, env=None, check=True, timeout=120, cwd=None):
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env or slurm_env(), timeout=timeout, cwd=cwd)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def job_info(job_id):
    """`scontrol show job -o` as a dict (first record; arrays give one per element)."""
    out = run(["scontrol", "show", "job", "-o", str(job_id)], check=False).stdout
    info = {}
    for line in out.splitlines()[:1]:
        for m in re.finditer(r"(\w+)=(\S*)", line):
            info.setdefault(m.group(1), m.group(2))
    return info


def job_states(job_id):
    """States of a job, or of every element of an array job."""
    out = run(["scontrol", "show", "job", "-o", str(job_id)], check=False).stdout
    return re.findall(r"JobState=(\w+)", out)


FINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE",
         "PREEMPTED"}


def wait_until(predicate, timeout, what, poll=0.25):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{cluster_report()}")
        time.sleep(poll)


def wait_for_end(job_ids, timeout, logs_glob=None):
    """Waits until every job (and array element) has ended; returns {job id: [states]}. Polls
    scontrol every 0.25 s (sbatch --wait polls at 2-10 s). On timeout the jobs are cancelled and
    the queue, the daemons' logs and the jobs' logs are printed."""
    def all_final():
        return all(s and all(x in FINAL for x in s) for s in (job_states(j) for j in job_ids))
    try:
        wait_until(all_final, timeout, f"jobs {job_ids}")
    except AssertionError as e:
        run(["scancel", *map(str, job_ids)], check=False)
        raise AssertionError(f"{e}\n{logs(logs_glob)}") from None
    return {j: job_states(j) for j in job_ids}


def wait_for_jobs(job_ids, timeout, logs_glob=None):
    """wait_for_end, then asserts that every job COMPLETED, printing the job records and logs."""
    states = wait_for_end(job_ids, timeout, logs_glob)
    bad = {j: s for j, s in states.items() if any(x != "COMPLETED" for x in s)}
    if bad:
        details = "\n".join(run(["scontrol", "show", "job", str(j)], check=False).stdout for j in bad)
        raise AssertionError(f"jobs did not complete: {bad}\n{details}\n{logs(logs_glob)}\n{cluster_report()}")


def logs(pattern):
    if not pattern:
        return ""
    parts = []
    for path in sorted(glob.glob(pattern)):
        with open(path, errors="replace") as f:
            parts.append(f"----- {path}\n{f.read()[-4000:]}")
    return "\n".join(parts)


def cluster_report():
    squeue = run(["squeue", "-o", "%i %j %T %r"], check=False).stdout
    daemons = subprocess.run(["bash", CLUSTER_SH, "logs", cluster_dir()], capture_output=True, text=True).stderr
    return f"squeue:\n{squeue}\n{daemons}"


def sbatch(args, env=None, cwd=None):
    """Submits; returns the job id."""
    proc = run(["sbatch", "--parsable", *args], env=env, cwd=cwd)
    return int(proc.stdout.strip().split(";")[0])


def submit_job(job_path, out, extra_env=None, args=()):
    """slurm/submit JOB --out OUT --site local; returns the last job id and the stage -> job id map."""
    env = slurm_env(extra_env)
    env["DUALRS_BIN"] = BIN
    proc = run([SUBMIT, job_path, "--out", out, "--site", "local", *args], env=env)
    jobs = {}
    for line in proc.stderr.splitlines():
        m = re.match(r"^  (\S+(?: \((?:array|merge)\))?)\t(\d+)$", line)
        if m:
            jobs[m.group(1)] = int(m.group(2))
    return int(proc.stdout.strip().splitlines()[-1]), jobs


def quick_config(data_dir=None):
    """configs/mnist_dual.json made quick: small subsets, small n, one epoch."""
    data = data_dir or os.path.join(SOURCE, "data", "mnist")
    with open(os.path.join(SOURCE, "configs", "mnist_dual.json")) as f:
        cfg = json.load(f)
    cfg["name"] = "slurm_quick"
    cfg["dataset"].update(images=os.path.join(data, "images-idx3-ubyte.gz"),
                          labels=os.path.join(data, "labels-idx1-ubyte.gz"),
                          splits={"train": os.path.join(data, "split", "train.txt"),
                                  "test": os.path.join(data, "split", "test.txt")})
    cfg["train_base"].update(epochs=2, batch_size=32, lr=0.003, selection={"split": "train", "end": 600})
    cfg["label"].update(n=20, batch_size=20, selection={"split": "train", "begin": 0, "end": 160})
    cfg["train_estimator"].update(epochs=1, validation_fraction=0.2)
    cfg["estimate_sigma"].update(n=4, batch_size=16, selection={"split": "train", "end": 96})
    cfg["finetune"].update(epochs=1)
    cfg["certify"].update(n0=10, n=50, batch_size=50, selection={"split": "test", "end": 24})
    cfg["table"] = {"radii": [0, 0.25, 0.5, 1.0], "convention": "both"}
    if HAVE_SHARDS:
        for section in ("label", "estimate_sigma", "certify"):
            cfg[section]["shard_size"] = 8
    return cfg


def quick_job(config_file, name="slurm_quick", ranks=2 if HAVE_SHARDS else 1, stages=None):
    """The MNIST Dual RS job (jobs/mnist_dual_rs.json) on quick_config(): every kind of stage,
    the sharded ones with `ranks` ranks each. `stages` keeps only the named ones."""
    sharded = {"slurm": {"ntasks_per_node": ranks, "time": "10"}}
    base = "${out}/train_base/model.pt"
    estimator = {"arch": "mnist_cnn", "checkpoint": "${out}/train_estimator/estimator.pt"}
    all_stages = [
        {"name": "train_base", "command": "train-base"},
        {"name": "label", "command": "label", "set": {"model": {"checkpoint": base}}, **sharded},
        {"name": "train_estimator", "command": "train-estimator",
         "set": {"train_estimator": {"labels": "${out}/label/labels.h5"}}},
        {"name": "estimate_sigma", "command": "estimate-sigma", "set": {"dual": {"estimator": estimator}}, **sharded},
        {"name": "finetune", "command": "finetune",
         "set": {"model": {"checkpoint": base}, "finetune": {"estimates": "${out}/estimate_sigma/sigma_estimates.h5"}}},
        {"name": "certify_global_sigma_0.5", "command": "certify",
         "set": {"model": {"checkpoint": base}, "certify": {"method": "global", "sigma": 0.5}}, **sharded},
        {"name": "certify_dual_rs", "command": "certify",
         "set": {"model": {"checkpoint": "${out}/finetune/model.pt"}, "certify": {"method": "dual"},
                 "dual": {"estimator": estimator}}, **sharded},
        {"name": "table", "command": "table", "out": "${out}",
         "inputs": ["${out}/certify_global_sigma_0.5/certify.h5", "${out}/certify_dual_rs/certify.h5"]},
    ]
    kept = [s for s in all_stages if stages is None or s["name"] in stages]
    return {"name": name, "config": config_file, "stages": kept}


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=1)
    return path


def run_tests(module_name):
    """Runs a test module; exits 77 (CTest SKIP_RETURN_CODE) when every test was skipped, so a
    tier that cannot run here shows as skipped with its reason instead of passed."""
    suite = unittest.defaultTestLoader.loadTestsFromName(module_name)
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    if not result.wasSuccessful():
        sys.exit(1)
    if result.skipped and result.testsRun - len(result.skipped) <= 0:
        print("all skipped: " + "; ".join(sorted({reason for _, reason in result.skipped})))
        sys.exit(SKIP_CODE)


# The chain test's output folder, read by the tests that compare against it (CTest fixture
# slurm_chain).
CHAIN_OUT = os.environ.get("DUALRS_SLURM_CHAIN_OUT", "")


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("start", "stop"):
        sys.exit("usage: slurm_testlib.py start|stop STATE_FILE")
    action, state_file = sys.argv[1:]
    if action == "start" and os.path.exists(state_file):
        # A cluster an interrupted run left behind (ctest killed before its cleanup).
        subprocess.run([sys.executable, __file__, "stop", state_file])
    if action == "start":
        directory = tempfile.mkdtemp(prefix="dualrs-slurm-")
        proc = subprocess.run(["bash", CLUSTER_SH, "start", directory], capture_output=True, text=True)
        sys.stderr.write(proc.stderr)
        if proc.returncode == SKIP_CODE:
            shutil.rmtree(directory, ignore_errors=True)
            reason = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "unknown"
            with open(state_file, "w") as f:
                f.write("skip: " + reason + "\n")
            print("slurm tests will be skipped: " + reason)
            return
        with open(state_file, "w") as f:
            f.write(directory + "\n")
        if proc.returncode != 0:
            sys.exit(f"could not start the test cluster (exit {proc.returncode})")
        return
    if not os.path.exists(state_file):
        return
    directory = open(state_file).read().strip()
    os.remove(state_file)
    if directory.startswith("skip:"):
        return
    proc = subprocess.run(["bash", CLUSTER_SH, "stop", directory], capture_output=True, text=True)
    sys.stderr.write(proc.stderr)
    shutil.rmtree(directory, ignore_errors=True)
    if proc.returncode != 0:
        sys.exit(f"stopping the test cluster failed (exit {proc.returncode})")


if __name__ == "__main__":
    main()
