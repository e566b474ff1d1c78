"""nmt_suite.analysis.posemb (analysis/plot_posemb.py) on our checkpoints and on stock fairseq
transformer checkpoints."""
import math

import matplotlib.pyplot as plt
import numpy as np
import pytest
from conftest import MICRO_MODEL_ARGS, MICRO_MODEL_DIM, cli

from fairseq_ext.checkpoint_safety import safe_load
from nmt_suite.analysis import posemb as plot_posemb

SMALL = (*MICRO_MODEL_ARGS, "--max-update", "1", "--disable-validation", "--no-epoch-checkpoints")
# --data-buffer-size 0: without our plugin (fairseq_ext.loader_shutdown) stock fairseq stopped
# mid-epoch by --max-update aborts at exit while its background loader thread is collating.
STOCK_ARGS = ("--task", "translation", "--arch", "transformer", "--optimizer", "adam", "--lr", "1e-3",
              "--cpu", "--no-progress-bar", "--num-workers", "0", "--data-buffer-size", "0")


@pytest.fixture(scope="module")
def checkpoints(tiny_checkpoint, toy_bin, tmp_path_factory):
    """ours: the suite's transformer_prenorm_tiny checkpoint (translation_ext, sinusoidal, dim 128);
    stock: plain fairseq `transformer` trained without our plugin, learned decoder positions."""
    save_dir = tmp_path_factory.mktemp("posemb_stock")
    cli("fairseq-train", toy_bin, *STOCK_ARGS, *SMALL, "--decoder-learned-pos", "--save-dir", save_dir)
    return {"ours": tiny_checkpoint, "stock": save_dir / "checkpoint_last.pt"}


CASES = [("ours", "encoder", "sinusoidal", 128), ("ours", "decoder", "sinusoidal", 128),
         ("stock", "encoder", "sinusoidal", MICRO_MODEL_DIM), ("stock", "decoder", "learned", MICRO_MODEL_DIM)]


@pytest.mark.parametrize("which, side, kind, dim", CASES)
def test_similarity_matrix_symmetric_with_unit_diagonal(checkpoints, which, side, kind, dim):
    emb = plot_posemb.positional_embeddings(safe_load(checkpoints[which]), side, positions=60)
    assert emb.kind == kind and emb.matrix.shape == (60, dim)
    sim = plot_posemb.cosine_similarity_matrix(emb.matrix)
    assert np.allclose(sim, sim.T)
    assert np.allclose(np.diag(sim), 1.0)
    assert np.all(np.abs(sim) <= 1 + 1e-9)


def _analytic_sinusoid(positions, dim, padding_idx=1):
    """fairseq's (tensor2tensor) layout: [sin(t w_0..w_{h-1}), cos(t w_0..w_{h-1})], t = p + pad + 1."""
    half = dim // 2
    freqs = np.exp(-np.arange(half) * math.log(10000) / (half - 1))
    t = (np.arange(positions) + padding_idx + 1)[:, None] * freqs[None, :]
    return np.concatenate([np.sin(t), np.cos(t)], axis=1), freqs


@pytest.mark.parametrize("which, side", [("ours", "decoder"), ("stock", "encoder")])
def test_sinusoidal_matches_analytic_values(checkpoints, which, side):
    emb = plot_posemb.positional_embeddings(safe_load(checkpoints[which]), side, positions=50)
    expected, freqs = _analytic_sinusoid(50, emb.matrix.shape[1])
    assert np.allclose(emb.matrix, expected, atol=1e-5)
    # the similarity depends only on the offset: cos-sim(i, j) = mean_k cos((i - j) w_k)
    offsets = np.subtract.outer(np.arange(50), np.arange(50))
    analytic = np.cos(offsets[..., None] * freqs).mean(axis=-1)
    assert np.allclose(plot_posemb.cosine_similarity_matrix(emb.matrix), analytic, atol=1e-5)


def test_offset_curve_decreases_over_first_positions(checkpoints):
    emb = plot_posemb.positional_embeddings(safe_load(checkpoints["ours"]), "decoder", positions=100)
    curve = plot_posemb.similarity_by_offset(plot_posemb.cosine_similarity_matrix(emb.matrix))
    assert curve[0] == pytest.approx(1.0)
    first = curve[:20]
    assert np.mean(np.diff(first)) < 0 and np.polyfit(np.arange(20), first, 1)[0] < 0
    assert np.all(curve[1:20] < 1.0)


def test_cli_both_sides_one_format(checkpoints, tmp_path):
    out = tmp_path / "plots" / "posemb.png"
    assert plot_posemb.main([str(checkpoints["stock"]), "-o", str(out), "--side", "both",
                             "--positions", "40", "--format", "png"]) == 0
    assert out.read_bytes().startswith(b"\x89PNG") and not out.with_suffix(".svg").exists()
    embeddings = [plot_posemb.positional_embeddings(safe_load(checkpoints["stock"]), side, 40)
                  for side in ("encoder", "decoder")]
    fig = plot_posemb.build_figure(embeddings)
    heatmaps = [ax for ax in fig.axes if ax.images]
    assert len(heatmaps) == 2 and all(ax.images[0].get_array().shape == (40, 40) for ax in heatmaps)
    assert len(fig.axes) == 6  # 2 heatmaps + their colorbars + 2 offset curves
    plt.close(fig)


def test_missing_checkpoint_is_a_clear_error(tmp_path, capsys):
    assert plot_posemb.main([str(tmp_path / "none.pt"), "-o", str(tmp_path / "p.png")]) == 2
    assert "none.pt" in capsys.readouterr().err


@pytest.fixture(scope="module")
def learned_checkpoint(toy_bin, tmp_path_factory):
    """transformer_prenorm_tiny_learnedpos (our task) after a few updates on the toy corpus."""
    from conftest import TINY_TRAIN_ARGS

    save_dir = tmp_path_factory.mktemp("posemb_learned")
    args = list(TINY_TRAIN_ARGS)
    args[args.index("transformer_prenorm_tiny")] = "transformer_prenorm_tiny_learnedpos"
    cli("fairseq-train", toy_bin, *args, "--max-update", "5", "--save-dir", save_dir)
    return save_dir / "checkpoint_last.pt"


def test_learned_positions_are_read_per_side_and_differ_from_the_sinusoids(learned_checkpoint, checkpoints):
    state = safe_load(learned_checkpoint)
    learned = {side: plot_posemb.positional_embeddings(state, side, positions=40) for side in ("encoder", "decoder")}
    assert {emb.kind for emb in learned.values()} == {"learned"}
    assert not np.allclose(learned["encoder"].matrix, learned["decoder"].matrix)  # each side its own table
    sinusoidal = plot_posemb.positional_embeddings(safe_load(checkpoints["ours"]), "decoder", positions=40)
    assert learned["decoder"].matrix.shape == sinusoidal.matrix.shape
    assert not np.allclose(plot_posemb.cosine_similarity_matrix(learned["decoder"].matrix),
                           plot_posemb.cosine_similarity_matrix(sinusoidal.matrix), atol=0.05)


@pytest.mark.parametrize("which, titles", [
    ("learned", ["encoder positional embeddings (learned", "decoder positional embeddings (learned"]),
    ("ours", ["decoder positional embeddings (sinusoidal"]),
])
def test_default_side_draws_both_only_for_learned_positions(which, titles, learned_checkpoint, checkpoints,
                                                            tmp_path, monkeypatch):
    figures = []
    build = plot_posemb.build_figure
    monkeypatch.setattr(plot_posemb, "build_figure", lambda embeddings: figures.append(build(embeddings)) or figures[-1])
    checkpoint = learned_checkpoint if which == "learned" else checkpoints[which]
    assert plot_posemb.main([str(checkpoint), "-o", str(tmp_path / "posemb.png"), "--format", "png"]) == 0
    heatmap_titles = [ax.get_title() for ax in figures[0].axes if ax.images]
    assert [title[:len(prefix)] for title, prefix in zip(heatmap_titles, titles)] == titles
    assert len(heatmap_titles) == len(titles)
    plt.close("all")
