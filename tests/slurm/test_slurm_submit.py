"""slurm/submit without a cluster (label integration): the plan `dualrs run --emit-plan`
writes (each stage's command line run alone gives what `dualrs run` gives), the sbatch
commands of --dry-run for the 128-GPU ImageNet label job and for a job array, the templates'
Slurm practice (docs/cluster.md §8), and bad input."""
import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import unittest

import h5py
import numpy as np

from slurm_testlib import BIN, SOURCE, SUBMIT, write_json

SLURM_DIR = os.path.join(SOURCE, "slurm")
TS_MODEL = os.path.join(SOURCE, "tests", "data", "ts_mean_scaled.pt")


def submit(*args, env=None):
    full = dict(os.environ, DUALRS_BIN=BIN, **(env or {}))
    return subprocess.run([SUBMIT, *args], capture_output=True, text=True, env=full)


def sbatch_calls(script):
    """The dry run's `JOB_x=$(ENV... sbatch ARGS...)` lines as (variable, env dict, sbatch args)."""
    calls = []
    for line in script.splitlines():
        m = re.match(r"^(JOB_\w+)=\$\((.*)\)$", line)
        if not m:
            continue
        words = shlex.split(m.group(2))
        i = words.index("sbatch")
        calls.append((m.group(1), dict(w.split("=", 1) for w in words[:i]), words[i + 1:]))
    return calls


def options(args):
    """sbatch options before the template as {name: value}."""
    opts = {}
    for word in args:
        if not word.startswith("--"):
            break
        name, _, value = word[2:].partition("=")
        opts[name] = value
    return opts


class SubmitTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="dualrs_submit_")
        self.env = {"TMPDIR": self.tmp}

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def path(self, *parts):
        return os.path.join(self.tmp, *parts)

    def certify_job(self, **stage_extra):
        """Two certifications of a TorchScript fixture model and their table: no training."""
        from slurm_testlib import quick_config
        cfg = quick_config()
        cfg["model"] = {"torchscript": TS_MODEL, "num_classes": 10}
        cfg["certify"].update(n0=10, n=40, selection={"split": "test", "end": 8})
        config = write_json(self.path("config.json"), cfg)
        stages = [{"name": "cert_a", "command": "certify", "set": {"certify": {"sigma": 0.25}}, **stage_extra},
                  {"name": "cert_b", "command": "certify", "set": {"certify": {"sigma": 0.5}}},
                  {"name": "table", "command": "table", "out": "${out}",
                   "inputs": ["${out}/cert_a/certify.h5", "${out}/cert_b/certify.h5"]}]
        return write_json(self.path("job.json"), {"name": "tiny", "config": config, "stages": stages})

    def read_plan(self, plan):
        with open(os.path.join(plan, "plan.tsv")) as f:
            return [line.rstrip("\n").split("\t") for line in f if not line.startswith("#")]

    def test_each_planned_command_alone_gives_what_dualrs_run_gives(self):
        job = self.certify_job()
        out, plan = self.path("planned"), self.path("plan")
        subprocess.run([BIN, "run", job, "--out", out, "--emit-plan", plan], check=True, capture_output=True)
        rows = self.read_plan(plan)
        self.assertEqual([r[1:4] for r in rows], [["cert_a", "certify", "pending"], ["cert_b", "certify", "pending"],
                                                  ["table", "table", "pending"]])
        for index, name, command, status, stage_dir, record, record_to, slurm, *argv in rows:
            self.assertEqual(argv[0], command)
            self.assertEqual(slurm, "-")
            with open(argv[argv.index("--config") + 1]) as f:
                resolved = json.load(f)
            if name == "cert_b":
                self.assertEqual(resolved["certify"]["sigma"], 0.5)
                self.assertEqual(resolved["model"]["torchscript"], TS_MODEL)
            subprocess.run([BIN, *argv, "--quiet"], check=True, capture_output=True)
            shutil.copy(record, record_to)  # what the template does after success
        reference = self.path("reference")
        subprocess.run([BIN, "run", job, "--out", reference, "--quiet"], check=True, capture_output=True)
        for stage in ("cert_a", "cert_b"):
            with h5py.File(os.path.join(out, stage, "certify.h5")) as a, \
                    h5py.File(os.path.join(reference, stage, "certify.h5")) as b:
                for key in ("idx", "prediction", "radius", "counts"):
                    self.assertTrue(np.array_equal(a[key][()], b[key][()]), f"{stage}/{key}")
        with open(os.path.join(out, "certified_accuracy.csv")) as a, \
                open(os.path.join(reference, "certified_accuracy.csv")) as b:
            self.assertEqual(a.read(), b.read())
        # table --config: the config's radii unless --radii is given.
        table_argv = rows[2][8:]
        self.assertEqual(table_argv[3], "--out")
        subprocess.run([BIN, *table_argv[:4], self.path("t"), *table_argv[5:], "--radii", "0,1", "--quiet"],
                       check=True, capture_output=True)
        with open(self.path("t", "certified_accuracy.csv")) as f:
            self.assertEqual({float(r.split(",")[1]) for r in f.read().splitlines()[1:]}, {0.0, 1.0})
        # The published records make the stages up to date for dualrs run and for the plan.
        dry = subprocess.run([BIN, "run", job, "--out", out, "--dry-run"], check=True, capture_output=True,
                             text=True).stdout
        self.assertEqual(dry.count("[up to date]"), 3, dry)
        subprocess.run([BIN, "run", job, "--out", out, "--emit-plan", self.path("plan2")], check=True,
                       capture_output=True)
        self.assertEqual([r[3] for r in self.read_plan(self.path("plan2"))], ["done"] * 3)
        proc = submit(job, "--out", out, "--dry-run", env=self.env)
        self.assertEqual(sbatch_calls(proc.stdout), [])
        self.assertEqual(proc.stdout.count("up to date, not submitted"), 3)
        forced = submit(job, "--out", out, "--dry-run", "--force", env=self.env)
        self.assertEqual(len(sbatch_calls(forced.stdout)), 3)

    def test_imagenet_label_job_asks_for_16_nodes_of_8_gpus(self):
        out = self.path("imagenet_labels")
        proc = submit(os.path.join(SOURCE, "jobs", "imagenet_labels_128gpu.json"), "--out", out, "--site", "example",
                      "--dry-run", env=self.env)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertFalse(os.path.exists(out), "a dry run writes nothing under DIR")
        subprocess.run(["bash", "-n"], input=proc.stdout, text=True, check=True)
        calls = sbatch_calls(proc.stdout)
        self.assertEqual(len(calls), 1, proc.stdout)
        var, env, args = calls[0]
        opts = options(args)
        self.assertEqual(opts["nodes"], "16")
        self.assertEqual(opts["ntasks-per-node"], "8")
        self.assertEqual(opts["gpus-per-task"], "1")
        self.assertNotIn("gpus-per-node", opts)
        self.assertEqual(opts["cpus-per-task"], "8")
        self.assertEqual(opts["partition"], "gpu")
        self.assertEqual(opts["account"], "my-project")
        self.assertEqual(opts["time"], "24:00:00")
        self.assertEqual(opts["output"], os.path.join(out, "logs", "%x-%j.out"))
        self.assertNotIn("dependency", opts)
        template = args[len(opts)]
        self.assertEqual(template, os.path.join(SLURM_DIR, "label.sbatch"))
        argv = args[len(opts) + 1:]
        self.assertEqual(argv[:2], ["label", "--config"])
        self.assertEqual(argv[3:], ["--out", os.path.join(out, "label")])
        self.assertEqual(env["DUALRS_SITE"], "example")
        self.assertEqual(env["DUALRS_STAGE_RECORD_TO"], os.path.join(out, "label", "stage-label.json"))
        with open(argv[2]) as f:
            resolved = json.load(f)
        self.assertEqual(resolved["dual"]["sigma_candidates"], [0.5, 1.0])
        self.assertEqual(resolved["label"]["n"], 100)
        self.assertEqual(resolved["label"]["alpha"], 0.001)
        # Every ILSVRC-2012 training image, through the guided-diffusion denoiser (linear, T = 1000).
        self.assertEqual(resolved["label"]["selection"], {"split": "train", "begin": 0, "end": 1281167})
        self.assertEqual((resolved["denoiser"]["schedule"], resolved["denoiser"]["steps"]), ("linear", 1000))
        self.assertTrue(resolved["denoiser"]["torchscript"].endswith("models/imagenet/imagenet_epsilon.pt"),
                        resolved["denoiser"])
        self.assertIn("16 node(s) x 8 rank(s) = 128 rank(s)", proc.stdout)

    def test_array_stage_is_an_array_then_a_merge(self):
        job = self.certify_job(slurm={"array": 4, "array_max_running": 2, "ntasks_per_node": 2, "time": "30"})
        out = self.path("run")
        proc = submit(job, "--out", out, "--dry-run", "--", "--reservation=r1", env=self.env)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        calls = sbatch_calls(proc.stdout)
        self.assertEqual([c[0] for c in calls], ["JOB_1_ARRAY", "JOB_1", "JOB_2", "JOB_3"])
        (_, array_env, array_args), (_, merge_env, merge_args) = calls[0], calls[1]
        opts = options(array_args)
        self.assertEqual(opts["array"], "0-3%2")
        self.assertEqual(opts["output"], os.path.join(out, "logs", "%x-%A_%a.out"))
        self.assertEqual(opts["ntasks-per-node"], "2")
        self.assertEqual(opts["reservation"], "r1")
        self.assertEqual(array_args[len(opts)], os.path.join(SLURM_DIR, "array.sbatch"))
        self.assertEqual(array_env["DUALRS_ARRAY_PARTS"], "4")
        self.assertNotIn("DUALRS_STAGE_RECORD", array_env)
        mopts = options(merge_args)
        self.assertEqual(mopts["dependency"], "afterok:$JOB_1_ARRAY")
        self.assertEqual(mopts["kill-on-invalid-dep"], "yes")
        self.assertEqual(mopts["ntasks-per-node"], "1")
        self.assertEqual(merge_args[len(mopts):], [os.path.join(SLURM_DIR, "merge.sbatch"), "merge",
                                                   os.path.join(out, "cert_a")])
        self.assertEqual(merge_env["DUALRS_STAGE_RECORD_TO"], os.path.join(out, "cert_a", "stage-cert_a.json"))
        self.assertEqual(options(calls[2][2])["dependency"], "afterok:$JOB_1")
        self.assertEqual(options(calls[3][2])["dependency"], "afterok:$JOB_2")
        self.assertEqual(calls[3][2][len(options(calls[3][2]))], os.path.join(SLURM_DIR, "table.sbatch"))

    def test_after_chains_the_first_stage_onto_a_job(self):
        proc = submit(self.certify_job(), "--out", self.path("run"), "--dry-run", "--after", "4242", env=self.env)
        calls = sbatch_calls(proc.stdout)
        self.assertEqual(options(calls[0][2])["dependency"], "afterok:4242")

    def test_templates_follow_cluster_practice(self):
        for name in sorted(os.listdir(SLURM_DIR)):
            if not name.endswith(".sbatch"):
                continue
            with open(os.path.join(SLURM_DIR, name)) as f:
                text = f.read()
            lines = text.splitlines()
            self.assertEqual(lines[0], "#!/bin/bash", name)
            self.assertIn("set -euo pipefail", lines, name)
            directives = [line.split(None, 1)[1] for line in lines if line.startswith("#SBATCH")]
            log = "--output=logs/%x-%A_%a.out" if name == "array.sbatch" else "--output=logs/%x-%j.out"
            for wanted in (log, "--open-mode=append", "--requeue", "--signal=B:USR1@300"):
                self.assertIn(wanted, directives, name)
            for site_specific in ("--partition", "--account", "--qos", "--gpus", "--gres"):
                self.assertFalse(any(d.startswith(site_specific) for d in directives), f"{name}: {site_specific}")
        with open(os.path.join(SLURM_DIR, "lib", "launch.sh")) as f:
            launch = f.read()
        for wanted in ("srun --mpi=pmix --kill-on-bad-exit=1", '--cpus-per-task="$cpus"', "mpirun -np",
                       "export HDF5_USE_FILE_LOCKING=FALSE", 'scontrol requeue "$SLURM_JOB_ID"',
                       '--expect-world-size "$ntasks"'):
            self.assertIn(wanted, launch)

    def test_hostile_names_stay_data_in_the_printed_script_and_the_sbatch_calls(self):
        # A job file named like an option, a command substitution and a second command line,
        # and an output folder with `;` and `$(...)`: the printed script and the real
        # submission must pass them to sbatch as they are and run none of them.
        hostile = "-x; $(touch pwned)\ntouch pwned #"
        job = self.path(hostile + ".json")
        shutil.copy(self.certify_job(), job)
        out = self.path("-out; $(touch pwned)")
        work = self.path("work")
        fake_bin = self.path("fake_bin")
        os.makedirs(work)
        os.makedirs(fake_bin)
        calls_log = self.path("sbatch_calls")
        with open(os.path.join(fake_bin, "sbatch"), "w") as f:
            f.write('#!/bin/bash\nprintf \'%s\\0\' "$@" >>"$SBATCH_CALLS"; printf \'\\n\' >>"$SBATCH_CALLS"; echo 4242\n')
        os.chmod(os.path.join(fake_bin, "sbatch"), 0o755)
        env = dict(self.env, PATH=fake_bin + os.pathsep + os.environ["PATH"], SBATCH_CALLS=calls_log)

        def recorded():
            with open(calls_log, "rb") as f:
                calls = [line.split(b"\0") for line in f.read().split(b"\0\n") if line]
            os.remove(calls_log)
            return [[w.decode() for w in call] for call in calls]

        dry = submit(job, "--out", out, "--dry-run", env=env)
        self.assertEqual(dry.returncode, 0, dry.stderr)
        for line in dry.stdout.splitlines():
            self.assertTrue(line.startswith(("#", "set ", "mkdir ", "JOB_")), f"stray line in the script: {line!r}")
        script = subprocess.run(["bash", "-c", dry.stdout], cwd=work, capture_output=True, text=True,
                                env=dict(os.environ, **env))
        self.assertEqual(script.returncode, 0, script.stderr)
        from_script = recorded()
        real = subprocess.run([SUBMIT, job, "--out", out], cwd=work, capture_output=True, text=True,
                              env=dict(os.environ, DUALRS_BIN=BIN, **env))
        self.assertEqual(real.returncode, 0, real.stderr)
        submitted = recorded()
        self.assertEqual([f for f in os.listdir(work)], [], "a name was run as a command")
        self.assertFalse(os.path.exists(self.path("pwned")))
        for calls in (from_script, submitted):
            self.assertEqual(len(calls), 3)
            opts = options(calls[0][1:])  # after --parsable
            self.assertEqual(opts["job-name"], "-x____touch_pwned__touch_pwned__.cert_a")
            self.assertEqual(opts["output"], os.path.join(out, "logs", "%x-%j.out"))
            self.assertEqual(calls[0][-2:], ["--out", os.path.join(out, "cert_a")])
        self.assertEqual([c[-2:] for c in from_script], [c[-2:] for c in submitted])

    def test_bad_input_is_refused_with_a_clear_line(self):
        job = self.certify_job()
        cases = [
            ((job, "--out", self.path("o"), "--site", "nosuchsite", "--dry-run"), "site file not found"),
            ((job, "--dry-run"), "--out DIR is required"),
            ((self.path("missing.json"), "--out", self.path("o"), "--dry-run"), "job manifest not found"),
            ((job, "--out", self.path("o"), "--after", "x1", "--dry-run"), "numeric job id"),
            ((job, "--out", self.path("o"), "--bogus"), "unknown option '--bogus'"),
        ]
        for args, message in cases:
            proc = submit(*args, env=self.env)
            self.assertNotEqual(proc.returncode, 0, args)
            self.assertIn(message, proc.stderr, args)
        for slurm, pointer in (({"array": 2}, "/stages/0/slurm/array"),
                               ({"gpus_per_task": 1}, "/stages/0/slurm/gpus_per_task"),
                               ({"time": "a day"}, "/stages/0/slurm/time"),
                               ({"nodes": 0}, "/stages/0/slurm/nodes"),
                               ({"partition": "gpu"}, "/stages/0/slurm")):
            bad = write_json(self.path("bad.json"), {"name": "bad", "config": self.path("config.json"),
                                                     "stages": [{"name": "base", "command": "train-base",
                                                                 "slurm": slurm}]})
            proc = submit(bad, "--out", self.path("o"), "--dry-run", env=self.env)
            self.assertNotEqual(proc.returncode, 0, slurm)
            self.assertIn(pointer, proc.stderr, slurm)
            self.assertIn("could not plan", proc.stderr)


if __name__ == "__main__":
    unittest.main()
