"""The reserved tokens of every prepared corpus and model, and the one notion of "the same sentence"."""
import re
import unicodedata

# Tagged back-translation (Caswell et al., 2019): synthetic sources start with this token. It is a
# sentencepiece user-defined symbol and an entry of the joined dictionary of every prepared corpus.
BT_TAG = "<BT>"
# pieces every sentencepiece model has besides the characters and subwords of the text
RESERVED_PIECES = ("<unk>", "<s>", "</s>", BT_TAG)
# fairseq's dictionary specials and the tag: they never belong in a translation
NOT_IN_TRANSLATIONS = frozenset({"<unk>", "<pad>", "<s>", "</s>", BT_TAG})

_NOT_ALNUM = re.compile(r"[\W_]+")  # also removes whitespace and sentencepiece's "▁"


def sentence_key(text: str) -> str:
    """What makes two sentences "the same" (for leakage and duplicates): the tag removed, Unicode
    NFKC, case folded, only letters and digits kept. A line that differs from another only in
    punctuation, spacing, case or segmentation into pieces has the same key."""
    return _NOT_ALNUM.sub("", unicodedata.normalize("NFKC", text.replace(BT_TAG, "")).casefold())
