"""Tagged back-translation (Caswell et al., 2019): synthetic sources start with a reserved
token, so the forward model can tell synthetic from real input.

The tag (:data:`nmt_suite.tokens.BT_TAG`) is a sentencepiece user-defined symbol and an entry
of the joined dictionary of every prepared corpus, so it binarizes to its own id, never to
``<unk>``. At inference nothing is tagged: real input is untagged, which is what the model
saw for every real training pair.
"""
from pathlib import Path

from nmt_suite.tokens import BT_TAG


class MissingTagError(ValueError):
    pass


def tag(pieces: str) -> str:
    return f"{BT_TAG} {pieces}" if pieces else BT_TAG


def require_tag_in_dictionary(dict_path: Path) -> None:
    """Fail unless the fairseq dictionary has the tag as a symbol of its own."""
    with open(dict_path, encoding="utf-8") as handle:
        for line in handle:
            if line.split(" ", 1)[0] == BT_TAG:
                return
    raise MissingTagError(
        f"{dict_path} has no entry for the back-translation tag {BT_TAG}: it would binarize to <unk>. "
        f"Re-run scripts/prepare_data.py (it reserves {BT_TAG}), or build without --tag"
    )
