"""No valid or test sentence reaches the training set.

prepare_data already removes train and monolingual sentences that occur in valid/test.
Back-translation checks again, because the monolingual corpus may come from elsewhere and
the synthetic side is new text: a synthetic pair whose real (monolingual) side or whose
synthetic side equals a valid/test sentence of that language is dropped (filter reason
``leak``), and the finished, binarized training set is verified line by line before any
training starts (a hit is an error naming the file and line).

Sentences are compared by :func:`nmt_suite.tokens.sentence_key`, the suite's one notion of
"the same sentence" (prepare_data's too), so piece-segmented, cleaned and raw forms of one
sentence compare equal, and the real training data prepare_data let through passes this check.
"""
from pathlib import Path

from nmt_suite.tokens import sentence_key

HELD_OUT_SPLITS = ("valid", "test")
# Forms of a held-out sentence in a prepared corpus (spm_text/, clean/, ref/): encoded, cleaned, untouched.
HELD_OUT_FORMS = ("spm_text", "clean", "ref")


class LeakError(RuntimeError):
    pass


class HeldOutIndex:
    """The sentence keys of the valid/test sentences of each language."""

    def __init__(self, sentences_by_lang: dict):
        self.sentences = {lang: {sentence_key(s) for s in sents} - {""} for lang, sents in sentences_by_lang.items()}

    @classmethod
    def from_corpus(cls, corpus_dir: Path, langs=("en", "zh")) -> "HeldOutIndex":
        corpus_dir = Path(corpus_dir)
        found = {lang: [] for lang in langs}
        files = 0
        for form in HELD_OUT_FORMS:
            for split in HELD_OUT_SPLITS:
                for lang in langs:
                    path = corpus_dir / form / f"{split}.{lang}"
                    if path.is_file():
                        files += 1
                        found[lang].extend(path.read_text(encoding="utf-8").splitlines())
        if not files:
            raise FileNotFoundError(
                f"no valid/test text under {corpus_dir}/{{{','.join(HELD_OUT_FORMS)}}}: cannot check for leaks"
            )
        return cls(found)

    def contains(self, lang: str, text: str) -> bool:
        return sentence_key(text) in self.sentences.get(lang, ())

    def __len__(self):
        return sum(map(len, self.sentences.values()))


def verify_binarized(bin_dir: Path, split: str, src: str, tgt: str, index: HeldOutIndex) -> int:
    """Check every ``<split>{,1,2..}`` training file in ``bin_dir``; return sentences checked.

    Reads what fairseq will train on (decoded with the data's own dictionaries), each
    distinct file once (upsampling links the same real data several times).
    """
    from fairseq.data import Dictionary, data_utils, indexed_dataset

    bin_dir = Path(bin_dir)
    checked, seen_files, k = 0, set(), 0
    dictionaries = {lang: Dictionary.load(str(bin_dir / f"dict.{lang}.txt")) for lang in (src, tgt)}
    while True:
        prefix = bin_dir / f"{split}{k if k else ''}.{src}-{tgt}"
        if not indexed_dataset.dataset_exists(f"{prefix}.{src}", impl="mmap"):
            break
        for lang in (src, tgt):
            path = Path(f"{prefix}.{lang}")
            real = Path(f"{path}.bin").resolve()
            if real in seen_files:
                continue
            seen_files.add(real)
            data = data_utils.load_indexed_dataset(str(path), dictionaries[lang], "mmap")
            for i in range(len(data)):
                text = dictionaries[lang].string(data[i])
                if index.contains(lang, text):
                    raise LeakError(
                        f"{path}.bin (-> {real}) sentence {i + 1} is a valid/test sentence: {text!r}; "
                        f"nothing was trained on it"
                    )
                checked += 1
        k += 1
    if k == 0:
        raise FileNotFoundError(f"no '{split}' split for {src}-{tgt} in {bin_dir}")
    return checked
