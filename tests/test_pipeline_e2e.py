"""scripts/run_strong.sh end to end on a small generated corpus, killed mid-training and resumed.

One module-scoped run (tiny architecture, a few epochs of updates) serves every test here: run 1's
pipeline process alone is killed with SIGKILL right after the first checkpoint (its
fairseq-train must die with it), its checkpoint_last.pt is then cut in half, run 2 resumes
from the newest complete checkpoint and finishes, run 3 finds everything done. The corpus
is the demo grammar at a small size, prepared as a ``local`` corpus.
"""
import contextlib
import dataclasses
import json
import os
import re
import signal
import subprocess
import time

import pytest
import torch
from conftest import BIN, REPO, alive, child_pids, cli

from fairseq_ext.checkpoint_safety import safe_load
from nmt_suite.demo_corpus import write_demo_corpus
from nmt_suite.fairseq_output import GenerateOutputError, read_hypotheses
from nmt_suite.rungs.evaluate import in_source_order
from nmt_suite.rungs.results import ResultsSchemaError, RunResults, train_log_stats, validate_results
from nmt_suite.rungs.summarize import summarize

MAX_UPDATE, SAVE_EVERY = 160, 4  # enough updates for the tiny model to write words
# test scores the run reaches after MAX_UPDATE updates of the tiny model (chrF 4.8, BLEU 2.2): a
# broken model or scorer (empty output, hypotheses scored against the wrong lines) scores 0
MIN_TEST_CHRF, MIN_TEST_BLEU = 3.0, 1.0


def _run_args(tmp, raw):
    return [
        "bash", str(REPO / "scripts" / "run_strong.sh"), "--corpus", "local", "--device", "cpu",
        "--data-dir", str(tmp / "data"), "--runs-dir", str(tmp / "runs"),
        f"prepare.train={raw}/train", f"prepare.valid={raw}/valid", f"prepare.test={raw}/test",
        "prepare.vocab_size=400", "prepare.workers=1",
        "train.arch=transformer_prenorm_tiny", "train.max_tokens=1024", "train.max_epoch=null",
        f"train.max_update={MAX_UPDATE}", f"train.save_interval_updates={SAVE_EVERY}", "train.keep_interval_updates=2",
        "train.warmup_updates=4", "train.lr=0.003",
        "train.log_interval=1", "train.num_workers=0", "average.last=2", "generate.beam=2", "generate.max_len_b=5",
        "threads=1",
    ]


def _env():
    return {**os.environ, "PYTHONUNBUFFERED": "1", "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


def _updates(checkpoint):
    return safe_load(checkpoint)["optimizer_history"][-1]["num_updates"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("e2e")
    raw = tmp / "raw"
    write_demo_corpus(raw, seed=1, n_train=1200, n_valid=30, n_test=40, n_mono=10)
    run_dir = tmp / "runs" / "local" / "strong"
    args = _run_args(tmp, raw)

    # run 1: the pipeline (bash execs it: proc.pid) killed by SIGKILL right after the first checkpoint
    with open(tmp / "run1.out", "w") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=_env(), start_new_session=True)
    deadline, trainers = time.time() + 600, []
    saved = re.compile(rf"Saved checkpoint \S*checkpoint_1_{SAVE_EVERY}\.pt")
    try:
        while not ((run_dir / "train.log").exists() and saved.search((run_dir / "train.log").read_text())):
            if proc.poll() is not None:
                pytest.fail(f"run 1 ended ({proc.returncode}) before its first checkpoint:\n"
                            + (tmp / "run1.out").read_text()[-3000:])
            if time.time() > deadline:
                pytest.fail("no checkpoint within 600 s")
            time.sleep(0.1)
        trainers = child_pids(proc.pid)
    finally:
        proc.kill()
        proc.wait()
    deadline = time.time() + 30
    while any(alive(pid) for pid in trainers) and time.time() < deadline:
        time.sleep(0.1)
    orphans = [pid for pid in trainers if alive(pid)]
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    last = run_dir / "checkpoints" / "checkpoint_last.pt"
    killed = {"train_marker": (run_dir / ".stages" / "train.json").exists(), "updates": _updates(last),
              "results": (run_dir / "results.json").exists(), "trainers": len(trainers), "orphans": orphans}
    last.write_bytes(last.read_bytes()[:last.stat().st_size // 2])  # as a kill during a copy would leave it

    second = cli(*args)        # resumes and finishes
    third = cli(*args, "--verbose")  # everything done: stages skipped; the tools' own output shown
    return {"tmp": tmp, "raw": raw, "dir": run_dir, "data": tmp / "data" / "local", "killed": killed,
            "second": second, "third": third, "args": args,
            "results": json.loads((run_dir / "results.json").read_text())}




def _lines(path):
    return path.read_text(encoding="utf-8").split("\n")[:-1]


def test_killing_the_pipeline_kills_its_trainer(run):
    assert run["killed"]["trainers"] == 1 and run["killed"]["orphans"] == []


def test_kill_then_rerun_resumes_from_the_newest_complete_checkpoint(run):
    killed = {k: run["killed"][k] for k in ("train_marker", "updates", "results")}
    assert killed == {"train_marker": False, "updates": SAVE_EVERY, "results": False}
    assert (f"resume from checkpoint_1_{SAVE_EVERY}.pt (update {SAVE_EVERY}), the newest checkpoint that loads"
            in run["second"].stdout)
    assert (run["dir"] / "checkpoints" / "checkpoint_last.pt.broken").exists()
    log = (run["dir"] / "train.log").read_text()
    assert re.search(rf"Loaded checkpoint \S*checkpoint_last\.pt \(epoch 1 @ {SAVE_EVERY} updates\)", log)
    assert "resuming from" in run["second"].stdout
    assert run["results"]["updates"] == MAX_UPDATE == _updates(run["dir"] / "checkpoints" / "checkpoint_last.pt")
    # the gradient-norm log has each update once, none lost, none doubled across the kill
    gnorm = run["dir"] / "checkpoints" / "gnorm.jsonl"
    updates = [json.loads(line)["update"] for line in _lines(gnorm)]
    assert updates == list(range(1, MAX_UPDATE + 1))


def test_third_run_skips_every_finished_stage(run):
    out = run["third"].stdout
    for stage in ("train", "average", "generate valid", "generate test"):
        assert f"{stage}: done already" in out
    assert "fairseq-train" not in out.split("train: done already")[1]
    assert json.loads((run["dir"] / "results.json").read_text())["scores"] == run["results"]["scores"]


def test_results_json_schema(run):
    results = validate_results(run["results"])
    assert results["corpus"] == "local" and results["rung"] == "strong"
    assert results["device"] == "cpu" and results["precision"] == "fp32"
    for split in ("valid", "test"):
        assert results["scores"][split]["bleu_signature"].startswith("nrefs:1|case:mixed|eff:no|tok:zh")
        assert "nc:6" in results["scores"][split]["chrf_signature"]
    assert results["scores"]["test"]["n_sentences"] == 40
    # 30 valid sentences: fairseq's default --required-batch-size-multiple 8 would drop 6 of them
    assert results["missing_hypotheses"] == {"valid": 0, "test": 0}
    assert results["corpus_hash"] == json.loads((run["data"] / "manifest.json").read_text())["hash"]
    assert results["params"] > 100_000 and results["tokens_per_s"] > 0 and results["train_time_s"] > 0
    averaged = [run["dir"] / "checkpoints" / name for name in results["averaged_checkpoints"]]
    assert [_updates(path) for path in averaged] == [MAX_UPDATE - SAVE_EVERY, MAX_UPDATE]
    assert results["config"]["train"]["max_update"] == MAX_UPDATE
    # every field but the budget (this run has none); what the training cost is always recorded
    assert set(results) == {field.name for field in dataclasses.fields(RunResults)} - {"budget"}
    assert results["flops_per_token"] > 0 and results["train_tokens"] > 0
    assert results["train_flops"] == pytest.approx(results["flops_per_token"] * results["train_tokens"])


def test_results_record_the_checkout(run):
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode == 0:
        assert re.fullmatch(r"[0-9a-f]{40}", run["results"]["git_commit"])
        assert run["results"]["git_commit"] == head.stdout.strip()
        assert isinstance(run["results"]["git_dirty"], bool)
    else:  # a copy of the project that is no git checkout
        assert (run["results"]["git_commit"], run["results"]["git_dirty"]) == (None, None)


def test_scores_are_sacrebleus_of_the_written_hypotheses(run):
    import sacrebleu

    for split, hyp_file in (("valid", "hyp.valid.zh"), ("test", "prediction.txt")):
        hyps, refs = _lines(run["dir"] / hyp_file), _lines(run["data"] / "ref" / f"{split}.zh")
        scores = run["results"]["scores"][split]
        assert scores["bleu"] == round(sacrebleu.metrics.BLEU(tokenize="zh").corpus_score(hyps, [refs]).score, 2)
        assert scores["chrf"] == round(sacrebleu.metrics.CHRF().corpus_score(hyps, [refs]).score, 2)
    assert run["results"]["scores"]["test"]["chrf"] >= MIN_TEST_CHRF
    assert run["results"]["scores"]["test"]["bleu"] >= MIN_TEST_BLEU


@pytest.mark.parametrize("mutation, message", [
    (lambda r: r.pop("scores"), "missing key 'scores'"),
    (lambda r: r.update(params="1M"), "'params' is str"),
    (lambda r: r.update(updates=True), "'updates' is bool"),
    (lambda r: r["scores"].pop("test"), "no 'test' entry"),
    (lambda r: r["scores"]["valid"].pop("bleu"), "scores.valid.bleu"),
    (lambda r: r["scores"]["valid"].update(bleu_signature="nrefs:1|tok:13a"), "not tokenize=zh"),
    (lambda r: r["wall_time_s"].pop("total"), "no 'total'"),
])
def test_results_schema_rejects(run, mutation, message):
    results = json.loads(json.dumps(run["results"]))
    mutation(results)
    with pytest.raises(ResultsSchemaError, match=re.escape(message)):
        validate_results(results)


def test_prediction_file_has_one_line_per_test_sentence_in_source_order(run):
    n_test = len(_lines(run["data"] / "ref" / "test.en"))
    assert n_test == 40
    assert len(_lines(run["dir"] / "prediction.txt")) == n_test == run["results"]["prediction_lines"]
    assert _lines(run["dir"] / "prediction.txt") == _lines(run["dir"] / "hyp.test.zh")
    assert len(_lines(run["dir"] / "hyp.valid.zh")) == len(_lines(run["data"] / "ref" / "valid.en"))
    # fairseq-generate's ids are line numbers of the test set: S-<id> is source line <id>
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(run["data"] / "spm" / "spm.model"))
    sources = {int(line.split("\t")[0][2:]): line.split("\t")[1]
               for line in _lines(run["dir"] / "generate-test.txt") if line.startswith("S-")}
    clean = _lines(run["data"] / "clean" / "test.en")
    assert sorted(sources) == list(range(n_test))
    assert all(sp.decode_pieces(sources[i].split()) == clean[i] for i in range(n_test))


def test_hypotheses_are_put_back_in_order_and_gaps_stay_empty(run, tmp_path):
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(run["data"] / "spm" / "spm.model"))
    generated = run["dir"] / "generate-test.txt"
    full, missing = in_source_order(read_hypotheses(generated), 40, sp)
    assert missing == [] and full == _lines(run["dir"] / "hyp.test.zh")
    # drop sentence 7's hypothesis, as --skip-invalid-size-inputs-valid-test would
    holed = tmp_path / "holed.txt"
    holed.write_text("".join(line + "\n" for line in _lines(generated) if not line.startswith("H-7\t")))
    lines, missing = in_source_order(read_hypotheses(holed), 40, sp)
    assert missing == [7] and lines[7] == "" and lines[:7] == full[:7] and lines[8:] == full[8:]
    with pytest.raises(GenerateOutputError, match="outside 0..29"):
        in_source_order(read_hypotheses(generated), 30, sp)


def test_averaged_checkpoint_is_the_mean_of_the_last_two(run):
    older, newer = run["results"]["averaged_checkpoints"]
    a = safe_load(run["dir"] / "checkpoints" / older)["model"]
    b = safe_load(run["dir"] / "checkpoints" / newer)["model"]
    avg = safe_load(run["dir"] / "checkpoint_avg.pt")
    assert "last_optimizer_state" not in avg
    for name, tensor in avg["model"].items():
        if tensor.is_floating_point():
            torch.testing.assert_close(tensor, (a[name] + b[name]) / 2, rtol=1e-6, atol=1e-6)


def test_train_log_figures(run):
    stats = train_log_stats(run["dir"] / "train.log")
    assert stats["params"] == run["results"]["params"]
    assert stats["tokens_per_s"] == run["results"]["tokens_per_s"] > 0


def test_plots_are_drawn(run):
    for name in ("gnorm", "posemb", "curves"):
        assert run["results"]["plots"][name] == "ok", run["results"]["plots"][name]
        assert (run["dir"] / "plots" / f"{name}.png").stat().st_size > 0


def test_translate_sh_keeps_line_count_and_empty_lines(run):
    proc = subprocess.run(["bash", str(REPO / "scripts" / "translate.sh"), str(run["dir"]), "--device", "cpu",
                           "--beam", "2"], input="Tom bought three books yesterday.\n\n(Applause)\nCan he speak French?\n",
                          capture_output=True, text=True, env=_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.split("\n")[:-1]
    assert len(lines) == 4 and lines[1] == lines[2] == ""  # "(Applause)" is cleaned away


def test_summary_table_lists_the_run(run):
    table, problems = summarize(run["tmp"] / "runs")
    assert problems == []
    rows = [line for line in table.splitlines() if line.startswith("| local |")]
    assert len(rows) == 1 and f"| {MAX_UPDATE} |" in rows[0]
    assert f"{run['results']['scores']['test']['bleu']:.2f}" in rows[0]


def test_a_second_pipeline_on_the_same_run_dir_is_refused(run):
    import fcntl

    with open(run["dir"] / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        proc = cli(*run["args"], check=False)
    assert proc.returncode == 1 and "another pipeline (or a process it started) is still running" in proc.stderr


def test_a_prepared_corpus_is_used_by_name_without_its_files(run):
    args = [a for a in run["args"] if not a.startswith("prepare.")]
    proc = cli(*args, "--dry-run")
    assert f"(prepared already: {run['data']})" in proc.stdout


def test_rung_scripts_are_quiet_unless_verbose(run):
    out = run["second"].stdout + run["second"].stderr
    assert "[pipeline] train" in out and "test BLEU" in out
    for noise in ("| INFO |", "fairseq.tasks", "Deprecat", "num_updates"):
        assert noise not in out
    assert "num_updates" in (run["dir"] / "train.log").read_text()
    assert "[prep] binarize: up to date" in run["third"].stdout
    assert "[prep] binarize: up to date" not in out


def test_extra_test_sets_are_translated_and_scored_without_retraining(run, tmp_path):
    """extra_tests: another test set, prepared with the corpus' own model and dictionary, scored in
    results.json; the run's training is reused (a copy of the finished run, under another name)."""
    import shutil

    import sacrebleu

    from nmt_suite.rungs.compare import load_run

    copy = run["dir"].parent / "strong-ood"
    shutil.copytree(run["dir"], copy, ignore=shutil.ignore_patterns(".lock"))
    # the corpus' own valid files as an "extra" set: the same sentences must get the same translations
    args = [*run["args"], "rung=strong-ood", f"extra_tests=[demo-ood={run['raw']}/valid]"]
    proc = cli(*args)
    assert "train: done already" in proc.stdout and "generate test: done already" in proc.stdout
    assert "[pipeline] generate demo-ood" in proc.stdout
    results = json.loads((copy / "results.json").read_text())
    extra = run["data"] / "extra" / "demo-ood"
    refs = (extra / "ref" / "test.zh").read_text(encoding="utf-8").splitlines()
    assert refs == (run["raw"] / "valid.zh").read_text(encoding="utf-8").splitlines()
    hyps = (copy / "hyp.demo-ood.zh").read_text(encoding="utf-8").splitlines()
    assert len(hyps) == len(refs) == 30
    assert hyps == (copy / "hyp.valid.zh").read_text(encoding="utf-8").splitlines()
    expected = sacrebleu.corpus_bleu(hyps, [refs], tokenize="zh").score
    assert results["scores"]["demo-ood"]["bleu"] == round(expected, 2) == results["scores"]["valid"]["bleu"]
    assert results["scores"]["test"] == run["results"]["scores"]["test"]
    assert "generate_demo-ood" in results["wall_time_s"]
    # a second run does nothing new; compare_runs reads the extra split
    again = cli(*args)
    assert "generate demo-ood: done already" in again.stdout and "[prep] extra test set" not in again.stdout
    assert load_run(copy, ["demo-ood"]).hyps["demo-ood"] == hyps


@pytest.mark.parametrize("value, culprit", [
    ("[nope]", "extra_tests: unknown test set 'nope'; known: flores200-devtest"),
    ("[x=/nowhere/set]", "extra_tests: x: /nowhere/set.en not found"),
    ("[valid=/nowhere/set]", "'valid' cannot name a test set"),
    ("flores200-devtest", "extra_tests: expected a list of test set names"),
])
def test_bad_extra_tests_are_refused_before_anything_runs(run, value, culprit):
    proc = cli(*run["args"], f"extra_tests={value}", "rung=strong-bad-extra", check=False)
    assert proc.returncode == 2 and culprit in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (run["dir"].parent / "strong-bad-extra").exists()
