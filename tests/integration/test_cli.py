"""The command line explains itself: `dualrs --help` lists every subcommand, every `CMD --help`
describes each option and ends with an example, and `dualrs validate` rejects each kind of bad
config or job with the JSON pointer of every problem."""
import copy
import json
import os
import re
import unittest

from dualrs_testlib import SOURCE, TempDirTestCase, read_json, run, small_config


def subcommands():
    """(name, summary) pairs from `dualrs --help`."""
    out = run("--help").stdout
    block = out.split("commands:\n", 1)[1].split("\n\n", 1)[0]
    return [tuple(re.match(r"  (\S+)\s+(.+)", line).groups()) for line in block.splitlines()]


class HelpTest(unittest.TestCase):
    def test_top_level_help_lists_every_subcommand_once(self):
        names = [name for name, _ in subcommands()]
        self.assertEqual(len(names), len(set(names)))
        # Every command a job can name is a subcommand, and the reporting ones are there.
        with open(os.path.join(SOURCE, "data_schemas", "job.schema.json")) as f:
            job_commands = json.load(f)["properties"]["stages"]["items"]["properties"]["command"]["enum"]
        self.assertLessEqual(set(job_commands), set(names))
        self.assertLessEqual({"table", "plot", "validate", "run", "radius"}, set(names))
        for name, summary in subcommands():
            self.assertGreater(len(summary), 20, name)
        proc = run(check=False)  # no command: usage on stdout, exit 2
        self.assertEqual(proc.returncode, 2)
        self.assertIn("commands:", proc.stdout)

    def test_every_subcommand_explains_its_options_and_ends_with_an_example(self):
        for name, _ in subcommands():
            with self.subTest(command=name):
                proc = run(name, "--help")
                text = proc.stdout
                self.assertTrue(text.startswith(f"usage: dualrs {name} "), text)
                self.assertNotEqual(text.split("\n\n")[1].strip(), "", "a description paragraph follows the usage")
                example = text.rstrip().split("example:\n", 1)
                self.assertEqual(len(example), 2, "ends with an example")
                self.assertTrue(example[1].strip().startswith(f"dualrs {name}"), example[1])
                # Nothing but command lines after "example:" (a second one may show the MPI form).
                for line in example[1].strip().splitlines():
                    self.assertRegex(line.strip(), r"^(dualrs|mpirun -np \d+ dualrs) ", "the example is the last thing")
                # Every option has a description (boost prints it on the option's line or the next).
                lines = text.split("options:\n", 1)[1].split("\nexample:", 1)[0].splitlines()
                for i, line in enumerate(lines):
                    m = re.match(r"  (-\w \[ )?--([\w-]+)", line)
                    if not m:
                        continue
                    rest = re.sub(r"^\s*(-\w \[ )?--[\w-]+( \])?( arg)?( \(=[^)]*\))?", "", line).strip()
                    described = rest or (i + 1 < len(lines) and lines[i + 1].startswith(" " * 10))
                    self.assertTrue(described, f"--{m.group(2)} has no description")
                self.assertIn("--quiet", text)
                self.assertIn("--verbose", text)

    def test_stage_registry_is_the_list_of_stages(self):
        # `dualrs stages` prints the registry: the job schema's command enum, the stage
        # subcommands and the Slurm templates must all agree with it.
        stages = json.loads(run("stages", "--json").stdout)
        names = [s["name"] for s in stages]
        self.assertEqual(len(names), len(set(names)))
        with open(os.path.join(SOURCE, "data_schemas", "job.schema.json")) as f:
            job_commands = json.load(f)["properties"]["stages"]["items"]["properties"]["command"]["enum"]
        self.assertEqual(sorted(job_commands), sorted(names))
        self.assertLessEqual(set(names), {name for name, _ in subcommands()})
        tsv = [line.split("\t") for line in run("stages").stdout.splitlines() if not line.startswith("#")]
        self.assertEqual([row[0] for row in tsv], names)
        for s in stages:
            with self.subTest(stage=s["name"]):
                # Sharded inference takes one GPU per rank; data-parallel training shares a node's.
                if s["sharded"]:
                    self.assertEqual(s["gpus"], "per-task")
                if s["training"]:
                    self.assertEqual(s["gpus"], "per-node")
                template = s["slurm_template"]
                self.assertTrue(template, f"{s['name']} has no Slurm template")
                with open(os.path.join(SOURCE, "slurm", template + ".sbatch")) as f:
                    allowed = re.search(r'dualrs_stage "([^"]+)"', f.read()).group(1).split()
                self.assertIn(s["name"], allowed, f"slurm/{template}.sbatch does not run {s['name']}")

    def test_options_state_units_or_defaults(self):
        # Spot checks of the audit: units and defaults where a value has them.
        certify = run("certify", "--help").stdout
        for needle in ("[0,1]-pixel units", "default 100", "default 1000", "default 0.001", "(0, 1)",
                       "overrides /certify/n0"):
            self.assertIn(needle, certify)
        table = run("table", "--help").stdout
        for needle in ("cifar10", "imagenet", "inclusive (radius >= r", "strict (radius", "--names", "booktabs"):
            self.assertIn(needle, table)
        self.assertIn("png,pdf", run("plot", "--help").stdout)


class ValidateTest(TempDirTestCase):
    def dual_config(self):
        cfg = small_config()
        cfg["dual"] = {"sigma_candidates": [0.25, 0.5, 1.0], "sigma_e": 1.0, "estimator": {"arch": "mnist_cnn"}}
        cfg["table"] = {"radii": [0, 0.5, 1.0], "convention": "both"}
        return cfg

    def validate(self, cfg, name="bad.json"):
        return run("validate", self.write_json(name, cfg), check=False)

    def test_a_good_config_validates(self):
        proc = self.validate(self.dual_config(), "good.json")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("valid config", proc.stdout)

    def test_each_bad_config_is_rejected_with_its_pointer(self):
        def set_(path, value):
            def mutate(cfg):
                node = cfg
                for key in path[:-1]:
                    node = node[key]
                node[path[-1]] = value
            return mutate

        cases = [
            ("unknown key", set_(["certify", "sigmaa"], 0.5), "/certify/sigmaa"),
            ("wrong type", set_(["certify", "n"], "ten thousand"), "/certify/n"),
            ("sigma = 0", set_(["certify", "sigma"], 0), "/certify/sigma"),
            ("alpha = 1", set_(["certify", "alpha"], 1.0), "/certify/alpha"),
            ("alpha > 1", set_(["predict"], {"alpha": 1.5}), "/predict/alpha"),
            ("n0 = 0", set_(["certify", "n0"], 0), "/certify/n0"),
            ("unknown method", set_(["certify", "method"], "triple"), "/certify/method"),
            ("unsorted Sigma", set_(["dual", "sigma_candidates"], [0.5, 0.25, 1.0]), "/dual/sigma_candidates"),
            ("sigma <= 0 in Sigma", set_(["dual", "sigma_candidates"], [0, 0.5]), "/dual/sigma_candidates"),
            ("sigma_e below max Sigma", set_(["dual", "sigma_e"], 0.5), "/dual/sigma_e"),
            ("unsorted radii", set_(["table", "radii"], [0, 1.0, 0.5]), "/table/radii"),
            ("negative radius", set_(["table", "radii"], [-1]), "/table/radii"),
            ("unknown radius grid", set_(["table", "radii"], "svhn"), "/table/radii"),
            ("unknown figure format", set_(["plot"], {"formats": ["gif"]}), "/plot/formats"),
            ("model without arch", set_(["model"], {"num_classes": 10}), "/model"),
        ]
        for what, mutate, pointer in cases:
            with self.subTest(what):
                cfg = self.dual_config()
                mutate(cfg)
                proc = self.validate(cfg)
                self.assertEqual(proc.returncode, 2, proc.stderr)
                self.assertIn(pointer, proc.stderr)
                self.assertIn("bad.json", proc.stderr)
                self.assertEqual(proc.stdout, "")

    def test_dual_method_without_a_dual_section(self):
        cfg = small_config()
        cfg["certify"]["method"] = "dual"
        proc = self.validate(cfg)
        self.assertEqual(proc.returncode, 2)
        self.assertIn("/certify/method", proc.stderr)

    def test_every_problem_is_reported_at_once(self):
        cfg = self.dual_config()
        cfg["certify"].update({"sigma": 0, "alpha": 2, "n": 0, "extra": 1})
        proc = self.validate(cfg)
        for pointer in ("/certify/sigma", "/certify/alpha", "/certify/n", "/certify/extra"):
            self.assertIn(pointer, proc.stderr)
        self.assertEqual(len(proc.stderr.strip().splitlines()), 4, proc.stderr)
        cfg = self.dual_config()
        cfg["dual"]["sigma_candidates"] = [1.0, 0.5]
        cfg["table"]["radii"] = [1, 0]
        proc = self.validate(cfg)
        self.assertIn("/dual/sigma_candidates", proc.stderr)
        self.assertIn("/table/radii", proc.stderr)

    def test_malformed_json_and_missing_file(self):
        path = self.path("broken.json")
        with open(path, "w") as f:
            f.write('{"certify": {"sigma": 0.5,}}')
        proc = run("validate", path, check=False)
        self.assertEqual(proc.returncode, 2)
        self.assertIn("broken.json", proc.stderr)
        self.assertIn("not valid JSON", proc.stderr)
        proc = run("validate", self.path("absent.json"), check=False)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("absent.json", proc.stderr)

    def test_each_bad_job_is_rejected_with_its_pointer(self):
        self.write_json("config.json", self.dual_config())
        good = {"name": "j", "config": "config.json",
                "stages": [{"name": "a", "command": "certify", "set": {"certify": {"sigma": 0.5}}},
                           {"name": "t", "command": "table", "inputs": ["${out}/a/certify.h5"]}]}
        proc = run("validate", self.write_json("job.json", good))
        self.assertIn("valid job", proc.stdout)
        cases = [
            ("unknown command", lambda j: j["stages"][0].update(command="certfy"), "/stages/0/command"),
            ("unknown stage key", lambda j: j["stages"][0].update(sett={}), "/stages/0/sett"),
            ("missing config", lambda j: j.pop("config"), "'config'"),
            ("bad stage value", lambda j: j["stages"][0]["set"]["certify"].update(alpha=2), "/certify/alpha"),
            ("unsorted Sigma in a stage", lambda j: j["stages"][0]["set"].update(
                dual={"sigma_candidates": [1.0, 0.5]}, certify={"method": "dual"}), "/dual/sigma_candidates"),
            ("table without inputs", lambda j: j["stages"][1].pop("inputs"), "/stages/1/inputs"),
            ("unsorted table radii in a stage", lambda j: j["stages"][1].update(set={"table": {"radii": [1, 0]}}),
             "/table/radii"),
        ]
        for what, mutate, pointer in cases:
            with self.subTest(what):
                job = copy.deepcopy(good)
                mutate(job)
                proc = run("validate", self.write_json("job.json", job), check=False)
                self.assertEqual(proc.returncode, 2, proc.stderr)
                self.assertIn(pointer, proc.stderr)
        # A problem in the job's config is named with the config's file.
        bad = self.dual_config()
        bad["certify"]["alpha"] = 0
        self.write_json("config.json", bad)
        proc = run("validate", self.write_json("job.json", good), check=False)
        self.assertEqual(proc.returncode, 2)
        self.assertIn("config.json", proc.stderr)
        self.assertIn("/certify/alpha", proc.stderr)

    def test_shipped_jobs_validate_and_plan_their_figures(self):
        # Every shipped job that makes a table also plots it (the label-only Slurm job has neither).
        for job in sorted(os.listdir(os.path.join(SOURCE, "jobs"))):
            path = os.path.join(SOURCE, "jobs", job)
            if not job.endswith(".json") or not any(s["command"] == "table" for s in read_json(path)["stages"]):
                continue
            self.assertIn("valid job", run("validate", path).stdout)
            dry = run("run", path, "--out", self.path("x"), "--dry-run").stdout
            self.assertIn("plot (plot)", dry, job)
            self.assertIn("table (table)", dry, job)


if __name__ == "__main__":
    unittest.main()
