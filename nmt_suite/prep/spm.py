"""The joint sentencepiece model: trained on the training split only, ``<BT>`` reserved.

Training reads a seeded sample of at most ``sample`` lines per language (all of them for
corpora that size) through ``sentence_iterator`` and writes the model through
``model_writer``, so the model bytes name no temporary path and the same inputs give the
same model. sentencepiece's unigram EM depends on its thread count, so that count is a
model option of its own (``--spm-threads``), not ``--workers``. A vocabulary size larger than
the text allows is lowered to the largest one sentencepiece accepts (a small corpus at the
default size still prepares); the sizes requested and used are recorded.
"""
import io
import random
import re
from pathlib import Path

from nmt_suite.files import atomic_write_bytes, atomic_write_lines
from nmt_suite.prep.errors import PrepError
from nmt_suite.tokens import BT_TAG, RESERVED_PIECES

MIN_VOCAB_SIZE = len(RESERVED_PIECES) + 1
SPM_TYPES = ("unigram", "bpe")
# sentencepiece's refusals of a vocabulary size: too large for the text (it states the largest
# it accepts), or too small for the characters --character-coverage requires (pieces needed,
# reserved ones included)
_TOO_LARGE = re.compile(r"Vocabulary size too high \((\d+)\)\. Please set it to a value <= (\d+)")
_TOO_SMALL = re.compile(r"Vocabulary size is smaller than required_chars\. (\d+) vs (\d+)")
# A retry at the largest accepted size succeeds at once on every corpus tried; the bound only
# stops a loop should sentencepiece keep lowering its maximum.
VOCAB_RETRIES = 3
# Unigram seed vocabulary and EM sub-iterations below sentencepiece's defaults (1M, 2):
# training is ~3x faster and the held-out segmentation length changes by <1 % (measured on
# the TED data with vocab 8000).
UNIGRAM_SPEED_OPTIONS = {"seed_sentencepiece_size": 100_000, "num_sub_iterations": 1}
# Encoding batch: bounds memory while keeping sentencepiece's thread pool busy.
ENCODE_BATCH = 50_000


def sample_lines(lines: list, limit: int, seed: int) -> list:
    """Non-empty lines; a seeded sample of ``limit`` of them (input order kept) when there are more."""
    lines = [line for line in lines if line]
    if limit and len(lines) > limit:
        keep = sorted(random.Random(seed).sample(range(len(lines)), limit))
        lines = [lines[i] for i in keep]
    return lines


def trainer_options(model_type: str, vocab_size: int, character_coverage: float, threads: int) -> dict:
    options = {
        "model_type": model_type, "vocab_size": vocab_size, "character_coverage": character_coverage,
        "user_defined_symbols": [BT_TAG], "num_threads": threads,
        # cleaning already normalised the text; NFKC would turn "，" into "," in the output
        "normalization_rule_name": "identity",
        "input_sentence_size": 0, "shuffle_input_sentence": False,
    }
    if model_type == "unigram":
        options.update(UNIGRAM_SPEED_OPTIONS)
    return options


def _train_model(sentences: list, options: dict, seed: int) -> tuple:
    """(model bytes, the options it was trained with). A vocabulary too large for the text is
    lowered to the largest size sentencepiece accepts; any other refusal is a PrepError."""
    import sentencepiece as spm

    failure = "sentencepiece training on clean/train.{en,zh} failed"
    for _ in range(VOCAB_RETRIES + 1):
        spm.set_random_generator_seed(seed)
        model = io.BytesIO()
        try:
            spm.SentencePieceTrainer.train(sentence_iterator=iter(sentences), model_writer=model,
                                           minloglevel=2, **options)
            return model.getvalue(), options
        except RuntimeError as err:
            too_large, too_small = _TOO_LARGE.search(str(err)), _TOO_SMALL.search(str(err))
            if too_small:
                needed = int(too_small.group(2))
                raise PrepError(
                    f"{failure}: --vocab-size {options['vocab_size']} is smaller than the {needed} pieces this "
                    f"training text needs ({needed - len(RESERVED_PIECES)} characters to cover at "
                    f"--character-coverage {options['character_coverage']}, plus {len(RESERVED_PIECES)} "
                    f"reserved); raise --vocab-size to at least {needed} or lower --character-coverage") from None
            if not too_large:
                raise PrepError(f"{failure}: {err}") from None
            options = {**options, "vocab_size": int(too_large.group(2))}
    raise PrepError(f"{failure}: sentencepiece kept lowering the largest vocabulary it accepts; "
                    f"set --vocab-size {options['vocab_size']} or lower")


def train(train_en: list, train_zh: list, out_dir: Path, options: dict, sample: int, seed: int) -> dict:
    """Write ``spm.model`` and ``spm.vocab`` under ``out_dir``; return what went into them,
    including the vocabulary size used (below ``options``' when the text is too small for it)."""
    import sentencepiece as spm

    sentences = sample_lines(train_en, sample, seed) + sample_lines(train_zh, sample, seed + 1)
    model_bytes, used = _train_model(sentences, options, seed)
    atomic_write_bytes(out_dir / "spm.model", model_bytes)
    processor = spm.SentencePieceProcessor(model_proto=model_bytes)
    atomic_write_lines(out_dir / "spm.vocab", (
        f"{processor.id_to_piece(i)}\t{processor.get_score(i):g}" for i in range(processor.get_piece_size())))
    if processor.piece_to_id(BT_TAG) == processor.unk_id():
        raise PrepError(f"sentencepiece model lacks the reserved symbol {BT_TAG}")
    return {"trained_on_sentences": len(sentences), "pieces": processor.get_piece_size(),
            "vocab_size": {"requested": options["vocab_size"], "used": used["vocab_size"]},
            "trainer_options": used}


def vocab_notice(info: dict):
    """The notice line for a vocabulary size lowered to fit the text, or None."""
    sizes = info["vocab_size"]
    if sizes["used"] == sizes["requested"]:
        return None
    return (f"--vocab-size {sizes['requested']:,} is more than sentencepiece can build from this training text; "
            f"using {sizes['used']:,}, the largest it accepts")


def encode_file(model_path: Path, lines: list, out_path: Path, threads: int, progress=None) -> None:
    """Space-separated pieces, one output line per input line (an empty line stays empty)."""
    import sentencepiece as spm

    processor = spm.SentencePieceProcessor(model_file=str(model_path))
    encoded = []
    for start in range(0, len(lines), ENCODE_BATCH):
        batch = lines[start:start + ENCODE_BATCH]
        encoded.extend(" ".join(pieces) for pieces in processor.encode(batch, out_type=str, num_threads=threads))
        if progress is not None:
            progress.update(len(batch))
    atomic_write_lines(out_path, encoded)
