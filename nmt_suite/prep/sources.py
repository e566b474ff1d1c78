"""Where each corpus comes from: which files play the train / valid / test / mono roles.

- ``ted2020``: the ML2023 HW5 release (downloaded, resumable; or placed by hand), extracted
  into ``source/``. It has no valid set: one is split off train (seeded).
- ``ted-lowres``: the protocol of ``shared/data/README.md``.
- ``local``: aligned ``<prefix>.en``/``<prefix>.zh`` pairs or tab-separated files
  (Tatoeba ``cmn.txt``: en, zh, attribution) given on the command line.
- ``demo``: :func:`nmt_suite.demo_corpus.write_demo_corpus` into ``source/``, then local.
"""
import gzip
import shutil
import tarfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from nmt_suite.prep.download import RemoteFile
from nmt_suite.prep.errors import PrepError
from nmt_suite.prep.textio import read_pair, read_text, read_tsv_pairs

CORPORA = ("ted2020", "ted-lowres", "local", "demo")
# the shared corpora folder beside the checkout (shared/data/README.md), the default wherever it is read
SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"

TED2020_BASE_URL = "https://github.com/figisiwirf/ml2023-hw5-dataset/releases/download/v1.0.1"
TED2020_FILES = (RemoteFile("ml2023.hw5.data.tgz"), RemoteFile("ml2023.hw5.test.tgz"),
                 RemoteFile("ted_zh_corpus.deduped.gz"))
# source/<file> <- archive member; the HW5 archives' names first, then the names the HW5
# notebook renames them to (accepted so that hand-made archives of renamed files work too).
TED2020_MEMBERS = {
    "ml2023.hw5.data.tgz": {"train.en": ("raw.en", "train_dev.raw.en"), "train.zh": ("raw.zh", "train_dev.raw.zh")},
    "ml2023.hw5.test.tgz": {"test.en": ("test.en", "test.raw.en"), "test.zh": ("test.zh", "test.raw.zh")},
}
TED2020_MONO = ("ted_zh_corpus.deduped.gz", "mono.zh")

# ted-lowres: role -> file prefixes (``.en``/``.zh``) or files, relative to the shared data folder
# (shared/data/README.md); the one definition of the protocol's splits
TED_LOWRES = {
    "train": ["ted-en-zh-liangyming/valid", "ted-en-zh-liangyming/test"],
    "mono": ["ted-en-zh-liangyming/train-filtered.zh"],
    "valid": ["iwslt17-ted-zh-en/dev2010", "iwslt17-ted-zh-en/tst2010"],
    "test": [f"iwslt17-ted-zh-en/tst{year}" for year in range(2011, 2016)],
}


@dataclass(frozen=True)
class ParallelSource:
    """An aligned pair of files (``en`` and ``zh``) or one tab-separated file (``tsv``)."""
    en: Path = None
    zh: Path = None
    tsv: Path = None

    @classmethod
    def pair(cls, prefix) -> "ParallelSource":
        return cls(en=Path(f"{prefix}.en"), zh=Path(f"{prefix}.zh"))

    def load(self) -> tuple:
        if self.tsv is not None:
            tsv, en, zh = read_tsv_pairs(self.tsv)
            return en, zh, [tsv.describe()]
        en, zh = read_pair(self.en, self.zh)
        return en.lines, zh.lines, [en.describe(), zh.describe()]


@dataclass
class CorpusSpec:
    train: list
    test: list
    valid: list = None          # None: split off train
    mono: list = field(default_factory=list)


@dataclass
class Parallel:
    en: list
    zh: list
    files: list


def parallel_source(arg: str) -> ParallelSource:
    path = Path(arg)
    expected = f"expected {arg}.en and {arg}.zh, or a tab-separated file {arg}"
    if path.is_file():
        return ParallelSource(tsv=path)
    if Path(f"{arg}.en").exists() or Path(f"{arg}.zh").exists():
        return ParallelSource.pair(path)
    if path.is_dir():
        raise PrepError(f"{arg}: is a directory, not a file ({expected})")
    raise PrepError(f"{arg}: file not found ({expected})")


def mono_source(arg: str) -> Path:
    path = Path(arg)
    expected = f"expected a Chinese text file {arg} or {arg}.zh"
    if path.is_file():
        return path
    if Path(f"{arg}.zh").is_file():
        return Path(f"{arg}.zh")
    if path.is_dir():
        raise PrepError(f"{arg}: is a directory, not a file ({expected})")
    raise PrepError(f"{arg}: file not found ({expected})")


def load_parallel(sources: list) -> Parallel:
    en, zh, files = [], [], []
    for source in sources:
        e, z, described = source.load()
        en += e
        zh += z
        files += described
    return Parallel(en, zh, files)


def load_mono(paths: list) -> tuple:
    lines, files = [], []
    for path in paths:
        text = read_text(path)
        lines += text.lines
        files.append(text.describe())
    return lines, files


def ted_lowres_spec(shared: Path) -> CorpusSpec:
    if not shared.is_dir():
        raise PrepError(f"{shared}: shared data folder not found (ted-lowres needs it; see --shared-data)")
    pairs = {role: [ParallelSource.pair(shared / rel) for rel in TED_LOWRES[role]] for role in ("train", "valid", "test")}
    return CorpusSpec(**pairs, mono=[shared / rel for rel in TED_LOWRES["mono"]])


def source_dir_spec(locate, has_valid: bool, has_mono: bool) -> CorpusSpec:
    """The layout of ``source/`` (demo, ted2020); ``locate(rel)`` says where each file is now."""
    pair = lambda split: ParallelSource(en=locate(f"source/{split}.en"), zh=locate(f"source/{split}.zh"))  # noqa: E731
    return CorpusSpec(train=[pair("train")], valid=[pair("valid")] if has_valid else None, test=[pair("test")],
                      mono=[locate("source/mono.zh")] if has_mono else [])


def extract_ted2020(download_dir: Path, out_dir: Path) -> None:
    """train/test pairs from the two archives and mono.zh from the gzip, into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for archive_name, wanted in TED2020_MEMBERS.items():
        archive = download_dir / archive_name
        try:
            with tarfile.open(archive, "r:*") as tar:
                members = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}
                for out_name, candidates in wanted.items():
                    member = next((members[c] for c in candidates if c in members), None)
                    if member is None:
                        raise PrepError(f"{archive}: no member named {' or '.join(candidates)} "
                                        f"(it has: {', '.join(sorted(members)) or 'no files'})")
                    with tar.extractfile(member) as src, open(out_dir / out_name, "wb") as dst:
                        shutil.copyfileobj(src, dst)
        except (tarfile.TarError, EOFError, zlib.error, OSError) as err:
            raise PrepError(f"{archive}: not a readable .tgz archive ({err}); delete it and run again") from None
    gz_name, out_name = TED2020_MONO
    try:
        with gzip.open(download_dir / gz_name, "rb") as src, open(out_dir / out_name, "wb") as dst:
            shutil.copyfileobj(src, dst)
    except (gzip.BadGzipFile, EOFError, zlib.error, OSError) as err:
        raise PrepError(f"{download_dir / gz_name}: not a readable .gz file ({err}); delete it and run again") from None
