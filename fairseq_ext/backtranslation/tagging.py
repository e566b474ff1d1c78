"""Tagged back-translation (Caswell et al., 2019): synthetic sources start with a reserved
token, so the forward model can tell synthetic from real input.

The tag is a sentencepiece user-defined symbol and an entry of the joined dictionary
(INTERFACES.md: prepare_data reserves it), so it binarizes to its own id, never to
``<unk>``. At inference nothing is tagged: real input is untagged, which is what the model
saw for every real training pair.
"""
from pathlib import Path

BT_TAG = "<BT>"


class MissingTagError(ValueError):
    pass


def tag(pieces: str) -> str:
    return f"{BT_TAG} {pieces}" if pieces else BT_TAG


def strip_tag(pieces: str) -> str:
    """The sentence without a leading tag (for comparisons that must ignore it)."""
    if pieces == BT_TAG:
        return ""
    return pieces[len(BT_TAG) + 1:] if pieces.startswith(BT_TAG + " ") else pieces


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
