"""Rung configs: inheritance, per-corpus blocks, command-line overrides, down to the fairseq-train command."""
import shlex

import pytest
from conftest import REPO, cli

from fairseq_ext.pipeline.config import (
    ConfigError,
    apply_overrides,
    load_config,
    parse_override,
    to_cli_args,
)
from fairseq_ext.pipeline.run import PipelineError, _refuse_under_launcher, precision_options
from fairseq_ext.pipeline.run import main as run_main


@pytest.mark.parametrize("rung, corpus, key, expected", [
    ("strong", "ted2020", "arch", "transformer_prenorm"),
    ("strong", "demo", "arch", "transformer_prenorm_tiny"),      # per-corpus beats the rung's generic value
    ("strong", "ted2020", "update_freq", 2),                     # base.yaml's per-corpus block reaches every rung
    ("strong", "demo", "max_epoch", None),                       # per-corpus null removes a generic value
    ("boss", "demo", "arch", "transformer_prenorm_tiny"),        # inherits strong, including its corpora block
    ("postnorm", "ted2020", "arch", "transformer_postnorm"),
    ("postnorm", "demo", "arch", "transformer_postnorm"),        # child's corpus block beats the parent's
    ("postnorm", "demo", "encoder_layers", 2),
    ("simple", "ted2020", "lr_scheduler", "fixed"),
    ("medium", "ted2020", "lr_scheduler", "inverse_sqrt"),
    ("medium", "ted2020", "arch", "rnn_hw5"),                    # medium = simple's model
    ("medium", "demo", "arch", "rnn_seq2seq_tiny"),
    ("strong", "ted2020", "label_smoothing", 0.1),
    ("strong", "ted2020", "clip_norm", 1.0),
    ("strong", "ted2020", "warmup_updates", 4000),
    ("strong", "ted2020", "adam_betas", "(0.9,0.98)"),
])
def test_resolution_order(rung, corpus, key, expected):
    assert load_config(rung, corpus)["train"].get(key) == expected


@pytest.mark.parametrize("rung, corpus, key, expected", [
    ("strong", "demo", "threads", 1),
    ("simple", "demo", "threads", 1),
    ("strong", "ted2020", "threads", None),
    ("strong", "demo", "average", {"last": 2}),
    ("strong", "ted2020", "average", {"last": 5}),
])
def test_top_level_settings(rung, corpus, key, expected):
    assert load_config(rung, corpus).get(key) == expected


def test_every_rung_resolves_for_every_corpus():
    for rung in ("simple", "medium", "strong", "boss", "postnorm"):
        for corpus in ("ted2020", "ted-lowres", "demo", "local"):
            cfg = load_config(rung, corpus)
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
])
def test_bad_input_exits_non_zero_with_a_message(tmp_path, capsys, argv, message):
    if "--rung" not in argv:
        argv = ["--rung", "strong", *argv]
    assert run_main(["--dry-run", "--runs-dir", str(tmp_path), *argv]) == 1
    assert message in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
