"""Benchmark corpus preparation (``fairseq-ext-prepare``, the CLI behind scripts/prepare_data.py)
end to end on a 400k-pair corpus (target: <= 180 s on 2 cores).

The corpus is built in a temporary folder (never in the repository) by repeating the shared
TED pairs (ted-en-zh-liangyming, all splits) with a perturbation per copy, so that copies
are not exact duplicates; valid/test are the ted-lowres ones (IWSLT17), monolingual Chinese
is the TED zh side repeated and perturbed the same way. The pipeline then runs as
``--corpus local`` in a fresh process, twice: the first run builds everything, the second
must be a no-op. Prints one JSON line and a Markdown table of wall and CPU seconds per stage
(CPU seconds include sentencepiece's threads and the fairseq-preprocess workers; on a shared
machine they are the steadier figure).

    python -m nmt_suite.bench.prepare [--pairs 400000] [--mono 100000] [--zh-script keep] [--workers 2]
"""
import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from nmt_suite.bench.measure import SHARED_DATA as SHARED
from nmt_suite.prep.sources import TED_LOWRES

TED = SHARED / "ted-en-zh-liangyming"
# the console script of nmt_suite.prep.cli, installed beside this interpreter
PREPARE_CLI = "fairseq-ext-prepare"
# stages as nmt_suite.prep.prepare reports them, in pipeline order
STAGE_ORDER = ("sources", "read+validate", "clean", "spm-train", "spm-encode", "binarize", "publish")


def read(path: Path) -> list:
    return path.read_text(encoding="utf-8").split("\n")[:-1]


def _perturbed(units: list, rng: random.Random) -> list:
    """Swap two neighbouring units, drop one, or repeat one (``units``: at least 3)."""
    i = rng.randrange(len(units) - 1)
    op = rng.randrange(3)
    if op == 0:
        units[i], units[i + 1] = units[i + 1], units[i]
    elif op == 1:
        del units[i]
    else:
        units.insert(i, units[i])
    return units


def perturb_en(line: str, rng: random.Random) -> str:
    """Perturb the words of a line (a short line gets a filler word appended)."""
    words = line.split()
    if len(words) < 3:
        return line + " " + rng.choice(("indeed", "so", "well", "now"))
    return " ".join(_perturbed(words, rng))


def perturb_zh(line: str, rng: random.Random) -> str:
    """Perturb the characters of a line (a short line gets a particle appended)."""
    chars = list(line)
    if len(chars) < 3:
        return line + rng.choice("啊呢吧")
    return "".join(_perturbed(chars, rng))


def build_corpus(out: Path, pairs: int, mono: int, seed: int) -> dict:
    en, zh = [], []
    for split in ("valid", "test", "train-filtered"):
        en += read(TED / f"{split}.en")
        zh += read(TED / f"{split}.zh")
    rng = random.Random(seed)
    train_en, train_zh = [], []
    copy = 0
    while len(train_en) < pairs:
        for e, z in zip(en, zh):
            if len(train_en) == pairs:
                break
            train_en.append(e if copy == 0 else perturb_en(e, rng))
            train_zh.append(z if copy == 0 else perturb_zh(z, rng))
        copy += 1
    mono_zh = [perturb_zh(zh[i % len(zh)], rng) for i in range(mono)]
    out.mkdir(parents=True)
    (out / "train.en").write_text("\n".join(train_en) + "\n", encoding="utf-8")
    (out / "train.zh").write_text("\n".join(train_zh) + "\n", encoding="utf-8")
    if mono:
        (out / "mono.zh").write_text("\n".join(mono_zh) + "\n", encoding="utf-8")
    return {"pairs": len(train_en), "mono": len(mono_zh), "copies": copy}


def run_prepare(args, corpus_dir: Path, data_dir: Path, stats: Path) -> float:
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    prepare = shutil.which(PREPARE_CLI, path=search)
    if prepare is None:
        sys.exit(f"{PREPARE_CLI} not found: install the project (pip install -e .)")
    cmd = [prepare, "--corpus", "local", "--train", str(corpus_dir / "train"),
           *[a for rel in TED_LOWRES["valid"] for a in ("--valid", str(SHARED / rel))],
           *[a for rel in TED_LOWRES["test"] for a in ("--test", str(SHARED / rel))],
           "--data-dir", str(data_dir), "--name", "bench", "--workers", str(args.workers),
           "--zh-script", args.zh_script, "--spm-type", args.spm_type, "--stats-json", str(stats)]
    if args.mono:
        cmd += ["--mono", str(corpus_dir / "mono.zh")]
    start = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.time() - start
    if proc.returncode != 0:
        sys.exit(f"{PREPARE_CLI} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    print(proc.stdout.strip(), file=sys.stderr)
    return wall


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m nmt_suite.bench.prepare", description=__doc__.split("\n\n")[0])
    p.add_argument("--pairs", type=int, default=400_000)
    p.add_argument("--mono", type=int, default=100_000, help="monolingual zh lines (0: none)")
    p.add_argument("--zh-script", default="keep", choices=("keep", "tw", "cn"))
    p.add_argument("--spm-type", default="unigram", choices=("unigram", "bpe"))
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--keep", action="store_true", help="keep the temporary folder and print its path")
    args = p.parse_args()
    if not TED.is_dir() or not (SHARED / TED_LOWRES["test"][0]).with_suffix(".en").is_file():
        sys.exit(f"shared TED data not found under {SHARED}")
    print(f"[bench] pairs={args.pairs} mono={args.mono} zh_script={args.zh_script} spm_type={args.spm_type} "
          f"workers={args.workers} cpus={os.cpu_count()}", file=sys.stderr)
    tmp = Path(tempfile.mkdtemp(prefix="bench_prepare-"))
    try:
        start = time.time()
        built = build_corpus(tmp / "corpus", args.pairs, args.mono, args.seed)
        build_s = time.time() - start
        first = run_prepare(args, tmp / "corpus", tmp / "data", tmp / "stats1.json")
        stats = json.loads((tmp / "stats1.json").read_text())
        second = run_prepare(args, tmp / "corpus", tmp / "data", tmp / "stats2.json")
        noop = json.loads((tmp / "stats2.json").read_text())
        manifest = json.loads((tmp / "data" / "bench" / "manifest.json").read_text())
    finally:
        if args.keep:
            print(f"[bench] kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    stages = {k: round(stats["stages"][k], 2) for k in STAGE_ORDER if k in stats["stages"]}
    stages_cpu = {k: round(stats["stages_cpu"][k], 2) for k in STAGE_ORDER if k in stats["stages_cpu"]}
    inside = sum(stats["stages"].values())
    result = {
        "bench": "prepare_data", "pairs": built["pairs"], "mono": built["mono"], "workers": args.workers,
        "zh_script": args.zh_script, "spm_type": args.spm_type,
        "train_kept": manifest["counts"]["train"]["kept"], "stages_s": stages, "stages_cpu_s": stages_cpu,
        "cpu_total_s": round(sum(stages_cpu.values()), 2),
        "startup_and_exit_s": round(first - inside, 2), "total_s": round(first, 2), "target_s": 180,
        "second_run_noop": not noop["changed"], "second_run_s": round(second, 2),
        "corpus_build_s": round(build_s, 2),
    }
    print(json.dumps(result))
    print("\n| stage | wall s | CPU s |\n|---|---:|---:|")
    for stage, secs in stages.items():
        print(f"| {stage} | {secs:.1f} | {stages_cpu[stage]:.1f} |")
    print(f"| python start-up, imports, exit | {result['startup_and_exit_s']:.1f} | |")
    print(f"| **total (first run)** | **{first:.1f}** (target <= 180) | {result['cpu_total_s']:.1f} |")
    print(f"| second run (no-op: {result['second_run_noop']}) | {second:.1f} | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
