"""The house's rules (docs/architecture.md), checked on the tree itself.

- The suite's modules import neither torch nor fairseq nor the plugin when imported, except the
  few that exist to run models in their own process (listed, with the reason).
- Nothing runs a project file by path, and no test loads one with ``spec_from_file_location``.
- Every entry point in ``[project.scripts]`` names a ``main`` that exists.
"""
import ast
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SUITE = REPO / "nmt_suite"
HEAVY = ("torch", "fairseq", "fairseq_cli", "fairseq_ext")
# modules whose whole job is running a model in this process: importing them may load it
RUN_MODELS = {
    "nmt_suite.bench.fairseq_run": "the benchmark's fairseq process: fairseq's trainer with timers",
    "nmt_suite.bench.gnorm_tracker": "builds two fairseq Trainers in this process",
    "nmt_suite.bench.flops": "counts FLOPs with torch's FLOP counter",
    "nmt_suite.prep.fairseq_preprocess": "fairseq-preprocess itself, with a faster encode_line",
    "nmt_suite.rungs.averaging": "averages checkpoint tensors; the pipeline imports it only in its average stage",
}


def suite_modules():
    for path in sorted(SUITE.rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        if parts[-1] == "__main__":
            continue
        yield ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def heavy_imports(module: str) -> list:
    code = ("import importlib, json, sys; importlib.import_module(sys.argv[1]); "
            f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({list(HEAVY)!r}))))")
    proc = subprocess.run([sys.executable, "-c", code, module], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, f"import {module} failed:\n{proc.stderr[-2000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("module", [m for m in suite_modules() if m not in RUN_MODELS])
def test_suite_module_is_light(module):
    assert heavy_imports(module) == [], f"importing {module} loads {heavy_imports(module)}"


def test_heavy_list_is_current():
    """The exceptions exist (a renamed module must not keep an exception it no longer needs)."""
    modules = set(suite_modules())
    assert [module for module in RUN_MODELS if module not in modules] == []


def test_plugin_import_registers():
    code = ("import fairseq_ext; from fairseq.models import ARCH_MODEL_REGISTRY; from fairseq.tasks import TASK_REGISTRY; "
            "from fairseq.optim import OPTIMIZER_REGISTRY; from fairseq.criterions import CRITERION_REGISTRY; "
            "print('transformer_prenorm_tiny' in ARCH_MODEL_REGISTRY, 'translation_ext' in TASK_REGISTRY, "
            "'rnn_seq2seq' in ARCH_MODEL_REGISTRY or any(a.startswith('rnn') for a in ARCH_MODEL_REGISTRY), "
            "len(OPTIMIZER_REGISTRY) > 0, len(CRITERION_REGISTRY) > 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["True"] * 5


def test_import_fairseq_leaves_the_root_logger_as_it_was():
    # a plain import of fairseq turns the root logger to DEBUG with a stderr handler: the check can fail
    code = ("import logging, sys; root = logging.getLogger(); before = (root.level, list(root.handlers)); "
            "import nmt_suite.plugin as p; p.import_fairseq() if sys.argv[1] == 'ours' else __import__('fairseq'); "
            "print(before == (root.level, list(root.handlers)), 'fairseq.models' in sys.modules)")
    for how, expected in (("ours", ["True", "True"]), ("plain", ["False", "True"])):
        proc = subprocess.run([sys.executable, "-c", code, how], capture_output=True, text=True, cwd=REPO)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert proc.stdout.split() == expected, how


def _python_files():
    for top in ("nmt_suite", "fairseq_ext", "tests", "scripts", "analysis", "bench"):
        yield from sorted((REPO / top).rglob("*.py"))


def test_no_project_file_is_loaded_by_path():
    offenders = []
    for path in _python_files():
        if path == Path(__file__).resolve():
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in ("spec_from_file_location", "run_path"):
                offenders.append(f"{path.relative_to(REPO)}:{node.lineno}: {node.attr}")
    assert offenders == []


def _entry_point_mentions(tree):
    """Non-docstring code that names an entry-point file: ``"scripts/x.py"``, ``... / "analysis" / ...``."""
    entry_files = {p.name for top in ("scripts", "analysis", "bench") for p in (REPO / top).glob("*.py")}
    entry_files |= {p.name for p in (REPO / "scripts").glob("*.sh")} - {"run_boss.sh", "run_rung.sh"}
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef)) and node.body
                  and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div) and isinstance(node.right, ast.Constant) \
                and node.right.value in ("scripts", "analysis"):
            yield node.lineno
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            if any(node.value.endswith(f"/{name}") for name in entry_files if name.endswith(".py")):
                yield node.lineno


def test_suite_runs_no_project_file_by_path():
    """Child processes of the suite run fairseq's CLIs or ``python -m nmt_suite.…``, never a .py file of ours."""
    offenders = []
    for path in sorted(SUITE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        offenders += [f"{path.relative_to(REPO)}:{lineno}" for lineno in _entry_point_mentions(tree)]
    assert offenders == []


def test_the_path_check_can_fail():
    tree = ast.parse('import sys\ncmd = [sys.executable, str(REPO / "scripts" / "prepare_data.py")]\n'
                     'other = ["python", "analysis/plot_curves.py"]\n')
    assert sorted(set(_entry_point_mentions(tree))) == [2, 3]


def test_project_scripts_resolve():
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert len(scripts) >= 10
    for name, target in scripts.items():
        module, func = target.split(":")
        source = (REPO / Path(*module.split("."))).with_suffix(".py")
        assert source.is_file(), f"{name}: {source} missing"
        functions = {n.name for n in ast.parse(source.read_text()).body if isinstance(n, ast.FunctionDef)}
        assert func in functions, f"{name}: {module} has no {func}()"
