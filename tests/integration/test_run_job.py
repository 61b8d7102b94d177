"""`dualrs run`: a small job end to end, resume, dry run, validation of the shipped jobs."""
import csv
import json
import os
import shutil
import unittest

import h5py

from dualrs_testlib import SOURCE, TempDirTestCase, read_json, run, small_config


class RunJobTest(TempDirTestCase):
    def make_job(self):
        cfg = small_config()
        cfg["table"] = {"radii": [0, 0.25, 0.5], "convention": "both"}
        self.write_json("config.json", cfg)
        ckpt = {"model": {"checkpoint": "${out}/base/model.pt"}}
        job = {
            "name": "tiny",
            "config": "config.json",
            "stages": [
                {"name": "base", "command": "train-base"},
                {"name": "cert_a", "command": "certify", "set": {**ckpt, "certify": {"sigma": 0.25}}},
                {"name": "cert_b", "command": "certify", "set": {**ckpt, "certify": {"sigma": 0.5}}},
                {"name": "table", "command": "table", "out": "${out}",
                 "inputs": ["${out}/cert_a/certify.h5", "${out}/cert_b/certify.h5"]},
            ],
        }
        return self.write_json("job.json", job)

    def test_job_runs_then_resumes(self):
        job = self.make_job()
        out = self.path("run")
        run("run", job, "--out", out, "--quiet")
        with open(os.path.join(out, "certified_accuracy.csv")) as f:
            rows = list(csv.DictReader(f))
        self.assertEqual({r["method"] for r in rows}, {"global_sigma_0.25", "global_sigma_0.5"})
        self.assertEqual(len(rows), 2 * 3 * 2)
        for r in rows:
            self.assertTrue(0.0 <= float(r["certified_accuracy"]) <= 1.0)
        summary = json.load(open(os.path.join(out, "job_summary.json")))
        self.assertEqual([s["name"] for s in summary["stages"]], ["base", "cert_a", "cert_b", "table"])
        mtime = os.path.getmtime(os.path.join(out, "cert_a", "certify.h5"))
        # Re-running skips every finished stage.
        proc = run("run", job, "--out", out)
        self.assertEqual(proc.stderr.count("up to date, skipped"), 4, proc.stderr)
        self.assertEqual(mtime, os.path.getmtime(os.path.join(out, "cert_a", "certify.h5")))
        dry = run("run", job, "--out", out, "--dry-run").stdout
        self.assertIn("cert_b (certify) [up to date]", dry)
        # Changing one stage re-runs it and what follows it, not what comes before.
        changed = json.load(open(job))
        changed["stages"][2]["set"]["certify"]["sigma"] = 1.0
        with open(job, "w") as f:
            json.dump(changed, f)
        dry = run("run", job, "--out", out, "--dry-run").stdout
        self.assertIn("base (train-base) [up to date]", dry)
        self.assertIn("cert_a (certify) [up to date]", dry)
        self.assertNotIn("cert_b (certify) [up to date]", dry)
        self.assertNotIn("table (table) [up to date]", dry)

    def test_a_retrained_model_at_the_same_path_is_never_certified_with_old_shards(self):
        # The base model is retrained (another seed) into the same file: cert_a's config text is
        # unchanged, but its shards were made with the old weights. They must be set aside and
        # the results must equal those of a fresh run of the changed job.
        job = self.make_job()
        out = self.path("run")
        run("run", job, "--out", out, "--quiet")
        changed = json.load(open(job))
        changed["stages"][0]["set"] = {"train_base": {"seed": 7}}
        with open(job, "w") as f:
            json.dump(changed, f)
        proc = run("run", job, "--out", out)
        self.assertIn("cert_a: shards of an earlier version of this stage moved to", proc.stderr)
        stale = [d for d in os.listdir(os.path.join(out, "cert_a")) if d.startswith("shards.stale-")]
        self.assertEqual(len(stale), 1, "old shards kept aside, not deleted")
        fresh = self.path("fresh")
        run("run", job, "--out", fresh, "--quiet")
        for stage in ("cert_a", "cert_b"):
            def rows(root):
                with open(os.path.join(root, stage, "certify.tsv")) as f:
                    return [line.split("\t")[:5] for line in f]  # without the time column
            self.assertEqual(rows(out), rows(fresh), stage)
        # The model file's digest is part of the recorded config.
        import hashlib
        import h5py
        with h5py.File(os.path.join(out, "cert_a", "certify.h5"), "r") as f:
            config = json.loads(f.attrs["config"])
        model = os.path.join(out, "base", "model.pt")
        with open(model, "rb") as f:
            self.assertEqual(config["input_files_sha256"][model], hashlib.sha256(f.read()).hexdigest())

    def test_a_manual_rerun_with_another_checkpoint_at_the_same_path_is_refused(self):
        job = self.make_job()
        out = self.path("run")
        run("run", job, "--out", out, "--quiet")
        cfg = self.write_json("c.json", small_config())
        model = os.path.join(out, "base", "model.pt")
        cert = self.path("cert")
        run("certify", "-c", cfg, "-o", cert, "--checkpoint", model, "--quiet")
        # Another model into the same file, then the same command again.
        run("train-base", "-c", cfg, "-o", self.path("other"), "--seed", "9", "--quiet")
        shutil.copyfile(self.path("other", "model.pt"), model)
        proc = run("certify", "-c", cfg, "-o", cert, "--checkpoint", model, check=False)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("holds shards of another config", proc.stderr)

    def test_invalid_stage_config_is_reported_before_any_work(self):
        job = json.load(open(self.make_job()))
        job["stages"][2]["set"]["certify"]["alpha"] = 2
        path = self.write_json("job.json", job)
        proc = run("run", path, "--out", self.path("run"), check=False)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("/stages/2", proc.stderr)
        self.assertIn("/certify/alpha", proc.stderr)
        self.assertFalse(os.path.exists(self.path("run", "base")))

    def test_shipped_jobs_and_configs_validate(self):
        shipped = [os.path.join(folder, name) for folder in ("jobs", "jobs/ablations", "configs")
                   for name in sorted(os.listdir(os.path.join(SOURCE, folder))) if name.endswith(".json")]
        for rel in ("jobs/mnist_dual_rs.json", "jobs/cifar10_dual_rs.json", "jobs/imagenet_dual_rs.json",
                    "configs/cifar10_dual.json", "configs/imagenet_dual.json",
                    "jobs/mnist_denoised_dual_rs.json", "configs/mnist_denoised.json",
                    "jobs/imagenet_labels_128gpu.json", "configs/imagenet_labels.json"):
            self.assertIn(rel, shipped)
        for rel in shipped:
            proc = run("validate", os.path.join(SOURCE, rel))
            self.assertIn("valid", proc.stdout)
        dry = run("run", os.path.join(SOURCE, "jobs", "mnist_standard_rs.json"), "--out", self.path("x"),
                  "--dry-run").stdout
        self.assertIn("train_base (train-base)", dry)
        self.assertIn("table (table)", dry)

    def plan(self, job):
        """Stage name -> the plan lines under it, and the totals block."""
        dry = run("run", os.path.join(SOURCE, "jobs", job), "--out", self.path("plan"), "--dry-run").stdout
        stages, current = {}, None
        for line in dry.splitlines()[1:]:
            if line.startswith("  ") and not line.startswith("       "):
                current = line.split(". ", 1)[1].split(" (")[0] if ". " in line else "totals"
                stages[current] = []
            elif current is not None:
                stages[current].append(line.strip())
        return stages

    def test_paper_jobs_dry_run_counts_forward_passes_without_the_data(self):
        # The paper's settings reach the plan: Sigma, n0 + n, N, epochs, m, examples.
        cifar = self.plan("cifar10_dual_rs.json")
        self.assertEqual(list(cifar)[:4], ["label", "train_estimator", "estimate_sigma", "finetune"])
        self.assertIn("classifier: 50,000 examples x |Sigma| 3 x N 100 = 15,000,000 forwards", cifar["label"][0])
        self.assertIn("estimator training: 50,000 examples x epochs 90 x m 2 = at most 9,000,000",
                      cifar["train_estimator"][0])
        self.assertIn("classifier training: 50,000 examples x epochs 15 = 750,000", cifar["finetune"][0])
        for sigma in ("0.25", "0.5", "1.0"):
            self.assertIn("classifier: 10,000 examples x (n0 100 + n 10,000) = 101,000,000 forwards",
                          cifar[f"certify_dds_global_sigma_{sigma}"][0])
        self.assertIn("at most 303,000,000", cifar["certify_dds_multiscale"][0])
        dual = cifar["certify_dds_dual_rs"]
        self.assertTrue(dual[0].startswith("estimator: 10,000 examples x (n0 100 + n 10,000) = 101,000,000"), dual)
        self.assertTrue(dual[1].startswith("classifier: 10,000 examples x (n0 100 + n 10,000) = at most 101,000,000"),
                        dual)
        self.assertEqual(cifar["table"], [])
        self.assertIn("classifier: 1,126,000,000", cifar["totals"])  # with the three per-sigma stages
        for sigma in ("0.25", "0.5", "1.0"):
            self.assertIn("classifier: 10,000 examples x (n0 100 + n 10,000) = 101,000,000 forwards",
                          cifar[f"certify_dds_dual_rs_classifier_sigma_{sigma}"][0])
        imagenet = self.plan("imagenet_dual_rs.json")
        self.assertIn("classifier: 1,281,167 examples x |Sigma| 2 x N 100 = 256,233,400 forwards", imagenet["label"][0])
        self.assertIn("epochs 9 x m 2", imagenet["train_estimator"][0])
        self.assertIn("classifier training: 25,624 examples x epochs 1 = 25,624", imagenet["finetune"][0])
        self.assertIn("estimator: 500 examples x (n0 100 + n 10,000) = 5,050,000", imagenet["certify_dds_dual_rs"][0])
        self.assertIn("at most 10,100,000", imagenet["certify_dds_multiscale"][0])

    def test_dual_rs_jobs_certify_both_table_2_rows(self):
        # DualRS Table 2: every Dual RS job (routing aside: it fine-tunes nothing) certifies Dual RS
        # on the base classifier (dual_rs_off_the_shelf, the global-sigma rows' classifier) and on
        # the fine-tuned one (dual_rs), and tables both, off-the-shelf first.
        for job_name, prefix in (("mnist_dual_rs.json", ""), ("mnist_denoised_dual_rs.json", "dds_"),
                                 ("cifar10_dual_rs.json", "dds_"), ("imagenet_dual_rs.json", "dds_")):
            job = read_json(os.path.join(SOURCE, "jobs", job_name))
            stages = {s["name"]: s for s in job["stages"]}
            off = stages[f"certify_{prefix}dual_rs_off_the_shelf"]["set"]
            tuned = stages[f"certify_{prefix}dual_rs"]["set"]
            base = stages[f"certify_{prefix}global_sigma_1.0"]["set"]
            self.assertEqual(off["certify"], {"method": "dual", "method_name": f"{prefix}dual_rs_off_the_shelf"}, job_name)
            self.assertEqual(off.get("model"), base.get("model"), job_name)
            self.assertIn("/finetune/model.pt", json.dumps(tuned["model"]), job_name)
            self.assertEqual(off["dual"], tuned["dual"], job_name)
            inputs = stages["table"]["inputs"]
            self.assertLess(inputs.index(f"${{out}}/certify_{prefix}dual_rs_off_the_shelf/certify.h5"),
                            inputs.index(f"${{out}}/certify_{prefix}dual_rs/certify.h5"), job_name)

    def test_dual_rs_jobs_certify_their_classifier_at_every_sigma_for_the_analyses(self):
        # DualRS §6.2: R_c* is the Dual RS classifier's best radius over Sigma on the copies Dual RS
        # draws (streams dual_rs_classifier), so Delta R_c >= 0; analyze reads those runs.
        for job_name, prefix in (("mnist_dual_rs.json", ""), ("mnist_denoised_dual_rs.json", "dds_"),
                                 ("cifar10_dual_rs.json", "dds_"), ("imagenet_dual_rs.json", "dds_"),
                                 ("mnist_dual_rs_routing.json", "")):
            job = read_json(os.path.join(SOURCE, "jobs", job_name))
            config = read_json(os.path.join(SOURCE, "jobs", job["config"]))
            stages = {s["name"]: s for s in job["stages"]}
            tuned = stages[f"certify_{prefix}dual_rs"]["set"]
            names = []
            for k, sigma in enumerate(config["dual"]["sigma_candidates"]):
                name = f"certify_{prefix}dual_rs_classifier_sigma_{sigma}"
                names.append(name)
                per_sigma = stages[name]["set"]
                self.assertEqual(per_sigma["certify"], {"method": "global", "sigma": sigma, "streams": "dual_rs_classifier"})
                if "experts" in tuned.get("dual", {}):  # routing: the expert of that sigma
                    self.assertEqual(per_sigma["model"]["checkpoint"], tuned["dual"]["experts"][k]["checkpoint"])
                else:
                    self.assertEqual(per_sigma.get("model"), tuned.get("model"), job_name)
                self.assertEqual(per_sigma.get("denoiser"), tuned.get("denoiser"), job_name)
                self.assertNotIn(f"${{out}}/{name}/certify.h5", stages["table"]["inputs"])
            self.assertEqual(stages["analyze"]["inputs"], [f"${{out}}/{n}/certify.h5" for n in names]
                             + [f"${{out}}/certify_{prefix}dual_rs/certify.h5"], job_name)
            dry = run("run", os.path.join(SOURCE, "jobs", job_name), "--out", self.path("p"), "--dry-run").stdout
            for name in names:
                self.assertIn(name, dry)

    def rounds_job(self, rounds, job_name="mnist_dual_rs.json"):
        """The shipped job on a copy of its config with /dual/rounds = rounds (paths made absolute)."""
        job = read_json(os.path.join(SOURCE, "jobs", job_name))
        config_path = os.path.normpath(os.path.join(SOURCE, "jobs", job["config"]))
        config = read_json(config_path)
        base = os.path.dirname(config_path)
        for key in ("images", "labels"):
            config["dataset"][key] = os.path.join(base, config["dataset"][key])
        config["dataset"]["splits"] = {k: os.path.join(base, v) for k, v in config["dataset"]["splits"].items()}
        config["dual"]["rounds"] = rounds
        job["config"] = self.write_json(f"config_{rounds}.json", config)
        return self.write_json(f"job_{rounds}.json", job)

    def emitted(self, job, out, plan):
        """Stage name -> its resolved config, in the plan's order."""
        run("run", job, "--out", out, "--emit-plan", plan)
        with open(os.path.join(plan, "plan.tsv")) as f:
            rows = [line.rstrip("\n").split("\t") for line in f if not line.startswith("#")]
        return {r[1]: read_json(os.path.join(plan, f"{int(r[0]):02d}-{r[1]}.config.json")) for r in rows}

    def test_rounds_repeat_the_training_round_and_rewire_the_fine_tuned_rows(self):
        # DualRS 5.2.2 / E.2: /dual/rounds = 2 repeats label -> estimator -> sigma estimates ->
        # fine-tuning with the fine-tuned classifier; the dual_rs rows use the last round.
        out = self.path("r")
        plan = self.emitted(self.rounds_job(2), out, self.path("plan2"))
        names = list(plan)
        self.assertEqual(names[:9], ["train_base", "label", "train_estimator", "estimate_sigma", "finetune",
                                     "label_round2", "train_estimator_round2", "estimate_sigma_round2",
                                     "finetune_round2"])
        folder = lambda name, file: os.path.join(out, name, file)  # noqa: E731
        self.assertEqual(plan["label"]["model"]["checkpoint"], folder("train_base", "model.pt"))
        self.assertEqual(plan["label_round2"]["model"]["checkpoint"], folder("finetune", "model.pt"))
        self.assertEqual(plan["train_estimator_round2"]["train_estimator"]["labels"],
                         folder("label_round2", "labels.h5"))
        self.assertEqual(plan["estimate_sigma_round2"]["dual"]["estimator"]["checkpoint"],
                         folder("train_estimator_round2", "estimator.pt"))
        self.assertEqual(plan["finetune_round2"]["model"]["checkpoint"], folder("finetune", "model.pt"))
        self.assertEqual(plan["finetune_round2"]["finetune"]["estimates"],
                         folder("estimate_sigma_round2", "sigma_estimates.h5"))
        tuned = plan["certify_dual_rs"]
        self.assertEqual(tuned["model"]["checkpoint"], folder("finetune_round2", "model.pt"))
        self.assertEqual(tuned["dual"]["estimator"]["checkpoint"], folder("train_estimator_round2", "estimator.pt"))
        self.assertEqual(plan["certify_dual_rs_classifier_sigma_0.5"]["model"]["checkpoint"],
                         folder("finetune_round2", "model.pt"))
        off = plan["certify_dual_rs_off_the_shelf"]  # the base classifier and round 1's estimator
        self.assertEqual(off["model"]["checkpoint"], folder("train_base", "model.pt"))
        self.assertEqual(off["dual"]["estimator"]["checkpoint"], folder("train_estimator", "estimator.pt"))
        self.assertEqual(plan["certify_global_sigma_1.0"]["model"]["checkpoint"], folder("train_base", "model.pt"))
        # Three rounds chain on; one round is the job as written.
        plan3 = self.emitted(self.rounds_job(3), out, self.path("plan3"))
        self.assertEqual(plan3["label_round3"]["model"]["checkpoint"], folder("finetune_round2", "model.pt"))
        self.assertEqual(plan3["certify_dual_rs"]["model"]["checkpoint"], folder("finetune_round3", "model.pt"))
        plan1 = self.emitted(self.rounds_job(1), out, self.path("plan1"))
        shipped = [s["name"] for s in read_json(os.path.join(SOURCE, "jobs", "mnist_dual_rs.json"))["stages"]]
        self.assertEqual(list(plan1), shipped)
        # The same fingerprints for round 1 whatever the number of rounds (rounds is the planner's).
        stage_records = lambda p: {r: read_json(os.path.join(p, f)) for f in os.listdir(p)  # noqa: E731
                                   if f.endswith(".stage.json") for r in [f.split("-", 1)[1][:-len(".stage.json")]]}
        one, two = stage_records(self.path("plan1")), stage_records(self.path("plan2"))
        for name in ("train_base", "label", "train_estimator", "estimate_sigma", "finetune"):
            self.assertEqual(one[name]["fingerprint"], two[name]["fingerprint"], name)
        # A job without the round cannot alternate; rounds must be >= 1.
        bad = read_json(self.rounds_job(2))
        bad["stages"] = [s for s in bad["stages"] if s["command"] != "finetune"]
        proc = run("run", self.write_json("bad.json", bad), "--out", out, "--dry-run", check=False)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("/dual/rounds", proc.stderr)
        zero = read_json(self.rounds_job(2))
        config = read_json(zero["config"])
        config["dual"]["rounds"] = 0
        zero["config"] = self.write_json("zero_config.json", config)
        proc = run("run", self.write_json("zero.json", zero), "--out", out, "--dry-run", check=False)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("/dual/rounds", proc.stderr)

    def test_two_rounds_run_end_to_end_keeping_round_one(self):
        cfg = small_config()
        cfg["dual"] = {"sigma_candidates": [0.25, 0.5], "sigma_e": 0.5, "estimator": {"arch": "mnist_cnn"}}
        cfg["label"] = {"n": 20, "alpha": 0.001, "batch_size": 20, "seed": 0, "selection": {"split": "train", "end": 80}}
        cfg["train_estimator"] = {"epochs": 1, "batch_size": 32, "lr": 0.001}
        cfg["estimate_sigma"] = {"n": 4, "selection": {"split": "train", "end": 80}}
        cfg["finetune"] = {"epochs": 1, "batch_size": 32, "lr": 0.0005}
        base = {"model": {"checkpoint": "${out}/base/model.pt"}}
        tuned = {"model": {"checkpoint": "${out}/ft/model.pt"}}
        estimator = {"dual": {"estimator": {"arch": "mnist_cnn", "checkpoint": "${out}/est/estimator.pt"}}}
        stages = [{"name": "base", "command": "train-base"},
                  {"name": "label", "command": "label", "set": base},
                  {"name": "est", "command": "train-estimator",
                   "set": {"train_estimator": {"labels": "${out}/label/labels.h5"}}},
                  {"name": "sig", "command": "estimate-sigma", "set": estimator},
                  {"name": "ft", "command": "finetune",
                   "set": {**base, "finetune": {"estimates": "${out}/sig/sigma_estimates.h5"}}},
                  {"name": "dual", "command": "certify", "set": {**tuned, **estimator, "certify": {"method": "dual"}}}]
        job = self.write_json("job.json", {"name": "rounds", "config": self.write_json("config.json", cfg),
                                           "stages": stages})
        out = self.path("run")
        run("run", job, "--out", out, "--quiet")
        cfg["dual"]["rounds"] = 2
        self.write_json("config.json", cfg)
        dry = run("run", job, "--out", out, "--dry-run").stdout
        for name, command in (("base", "train-base"), ("label", "label"), ("est", "train-estimator"),
                              ("sig", "estimate-sigma"), ("ft", "finetune")):
            self.assertIn(f"{name} ({command}) [up to date]", dry)
        self.assertIn("label_round2 (label)", dry)
        self.assertNotIn("dual (certify) [up to date]", dry)
        run("run", job, "--out", out, "--quiet")
        summary = read_json(os.path.join(out, "job_summary.json"))
        self.assertEqual([s["name"] for s in summary["stages"]],
                         ["base", "label", "est", "sig", "ft", "label_round2", "est_round2", "sig_round2", "ft_round2",
                          "dual"])
        self.assertTrue(os.path.exists(os.path.join(out, "ft_round2", "model.pt")))
        with h5py.File(os.path.join(out, "dual", "certify.h5"), "r") as f:
            config = json.loads(f.attrs["config"])
        self.assertEqual(config["model"]["checkpoint"], os.path.join(out, "ft_round2", "model.pt"))
        self.assertEqual(config["dual"]["estimator"]["checkpoint"], os.path.join(out, "est_round2", "estimator.pt"))

    def test_ablation_family_shares_its_first_stages_and_tables_every_ablation(self):
        # DualRS 6.2 / App. E: one job per ablation in jobs/ablations/, run into one --out.
        folder = os.path.join(SOURCE, "jobs", "ablations")
        jobs = sorted(os.path.join(folder, n) for n in os.listdir(folder) if n.endswith(".json"))
        self.assertEqual([os.path.basename(j) for j in jobs],
                         ["architecture.json", "label_budget.json", "lambda.json", "loss.json", "sigma_set.json",
                          "train_subset.json"])
        first, seen = None, {}
        out = self.path("ablations")
        for path in jobs:
            job = read_json(path)
            stages = job["stages"]
            prefix = stages[:5]
            if first is None:
                first = prefix
            self.assertEqual(prefix, first, path)  # identical, so they run once for the family
            for s in stages[5:]:  # every other stage belongs to one job only
                self.assertNotIn(s["name"], seen, (path, seen.get(s["name"])))
                seen[s["name"]] = path
            by_name = {s["name"]: s for s in stages}
            analyze = [s for s in stages if s["command"] == "analyze"]
            self.assertEqual(len(analyze), 1, path)
            inputs = analyze[0]["inputs"]
            variants = [i for i in inputs if not os.path.basename(os.path.dirname(i)).startswith("reference")]
            self.assertGreaterEqual(len(variants), 2, path)
            config = read_json(os.path.join(folder, job["config"]))
            for v in variants:
                certify = by_name[os.path.basename(os.path.dirname(v))]["set"]
                self.assertEqual(certify["certify"]["method"], "dual")
                sigmas = certify.get("dual", {}).get("sigma_candidates", config["dual"]["sigma_candidates"])
                for sigma in sigmas:  # its reference runs, on its Sigma's streams
                    refs = [by_name[os.path.basename(os.path.dirname(i))] for i in inputs if i not in variants]
                    self.assertTrue(any(r["set"]["certify"]["sigma"] == sigma and
                                        r["set"].get("dual", {}).get("sigma_candidates", config["dual"]["sigma_candidates"])
                                        == sigmas for r in refs), (path, v, sigma))
            dry = run("run", path, "--out", out, "--dry-run").stdout
            self.assertIn(analyze[0]["name"] + " (analyze)", dry)
        with open(os.path.join(SOURCE, "scripts", "ablations.sh")) as f:
            self.assertIn("jobs/ablations/*.json", f.read())

    def test_paper_jobs_denoise_every_noisy_copy(self):
        # Denoised smoothing (docs/method.md §9): every certify stage of the paper jobs lists one
        # denoiser forward per classifier / estimator forward, counted here from the job's resolved
        # settings.
        for job_name, stages in (("cifar10_dual_rs.json", 9), ("imagenet_dual_rs.json", 7)):
            job = read_json(os.path.join(SOURCE, "jobs", job_name))
            config = read_json(os.path.join(SOURCE, "jobs", job["config"]))
            self.assertTrue("denoiser" in config, f"{job_name}: its config has no /denoiser")
            plan = self.plan(job_name)
            certify = [s for s in job["stages"] if s["command"] == "certify"]
            self.assertEqual(len(certify), stages, job_name)
            for stage in certify:
                self.assertTrue(stage["name"].startswith("certify_dds_"), stage["name"])
                settings = {**config["certify"], **stage["set"]["certify"]}
                selection = settings["selection"]
                examples = -(-(selection["end"] - selection["begin"]) // selection.get("skip", 1))
                per_copy = f"(n0 {settings['n0']:,} + n {settings['n']:,})"
                per_example = settings["n0"] + settings["n"]
                sigmas = len(config["dual"]["sigma_candidates"])
                # (model, per-example formula, forwards per example, "at most": depends on the outcome)
                expected = {"global": [("classifier", per_copy, per_example, False)],
                            "multiscale": [("classifier", f"|Sigma| {sigmas} x {per_copy}", sigmas * per_example, True)],
                            "dual": [("estimator", per_copy, per_example, False),
                                     ("classifier", per_copy, per_example, True)]}
                lines = plan[stage["name"]]
                models = expected[settings["method"]]
                self.assertEqual(len(lines), 2 * len(models), lines)
                for model, formula, count, at_most in models:
                    passes = f"{examples:,} examples x {formula} = " + ("at most " if at_most else "")
                    passes += f"{examples * count:,} forwards"
                    self.assertEqual(sum(line.startswith(f"{model}: {passes}") for line in lines), 1, (stage["name"], lines))
                    denoiser = [line for line in lines if line.startswith(f"denoiser: {passes}")
                                and line.endswith(f"one denoising step per {model} input")]
                    self.assertEqual(len(denoiser), 1, (stage["name"], model, lines))
        # The 128-GPU label job: one denoiser forward per vote.
        config = read_json(os.path.join(SOURCE, "configs", "imagenet_labels.json"))
        self.assertTrue("denoiser" in config, "imagenet_labels.json has no /denoiser")
        label = config["label"]
        examples = label["selection"]["end"] - label["selection"]["begin"]
        sigmas = len(config["dual"]["sigma_candidates"])
        passes = (f"{examples:,} examples x |Sigma| {sigmas} x N {label['n']:,} = "
                  f"{examples * sigmas * label['n']:,} forwards")
        lines = self.plan("imagenet_labels_128gpu.json")["label"]
        self.assertEqual(len(lines), 2, lines)
        self.assertTrue(lines[0].startswith("classifier: " + passes), lines)
        self.assertTrue(lines[1].startswith("denoiser: " + passes), lines)

    def test_dry_run_counts_splits_from_the_files_or_says_they_are_absent(self):
        root = self.path("cifar")
        os.makedirs(root)
        for name, records in (("test_batch.bin", 3), *((f"data_batch_{i}.bin", 2) for i in range(1, 6))):
            with open(os.path.join(root, name), "wb") as f:
                f.write(bytes(3073 * records))
        cfg = {"dataset": {"format": "cifar10_bin", "root": root},
               "model": {"arch": "cifar_resnet20", "num_classes": 10},
               "certify": {"n0": 10, "n": 90, "selection": {"split": "test"}},
               "train_base": {"sigma": 0.5, "epochs": 3, "selection": {"split": "train", "skip": 3}}}
        self.write_json("config.json", cfg)
        job = self.write_json("job.json", {"name": "j", "config": "config.json", "stages": [
            {"name": "base", "command": "train-base"},
            {"name": "cert", "command": "certify", "set": {"model": {"checkpoint": "${out}/base/model.pt"}}}]})
        dry = run("run", job, "--out", self.path("out"), "--dry-run").stdout
        # 3 test records; train positions 0, 3, 6, 9 of 10 records.
        self.assertIn("classifier: 3 examples x (n0 10 + n 90) = 300 forwards", dry)
        self.assertIn("classifier training: 4 examples x epochs 3 = 12 forward+backward passes", dry)
        shutil.rmtree(root)
        dry = run("run", job, "--out", self.path("out"), "--dry-run").stdout
        self.assertIn("? examples x (n0 10 + n 90) (100 forwards per example)", dry)
        self.assertIn("data absent", dry)
        self.assertIn("test_batch.bin", dry)
        self.assertIn("classifier: 0 + unknown (data absent)", dry)

if __name__ == "__main__":
    unittest.main()
