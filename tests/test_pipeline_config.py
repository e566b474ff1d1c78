"""Rung configs: inheritance, per-corpus blocks, command-line overrides, down to the fairseq-train command."""
import shlex

import pytest
from conftest import REPO, cli

from nmt_suite.backtranslation.boss import BossPipeline
from nmt_suite.rungs.config import (
    ConfigError,
    apply_overrides,
    load_config,
    parse_override,
    to_cli_args,
)
from nmt_suite.rungs.run import PipelineError, _refuse_under_launcher, empty_run_dir, precision_options
from nmt_suite.rungs.run import main as run_main


def _load(rung, corpus):
    """As the rung's script loads it: the boss rung's pipeline reads a backtranslation section too."""
    return load_config(rung, corpus, extra_sections=BossPipeline.SECTIONS if rung == "boss" else None)


def test_a_section_no_stage_of_this_pipeline_reads_is_refused():
    with pytest.raises(ConfigError, match="boss.yaml: section 'backtranslation' is read by scripts/run_boss.sh"):
        load_config("boss", "demo")  # run_rung.sh boss would ignore back-translation: run_boss.sh reads it


@pytest.mark.parametrize("rung, corpus, key, expected", [
    ("strong", "ted2020", "arch", "transformer_prenorm"),
    ("strong", "demo", "arch", "transformer_prenorm_tiny"),      # per-corpus beats the rung's generic value
    ("strong", "ted2020", "update_freq", 2),                     # base.yaml's per-corpus block reaches every rung
    ("strong", "demo", "max_epoch", None),                       # per-corpus null removes a generic value
    ("boss", "demo", "arch", "transformer_prenorm_tiny"),        # inherits strong, including its corpora block
    ("postnorm", "ted2020", "arch", "transformer_postnorm"),
    ("postnorm", "demo", "arch", "transformer_postnorm_tiny"),   # child's corpus block beats the parent's
    ("postnorm", "ted-lowres", "arch", "transformer_postnorm_tiny"),
    ("postnorm", "ted-lowres", "dropout", 0.1),                  # the parent's corpus block, not overridden
    ("simple", "ted2020", "lr_scheduler", "fixed"),
    ("medium", "ted2020", "lr_scheduler", "inverse_sqrt"),
    ("medium", "ted2020", "arch", "rnn_hw5"),                    # medium = simple's model
    ("medium", "demo", "arch", "rnn_seq2seq_tiny"),
    ("simple", "ted-lowres", "arch", "rnn_seq2seq_small"),
    ("medium", "ted-lowres", "arch", "rnn_seq2seq_small"),      # simple's corpus block reaches its child
    ("medium", "ted-lowres", "budget_warmup", 0.1),
    ("medium", "ted-lowres", "warmup_updates", None),             # the budget's share replaces HW5's 4000
    ("decoder_only", "ted2020", "arch", "decoder_only"),
    ("decoder_only", "demo", "arch", "decoder_only_tiny"),
    ("decoder_only", "demo", "decoder_layers", 5),
    ("decoder_only", "ted-lowres", "lr", 0.003),                  # strong's recipe
    ("strong", "ted2020", "label_smoothing", 0.1),
    ("strong", "ted2020", "clip_norm", 1.0),
    ("strong", "ted2020", "warmup_updates", 4000),
    ("strong", "ted2020", "adam_betas", "(0.9,0.98)"),
])
def test_resolution_order(rung, corpus, key, expected):
    assert _load(rung, corpus)["train"].get(key) == expected


@pytest.mark.parametrize("rung, corpus, key, expected", [
    ("strong", "demo", "threads", 1),
    ("simple", "demo", "threads", 1),
    ("strong", "ted2020", "threads", None),
    ("strong", "demo", "average", {"last": 2}),
    ("strong", "ted2020", "average", {"last": 5}),
])
def test_top_level_settings(rung, corpus, key, expected):
    assert _load(rung, corpus).get(key) == expected


def test_every_rung_resolves_for_every_corpus():
    for rung in ("simple", "medium", "strong", "boss", "postnorm", "decoder_only"):
        for corpus in ("ted2020", "ted-lowres", "demo", "local"):
            cfg = _load(rung, corpus)
            assert cfg["rung"] == rung and cfg["corpus"] == corpus
            assert cfg["train"]["arch"] and cfg["generate"]["beam"] == 5


@pytest.mark.parametrize("text, keys, value", [
    ("train.lr=5e-4", ["train", "lr"], "5e-4"),
    ("train.lr=0.0005", ["train", "lr"], 0.0005),
    ("train.fp16=false", ["train", "fp16"], False),
    ("train.keep_last_epochs=null", ["train", "keep_last_epochs"], None),
    ("train.keep_last_epochs=", ["train", "keep_last_epochs"], None),
    ("average.last=1", ["average", "last"], 1),
    ("device=cpu", ["device"], "cpu"),
    ("train.adam_betas=(0.9,0.98)", ["train", "adam_betas"], "(0.9,0.98)"),
    ("prepare.zh_script=tw", ["prepare", "zh_script"], "tw"),
])
def test_parse_override(text, keys, value):
    assert parse_override(text) == (keys, value)


@pytest.mark.parametrize("text", ["train.lr", "=5", "train..lr=1", ".lr=1", "train.lr=[unclosed"])
def test_bad_override_is_refused(text):
    with pytest.raises(ConfigError, match="override"):
        parse_override(text)


def test_override_into_a_value_is_refused():
    with pytest.raises(ConfigError, match="is a value"):
        apply_overrides({"device": "cpu"}, ["device.x=1"])


def test_overrides_win_and_do_not_touch_the_files():
    before = (REPO / "configs" / "strong.yaml").read_bytes()
    cfg = load_config("strong", "demo", ["train.lr=1e-4", "train.arch=transformer_prenorm", "generate.beam=2",
                                         "train.new_option=3"])
    assert cfg["train"]["lr"] == "1e-4" and cfg["train"]["arch"] == "transformer_prenorm"
    assert cfg["generate"]["beam"] == 2 and cfg["train"]["new_option"] == 3
    assert (REPO / "configs" / "strong.yaml").read_bytes() == before


@pytest.mark.parametrize("options, args", [
    ({"lr": "5e-4"}, ["--lr", "5e-4"]),
    ({"lr": 0.0005}, ["--lr", "0.0005"]),
    ({"fp16": True}, ["--fp16"]),
    ({"fp16": False, "keep_last_epochs": None}, []),
    ({"max_tokens": 4096}, ["--max-tokens", "4096"]),
    ({"adam_betas": "(0.9,0.98)"}, ["--adam-betas", "(0.9,0.98)"]),
    ({"warmup_init_lr": 1e-07}, ["--warmup-init-lr", "1e-07"]),
    ({"tags": ["a", "b"]}, ["--tags", "a", "b"]),
])
def test_to_cli_args(options, args):
    assert to_cli_args(options) == args


def test_bad_config_files_name_the_file(tmp_path):
    (tmp_path / "broken.yaml").write_text("train: [unclosed\n")
    with pytest.raises(ConfigError, match="broken.yaml"):
        load_config(tmp_path / "broken.yaml", "demo")
    (tmp_path / "loop_a.yaml").write_text("inherit: loop_b\n")
    (tmp_path / "loop_b.yaml").write_text("inherit: loop_a\n")
    with pytest.raises(ConfigError, match="inherit cycle"):
        load_config("loop_a", "demo", config_dir=tmp_path)
    with pytest.raises(ConfigError, match="not found"):
        load_config("no_such_rung", "demo")


def test_a_custom_config_inherits_from_the_shipped_ones(tmp_path):
    (tmp_path / "mine.yaml").write_text("inherit: strong\ntrain:\n  lr: 0.0007\n")
    cfg = load_config(tmp_path / "mine.yaml", "ted2020")
    assert cfg["rung"] == "mine" and cfg["train"]["lr"] == 0.0007 and cfg["train"]["arch"] == "transformer_prenorm"


@pytest.mark.parametrize("device, precision, resolved, train, generate", [
    ("cpu", "auto", "fp32", {"cpu": True}, {"cpu": True}),
    ("cpu", "fp32", "fp32", {"cpu": True}, {"cpu": True}),
    ("cpu", "cpu-bf16", "cpu-bf16", {"cpu": True, "cpu_bf16": True}, {"cpu": True}),
    ("cuda", "auto", "fp16", {"fp16": True}, {"fp16": True}),
    ("cuda", "bf16", "bf16", {"bf16": True}, {"bf16": True}),
    ("cuda", "amp", "amp", {"amp": True}, {"fp16": True}),
    ("cuda", "fp32", "fp32", {}, {}),
])
def test_precision_options(device, precision, resolved, train, generate):
    got_resolved, got_train, got_generate = precision_options(device, precision)
    assert (got_resolved, {k: v for k, v in got_train.items() if v is not None}, got_generate) == (
        resolved, train, generate)


@pytest.mark.parametrize("device, precision", [("cpu", "fp16"), ("cpu", "bf16"), ("cuda", "cpu-bf16"),
                                               ("cpu", "half")])
def test_impossible_precision_is_refused(device, precision):
    with pytest.raises(ConfigError):
        precision_options(device, precision)


def test_pipeline_refuses_to_run_once_per_rank(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(PipelineError, match="docs/distributed.md"):
        _refuse_under_launcher()


def _train_command(stdout: str) -> list:
    line = stdout.split("# train\n", 1)[1].splitlines()[0]
    return shlex.split(line)


def test_overrides_reach_fairseq_train_through_the_shell_script(tmp_path):
    proc = cli("bash", REPO / "scripts" / "run_strong.sh", "--corpus", "demo", "--device", "cpu", "--dry-run",
               "--runs-dir", tmp_path / "runs", "--data-dir", tmp_path / "data",
               "train.lr=1e-4", "train.max_update=7", "train.clip_norm=null", "precision=cpu-bf16")
    cmd = _train_command(proc.stdout)
    assert cmd[cmd.index("--lr") + 1] == "1e-4"
    assert cmd[cmd.index("--max-update") + 1] == "7"
    assert cmd[cmd.index("--arch") + 1] == "transformer_prenorm_tiny"
    assert "--clip-norm" not in cmd and "--cpu" in cmd and "--cpu-bf16" in cmd
    assert cmd[cmd.index("--save-dir") + 1] == str(tmp_path / "runs" / "demo" / "strong" / "checkpoints")
    assert cmd[cmd.index("--user-dir") + 1] == str(REPO / "fairseq_ext")
    assert "threads 1)" in proc.stdout  # the demo's one torch thread
    assert not (tmp_path / "runs").exists()  # a dry run writes nothing


@pytest.mark.parametrize("argv, message", [
    (["train.lr"], "expected section.key=value"),
    (["--device", "cpu", "precision=fp16"], "needs CUDA"),
    (["--rung", "no_such_rung"], "config file not found"),
    (["trian.lr=1"], "override 'trian.lr=1': unknown section or setting 'trian' (did you mean 'train'?)"),
    (["average.lst=1"], "unknown key of average 'lst' (did you mean 'last'?)"),
    (["train.lrr=1"], "train.lrr: unknown fairseq-train option 'lrr' (did you mean 'lr'?)"),
    (["train.adam_betaz=(0.9,0.98)"], "did you mean 'adam_betas'?"),           # an optimizer-specific option
    (["train.encoder_layerz=2"], "did you mean 'encoder_layers'?"),             # an arch-specific option
    (["train.arch=no_such_arch"], "train.arch: fairseq-train refuses it: argument --arch"),
    (["train.max_update=many"], "train.max_update='many': must be an integer >= 0"),
    (["train.max_tokens=null"], "neither train.max_tokens nor train.batch_size is set"),
    (["generate.beam=0"], "generate.beam=0: must be an integer >= 1"),
    (["generate.beem=4"], "generate.beem: unknown fairseq-generate option 'beem' (did you mean 'beam'?)"),
    (["generate.lenpen=x"], "generate.lenpen: fairseq-generate refuses it"),
    (["train.dropout=1.5"], "train.dropout=1.5: must be a number in [0, 1)"),
    (["threads=0"], "threads=0: must be an integer >= 1"),
    (["prepare.vocab_sze=100"], "prepare.vocab_sze: unknown prepare_data.py option 'vocab_sze' (did you mean 'vocab_size'?)"),
    (["prepare.min_len=-1"], "prepare.min_len: prepare_data.py refuses it"),
    (["--corpus", "nosuch"], "unknown corpus 'nosuch': not one of ted2020, ted-lowres, demo"),
    (["--corpus", "../../victim2"], "corpus name must be a plain folder name"),
    (["rung=../../victim"], "rung name must be a plain folder name"),
    (["--corpus", "local"], "unknown corpus 'local'"),              # nothing prepared and no prepare.train
    (["--corpus", "mine", "prepare.train=x"], "prepare: prepare_data.py refuses it: --corpus local needs --train and --test"),
    (["prepare.vocab=100"], "prepare.vocab: unknown prepare_data.py option 'vocab'"),  # no abbreviations
    (["average=3"], "override 'average=3': average must be a mapping, got 3"),
    (["train.max_tokens=.inf"], "train.max_tokens=inf: must be an integer >= 1"),
    (["generate.beam=nan"], "generate.beam='nan': must be an integer >= 1"),
    (["threads=2.0"], "threads=2.0: must be an integer >= 1"),
    (["verbose=maybe"], "verbose='maybe': must be true or false"),
    (["prepare.data_dir=/tmp/elsewhere"], "prepare.data_dir: set by the pipeline"),
    (["train.save_dir=/tmp/elsewhere"], "train.save_dir: set by the pipeline"),
    (["generate.path=/tmp/x.pt"], "generate.path: set by the pipeline"),
    (["rung=bt"], "rung name 'bt' is reserved"),
    (["--rung", "boss"], "section 'backtranslation' is read by scripts/run_boss.sh, not by this script"),
])
def test_bad_input_exits_2_naming_the_culprit_and_writes_nothing(tmp_path, capsys, argv, message):
    if "--rung" not in argv:
        argv = ["--rung", "strong", *argv]
    if "--corpus" not in argv:
        argv = ["--corpus", "demo", *argv]
    assert run_main(["--dry-run", "--runs-dir", str(tmp_path / "runs"), "--data-dir", str(tmp_path / "data"),
                     *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("argv", [["--fresh", "rung=../../victim"], ["--fresh", "--corpus", "../../victim2"]])
def test_fresh_with_a_path_as_name_deletes_nothing(tmp_path, argv):
    runs = tmp_path / "a" / "b" / "runs"
    victim, victim2 = tmp_path / "a" / "b" / "victim", tmp_path / "a" / "victim2"  # where ../.. leads
    for folder in (runs / "demo", victim, victim2):
        folder.mkdir(parents=True)
        (folder / "keep.txt").write_text("x")
    proc = cli("bash", REPO / "scripts" / "run_strong.sh", "--corpus", "demo", "--runs-dir", runs,
               "--data-dir", tmp_path / "data", *argv, check=False)
    assert proc.returncode == 2 and "must be a plain folder name" in proc.stderr
    assert all((folder / "keep.txt").exists() for folder in (runs / "demo", victim, victim2))


@pytest.mark.parametrize("override", ["train.lr=0.25,0.1", "train.lr=5e-4", "train.max_tokens=null",
                                      "generate.beam=1", "threads=null"])
def test_valid_values_pass_the_checks(tmp_path, capsys, override):
    extra = ["train.batch_size=16"] if override == "train.max_tokens=null" else []
    assert run_main(["--rung", "strong", "--corpus", "demo", "--dry-run", "--runs-dir", str(tmp_path), override,
                     *extra]) == 0, capsys.readouterr().err


def test_fresh_refuses_a_run_folder_that_leads_elsewhere(tmp_path):
    runs, elsewhere = tmp_path / "runs", tmp_path / "elsewhere"
    (runs / "demo").mkdir(parents=True)
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("x")
    (runs / "demo" / "strong").symlink_to(elsewhere)
    with pytest.raises(PipelineError, match="not a run folder inside"):
        empty_run_dir(runs / "demo" / "strong", runs)
    assert (elsewhere / "keep.txt").exists()
    (runs / "demo" / "real").mkdir()
    (runs / "demo" / "real" / "f").write_text("x")
    (runs / "demo" / "real" / "link").symlink_to(elsewhere)
    empty_run_dir(runs / "demo" / "real", runs)
    assert not any((runs / "demo" / "real").iterdir()) and (elsewhere / "keep.txt").exists()


@pytest.mark.parametrize("script, argv", [
    ("run_strong.sh", ["--corpus", "demo", "--dry-run", "trian.lr=1"]),
    ("run_strong.sh", ["--corpus", "demo", "--dry-run", "train.lrr=1"]),
    ("run_strong.sh", ["--corpus", "nosuch", "--dry-run"]),
    ("run_boss.sh", ["--corpus", "demo", "--dry-run", "backtranslation.tga=true"]),
    ("run_boss.sh", ["--corpus", "demo", "--dry-run", "backtranslation.reverse_overrides=[train.lrr=1]"]),
    ("run_boss.sh", ["--corpus", "demo", "--dry-run", "backtranslation=5"]),
    ("run_boss.sh", ["--corpus", "demo", "--dry-run", "backtranslation.shards=abc"]),
    ("run_boss.sh", ["--corpus", "demo", "--dry-run", "backtranslation.reverse_overrides=5"]),
    ("run_boss.sh", ["--corpus", "demo", "--dry-run", "backtranslation.strong_rung=../x"]),
    ("run_boss.sh", ["--corpus", "demo", "--dry-run", "backtranslation.reverse_name=boss"]),
    ("run_boss.sh", ["--corpus", "demo", "--dry-run", "--name", "bt"]),
    ("run_rung.sh", []),
])
def test_scripts_exit_2_on_bad_options(tmp_path, script, argv):
    proc = cli("bash", REPO / "scripts" / script, *argv, "--runs-dir", tmp_path, check=False, timeout=60)
    assert proc.returncode == 2 and proc.stderr.strip(), proc.stderr
    assert not any(tmp_path.iterdir())


def test_run_rung_help_is_help():
    proc = cli("bash", REPO / "scripts" / "run_rung.sh", "--help")
    assert proc.stdout.startswith("usage: bash scripts/run_rung.sh RUNG") and "--verbose" in proc.stdout
