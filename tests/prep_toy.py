"""A small en-zh corpus for the corpus-preparation tests, and helpers to run prepare_data.

The sentences come from a tiny bilingual lexicon (real Chinese, Simplified), with the noise
the cleaning and filters exist for: sound notes, full-width characters, subtitle spaces,
duplicates, an empty English side, and train pairs copied from test (leaks).
"""
import contextlib
import hashlib
import io
import random
from pathlib import Path

from nmt_suite.prep.cli import main

SUBJECTS = [("the cat", "猫"), ("the dog", "狗"), ("my teacher", "我的老师"), ("the bird", "鸟"),
            ("this child", "这个孩子"), ("the farmer", "农民"), ("our doctor", "我们的医生")]
VERBS = [("sees", "看见"), ("eats", "吃"), ("draws", "画"), ("likes", "喜欢"), ("finds", "找到")]
OBJECTS = [("a fish", "一条鱼"), ("two apples", "两个苹果"), ("the old book", "那本旧书"),
           ("a red car", "一辆红色的车"), ("the map", "地图"), ("some bread", "一些面包")]
TIMES = [("", ""), (" today", "今天"), (" yesterday", "昨天"), (" every morning", "每天早上")]


def sentence(rng: random.Random) -> tuple:
    (se, sz), (ve, vz), (oe, oz), (te, tz) = (rng.choice(x) for x in (SUBJECTS, VERBS, OBJECTS, TIMES))
    en = f"{se} {ve} {oe}{te}."
    return en[0].upper() + en[1:], f"{tz}{sz}{vz}{oz}。"


def _write(path: Path, lines: list, newline: str = "\n") -> None:
    path.write_bytes("".join(line + newline for line in lines).encode("utf-8"))


def write_toy_corpus(directory: Path, seed: int = 0, n_train: int = 1500, n_valid: int = 60, n_test: int = 60,
                     n_mono: int = 300) -> Path:
    """{train,valid,test}.{en,zh} and mono.zh under ``directory``."""
    rng = random.Random(seed)
    directory.mkdir(parents=True, exist_ok=True)
    held, splits = set(), {}
    for split, n in (("test", n_test), ("valid", n_valid)):
        pairs = []
        while len(pairs) < n:
            pair = sentence(rng)
            if pair not in held:
                held.add(pair)
                pairs.append(pair)
        splits[split] = pairs
    train = []
    while len(train) < n_train:
        pair = sentence(rng)
        if pair not in held:
            train.append(pair)
    # noise the filters must handle
    train[10] = ("", "（鼓掌）")
    train[11] = ("(Laughter) " + train[11][0], "（笑声） " + train[11][1])
    train[12] = ("Ｔｈｅ ＣＡＴ ｓｅｅｓ ａ ｆｉｓｈ．", "猫 看见 一条鱼。")
    train[13] = train[14]
    train[15] = splits["test"][0]
    train[16] = splits["valid"][0]
    mono = [sentence(rng)[1] for _ in range(n_mono)]
    mono[0] = splits["test"][1][1]
    for split, pairs in (*splits.items(), ("train", train)):
        _write(directory / f"{split}.en", [en for en, _ in pairs])
        _write(directory / f"{split}.zh", [zh for _, zh in pairs])
    _write(directory / "mono.zh", mono)
    return directory


def toy_args(raw: Path, data_dir: Path, *extra) -> list:
    return ["--corpus", "local", "--train", str(raw / "train"), "--valid", str(raw / "valid"),
            "--test", str(raw / "test"), "--mono", str(raw / "mono.zh"), "--data-dir", str(data_dir),
            "--vocab-size", "100", "--workers", "2", *map(str, extra)]


def run_prepare(argv: list) -> tuple:
    """scripts/prepare_data.py's main in this process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exit_:  # argparse errors
            code = exit_.code
    return code, out.getvalue(), err.getvalue()


def snapshot(root: Path, hidden: bool = False) -> dict:
    """relative path -> sha256 of every file under ``root`` (hidden bookkeeping files only if asked)."""
    files = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if hidden or not any(part.startswith(".") for part in Path(rel).parts):
            files[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return files
