"""Importing registers everything once; a second copy (installed + --user-dir) is harmless."""
import importlib.util
import shutil
import sys

from conftest import REPO, TINY_TRAIN_ARGS, USER_DIR, cli

EXPECTED_ARCHS = [
    "transformer_prenorm", "transformer_prenorm_tiny", "transformer_prenorm_base",
    "transformer_prenorm_big", "transformer_postnorm", "transformer_postnorm_tiny", "transformer_prenorm_learnedpos",
    "transformer_prenorm_tiny_learnedpos",
]


def test_import_registers_components():
    import fairseq_ext  # noqa: F401
    from fairseq.models import ARCH_MODEL_NAME_REGISTRY
    from fairseq.tasks import TASK_REGISTRY

    assert {a: ARCH_MODEL_NAME_REGISTRY[a] for a in EXPECTED_ARCHS} == {a: "transformer" for a in EXPECTED_ARCHS}
    own = {"rnn_hw5": "rnn_seq2seq", "rnn_seq2seq_small": "rnn_seq2seq", "rnn_seq2seq_tiny": "rnn_seq2seq",
           "decoder_only": "decoder_only_nmt", "decoder_only_tiny": "decoder_only_nmt"}
    assert {a: ARCH_MODEL_NAME_REGISTRY[a] for a in own} == own
    assert TASK_REGISTRY["translation_ext"].__module__ == "fairseq_ext.tasks.translation_ext"


def test_second_copy_under_another_name_does_not_reregister(tmp_path):
    """``--user-dir`` naming a copy of the plugin under another directory name, in a process that
    already imported fairseq_ext: fairseq imports the copy's package (whose own imports resolve to
    the loaded ``fairseq_ext.*``) and then every module of its tasks/ and models/ under the copy's
    name, which registers the same components a second time."""
    copy = tmp_path / "fairseq_ext_copy"
    shutil.copytree(USER_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    code = f"""
import argparse, sys
import fairseq_ext
from fairseq import utils
from fairseq.models import ARCH_CONFIG_REGISTRY, MODEL_REGISTRY
from fairseq.tasks import TASK_REGISTRY
def registered():
    return (ARCH_CONFIG_REGISTRY["transformer_prenorm"], MODEL_REGISTRY["rnn_seq2seq"],
            TASK_REGISTRY["translation_ext"])
before = registered()
utils.import_user_module(argparse.Namespace(user_dir={str(copy)!r}))
copies = sorted(m for m in sys.modules if m.startswith("fairseq_ext_copy."))
assert "fairseq_ext_copy.tasks.translation_ext" in copies, copies  # the copy's modules ran
assert "fairseq_ext_copy.models.transformer_prenorm" in copies, copies
assert registered() == before, "a second copy replaced registered components"
print("same components")
"""
    out = cli(sys.executable, "-c", code)
    assert "same components" in out.stdout


def test_user_dir_with_installed_copy_on_path(toy_bin, tmp_path):
    """A non-editable installed copy first on sys.path plus --user-dir to the checkout."""
    site = tmp_path / "site"
    shutil.copytree(USER_DIR, site / "fairseq_ext", ignore=shutil.ignore_patterns("__pycache__"))
    out = cli("fairseq-train", toy_bin, *TINY_TRAIN_ARGS, "--max-update", "2", "--save-dir", tmp_path / "ckpt",
              "--no-save", env={"PYTHONPATH": str(site)})
    assert "Cannot register duplicate" not in out.stderr
    assert "num_updates 2" in out.stdout + out.stderr


def test_script_importing_installed_copy_then_user_dir(toy_bin, tmp_path):
    """A script imports the installed fairseq_ext, then runs fairseq-train with --user-dir=<checkout>."""
    site = tmp_path / "site"
    shutil.copytree(USER_DIR, site / "fairseq_ext", ignore=shutil.ignore_patterns("__pycache__"))
    script = tmp_path / "run.py"
    args = [str(a) for a in (toy_bin, *TINY_TRAIN_ARGS, "--max-update", "2", "--no-save",
                             "--save-dir", tmp_path / "ckpt")]
    script.write_text(
        "import sys, fairseq_ext\n"
        f"assert fairseq_ext.__file__.startswith({str(site)!r}), fairseq_ext.__file__\n"
        "from fairseq_cli.train import cli_main\n"
        f"sys.argv = ['fairseq-train', *{args!r}]\n"
        "cli_main()\n"
    )
    out = cli(sys.executable, script, env={"PYTHONPATH": str(site)})
    log = out.stdout + out.stderr
    assert "already imported" in log and "num_updates 2" in log


def test_editable_install_points_at_checkout():
    spec = importlib.util.find_spec("fairseq_ext")
    assert spec is not None and spec.origin == str(REPO / "fairseq_ext" / "__init__.py")
