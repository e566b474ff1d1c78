#!/usr/bin/env python
"""Cosine similarity between the positional embeddings of all pairs of positions.

    python analysis/plot_posemb.py runs/ted2020/strong/checkpoints/checkpoint_best.pt -o plots/posemb.png

For each chosen side (``--side``: by default both when either side's embeddings are learned,
else the decoder's, as sinusoidal ones are one formula for both; ``encoder``, ``decoder`` or
``both`` choose) the figure shows
the similarity matrix of the first ``--positions`` positions as a heatmap, and next to it
the mean similarity as a function of the offset between two positions, which is what
explains the picture: neighbouring positions are similar and similarity falls off with
distance (for sinusoidal embeddings it depends on the offset only, so the matrix is
constant along its diagonals).

Learned embeddings are read from the checkpoint (``<side>.embed_positions.weight``);
fairseq's sinusoidal embeddings are not stored, so they are recomputed with
``SinusoidalPositionalEmbedding.get_embedding`` for the checkpoint's embedding size and
padding index, exactly as the model computes them. Position p (0-based) is row
``padding_idx + 1 + p`` in both cases, as in fairseq. Works for any fairseq transformer
checkpoint (ours or stock); loading goes through fairseq_ext.checkpoint_safety.safe_load.
"""
import argparse
import pickle
import sys
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np

from nmt_suite.analysis.figures import add_output_options, save_figure

DEFAULT_POSITIONS = 100
FAIRSEQ_PADDING_IDX = 1  # fairseq.data.Dictionary puts <pad> at index 1


@dataclass
class PositionalEmbeddings:
    side: str
    kind: str  # "learned" or "sinusoidal"
    matrix: np.ndarray  # (positions, dim), row p = position p


def load_checkpoint(path):
    """The checkpoint's state through the plugin's safe_load (refuses a checkpoint that could run code)."""
    from nmt_suite.plugin import import_fairseq

    import_fairseq()
    from fairseq_ext.checkpoint_safety import safe_load

    return safe_load(path)


def model_config(state) -> dict:
    """The model's settings from a checkpoint: cfg.model (new) or args (legacy)."""
    cfg = state.get("cfg") or {}
    model = cfg.get("model") if hasattr(cfg, "get") else None
    if model is None:
        model = state.get("args")
    if model is None:
        return {}
    return dict(vars(model)) if isinstance(model, argparse.Namespace) else dict(model)


def positional_embeddings(state, side, positions=DEFAULT_POSITIONS,
                          padding_idx=FAIRSEQ_PADDING_IDX) -> PositionalEmbeddings:
    """The first ``positions`` positional embeddings of ``side`` ('encoder' or 'decoder')."""
    weights = state["model"]
    cfg = model_config(state)
    first = padding_idx + 1
    learned_key = f"{side}.embed_positions.weight"
    if learned_key in weights:
        table = weights[learned_key].float()
        available = table.shape[0] - first
        return PositionalEmbeddings(side, "learned",
                                    table[first:first + min(positions, available)].numpy())
    if cfg.get("no_token_positional_embeddings"):
        raise ValueError("the model was trained without positional embeddings "
                         "(--no-token-positional-embeddings)")
    if cfg.get(f"{side}_learned_pos"):
        raise ValueError(f"the config says {side}_learned_pos but {learned_key} is not in the weights")
    dim = cfg.get(f"{side}_embed_dim")
    if dim is None:
        tokens_key = f"{side}.embed_tokens.weight"
        if tokens_key not in weights:
            raise ValueError(f"no {side} in this checkpoint (neither its config nor {tokens_key})")
        dim = weights[tokens_key].shape[1]
    limit = cfg.get("max_source_positions" if side == "encoder" else "max_target_positions")
    count = min(positions, limit) if limit else positions
    from fairseq.modules import SinusoidalPositionalEmbedding

    table = SinusoidalPositionalEmbedding.get_embedding(first + count, int(dim), padding_idx)
    return PositionalEmbeddings(side, "sinusoidal", table[first:].numpy())


def cosine_similarity_matrix(matrix) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float64)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    unit = matrix / np.where(norms > 0, norms, 1.0)
    return unit @ unit.T


def similarity_by_offset(similarity) -> np.ndarray:
    """Mean of ``similarity[i, i + d]`` over i, for d = 0 .. n-1."""
    n = similarity.shape[0]
    return np.array([np.diagonal(similarity, offset=d).mean() for d in range(n)])


def build_figure(embeddings):
    """One row per side: heatmap with colorbar, and mean similarity vs. offset."""
    fig, axes = plt.subplots(len(embeddings), 2, figsize=(12, 5 * len(embeddings)), squeeze=False,
                             gridspec_kw={"width_ratios": [1.15, 1]})
    for (heat_ax, curve_ax), emb in zip(axes, embeddings):
        similarity = cosine_similarity_matrix(emb.matrix)
        n, dim = emb.matrix.shape
        image = heat_ax.imshow(similarity, cmap="RdBu_r", vmin=-1, vmax=1, origin="upper",
                               interpolation="nearest")
        fig.colorbar(image, ax=heat_ax, fraction=0.046, pad=0.04, label="cosine similarity")
        heat_ax.set_title(f"{emb.side} positional embeddings ({emb.kind}, dim {dim})")
        heat_ax.set_xlabel("position")
        heat_ax.set_ylabel("position")
        by_offset = similarity_by_offset(similarity)
        curve_ax.plot(np.arange(n), by_offset, color="tab:blue")
        curve_ax.axhline(0, color="0.5", lw=0.6)
        curve_ax.set_xlabel("offset |i - j| between positions")
        curve_ax.set_ylabel("mean cosine similarity")
        curve_ax.set_title("mean similarity vs. offset")
        curve_ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", help="a fairseq transformer checkpoint (.pt)")
    add_output_options(parser)
    parser.add_argument("--side", choices=["auto", "decoder", "encoder", "both"], default="auto",
                        help="whose positional embeddings; auto (default): both when either side's are learned "
                             "(they differ), else the decoder's (sinusoidal ones are the same formula on both sides)")
    parser.add_argument("--positions", type=int, default=DEFAULT_POSITIONS,
                        help="number of positions compared (default %(default)s)")
    parser.add_argument("--padding-idx", type=int, default=FAIRSEQ_PADDING_IDX,
                        help="the dictionary's padding index (default %(default)s, fairseq's)")
    args = parser.parse_args(argv)
    if args.positions < 2:
        parser.error("--positions must be at least 2")
    try:
        state = load_checkpoint(args.checkpoint)
        embeddings = [positional_embeddings(state, side, args.positions, args.padding_idx)
                      for side in (["decoder"] if args.side == "auto" else ["encoder", "decoder"]
                                   if args.side == "both" else [args.side])]
        if args.side == "auto":
            try:
                encoder = positional_embeddings(state, "encoder", args.positions, args.padding_idx)
            except ValueError:  # a model without an encoder
                encoder = None
            if encoder is not None and "learned" in (encoder.kind, embeddings[0].kind):
                embeddings.insert(0, encoder)
    except (OSError, pickle.UnpicklingError) as err:  # UnsafeCheckpointError is an UnpicklingError
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (ValueError, KeyError, RuntimeError) as err:
        print(f"error: {args.checkpoint}: {err}", file=sys.stderr)
        return 2
    fig = build_figure(embeddings)
    for path in save_figure(fig, args.output, args.format, args.dpi):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
