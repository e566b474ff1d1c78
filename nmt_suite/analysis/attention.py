#!/usr/bin/env python
"""Attention of a trained Transformer for one sentence: which source tokens each target token reads.

    python analysis/plot_attention.py runs/demo/strong "Tom bought three books on 12 May." -o plots/attention.png

The sentence is cleaned and encoded as the run's corpus was (its sentencepiece model), translated
with beam search (``--beam``), and the translation is fed back through the decoder once per layer to
read that layer's encoder-decoder attention (fairseq's ``alignment_layer``, every head). One panel
per decoder layer: target tokens down, source tokens across, each row a distribution over the
source; ``--head N`` draws head N instead of the mean over heads. ``--json FILE`` also writes the
tokens and every layer's per-head weights. For a decoder-only model (``decoder_only_nmt``), which has
no cross-attention, the panels show each layer's self-attention of the target positions over the
source part of the sequence (``<s> source </s>``); a row's weights then sum to the share of
attention that went to the source rather than to the translation so far.

RUN is a run dir (its ``checkpoint_avg.pt`` and the corpus named in its results.json); ``--checkpoint``
and ``--data`` point elsewhere. ``--data`` is a prepared corpus (``spm/`` and ``bin/``) or a bare
fairseq data-bin folder, whose text is whitespace-tokenized. Loading goes through the plugin's safe
checkpoint loader.
"""
import argparse
import json
import pickle
import sys
from pathlib import Path

from nmt_suite.analysis.figures import add_output_options, save_figure
from nmt_suite.argparsing import OneLineErrorParser

PROG = "plot_attention"


class AttentionError(ValueError):
    """Bad input; the message names the file or option."""


def corpus_paths(run: Path, data: Path = None) -> tuple:
    """(fairseq data-bin folder, sentencepiece model or None) of a run or of ``--data``."""
    if data is None:
        results = run / "results.json"
        if not results.is_file():
            raise AttentionError(f"{results} not found: give --data (a prepared corpus or a data-bin folder)")
        data = Path(json.loads(results.read_text(encoding="utf-8"))["data_dir"])
    if (data / "bin" / "dict.en.txt").is_file():
        model = data / "spm" / "spm.model"
        return data / "bin", model if model.is_file() else None
    if (data / "dict.en.txt").is_file():
        return data, None
    raise AttentionError(f"{data}: neither a prepared corpus (bin/dict.en.txt) nor a data-bin folder (dict.en.txt)")


def source_pieces(sentence: str, spm_model) -> list:
    from nmt_suite.prep.clean import clean_en

    text = clean_en(sentence)
    if not text:
        raise AttentionError("the sentence is empty after cleaning")
    if spm_model is None:
        return text.split()
    import sentencepiece as spm

    return spm.SentencePieceProcessor(model_file=str(spm_model)).encode(text, out_type=str)


def load_model(checkpoint: Path, data_bin: Path):
    """(model in eval mode, task) from a checkpoint, through the plugin's safe loader."""
    from nmt_suite.plugin import PLUGIN_DIR, import_fairseq

    import_fairseq()
    from fairseq import checkpoint_utils, utils

    utils.import_user_module(argparse.Namespace(user_dir=str(PLUGIN_DIR)))  # also guards fairseq's loader
    models, _, task = checkpoint_utils.load_model_ensemble_and_task([str(checkpoint)],
                                                                    arg_overrides={"data": str(data_bin)})
    model = models[0].eval()
    if not hasattr(model.decoder, "layers") or not hasattr(model.decoder.layers[0], "encoder_attn"):
        raise AttentionError(f"{checkpoint}: not a Transformer (no decoder layers with attention)")
    if model.decoder.layers[0].encoder_attn is None and not is_decoder_only(model):
        raise AttentionError(f"{checkpoint}: a Transformer decoder without encoder attention that is not "
                             f"decoder_only_nmt: no attention over the source to draw")
    return model, task


def is_decoder_only(model) -> bool:
    from fairseq_ext.models.decoder_only import DecoderOnlyNMTModel

    return isinstance(model, DecoderOnlyNMTModel)


def translate(model, task, src_tokens, beam: int):
    """The best beam hypothesis' target ids (ending with </s>)."""
    from fairseq.sequence_generator import SequenceGenerator

    generator = SequenceGenerator([model], task.target_dictionary, beam_size=beam, max_len_a=1.2, max_len_b=10)
    sample = {"net_input": {"src_tokens": src_tokens, "src_lengths": src_tokens.new_tensor([src_tokens.shape[1]])}}
    return generator.generate([model], sample)[0][0]["tokens"]


def cross_attention(model, src_tokens, tgt_tokens) -> list:
    """Per decoder layer, the encoder-decoder attention weights (heads, target, source) of a teacher-forced pass.

    fairseq computes a layer's per-head weights when it is the ``alignment_layer``; a hook on that
    layer's ``encoder_attn`` keeps them (the decoder itself returns their mean over heads).
    """
    import torch

    eos = model.decoder.dictionary.eos()
    prev = torch.cat([tgt_tokens.new_tensor([eos]), tgt_tokens[:-1]]).unsqueeze(0)
    maps = []
    with torch.no_grad():
        encoder_out = model.encoder(src_tokens, src_lengths=src_tokens.new_tensor([src_tokens.shape[1]]))
        for i, layer in enumerate(model.decoder.layers):
            captured = []
            handle = layer.encoder_attn.register_forward_hook(lambda m, args, out: captured.append(out[1]))
            try:
                _, extra = model.decoder(prev, encoder_out=encoder_out, features_only=True, alignment_layer=i)
            finally:
                handle.remove()
            weights = captured[0].float()[:, 0]  # (heads, batch, tgt, src) -> (heads, tgt, src)
            maps.append(weights)
            mean = extra["attn"][0][0].float()
            if not torch.allclose(weights.mean(0), mean, atol=1e-5):
                raise RuntimeError(f"layer {i}: the captured weights do not average to fairseq's alignment")
    return maps


def source_self_attention(model, src_tokens, tgt_tokens) -> list:
    """Per layer of a decoder-only model, the self-attention weights (heads, target, source part) of a
    teacher-forced pass: the rows of the positions that predict the target tokens (the separator
    onwards), the columns of ``<s> source </s>``.

    fairseq's decoder layers call their self-attention without weights; for the pass each layer's
    call asks for them (per head), which changes what is computed, not the result. (Only the
    attention's own code path, taken when it is given a cache, returns per-head weights: it gets
    a throwaway one.)
    """
    import torch

    eos = model.decoder.dictionary.eos()
    prev = torch.cat([tgt_tokens.new_tensor([eos]), tgt_tokens[:-1]]).unsqueeze(0)
    prefix = src_tokens.shape[1] + 1  # <s> x_1 .. x_m </s>: src_tokens end with </s>
    maps = []
    with torch.no_grad():
        encoder_out = model.encoder(src_tokens, src_lengths=src_tokens.new_tensor([src_tokens.shape[1]]))
        for i, layer in enumerate(model.decoder.layers):
            captured, forward = [], layer.self_attn.forward

            def with_weights(*args, forward=forward, captured=captured, **kwargs):
                out, weights = forward(*args, **{**kwargs, "need_weights": True, "need_head_weights": True,
                                                 "incremental_state": kwargs.get("incremental_state") or {}})
                captured.append(weights)
                return out, weights

            layer.self_attn.forward = with_weights
            try:
                _, extra = model.decoder(prev, encoder_out=encoder_out, features_only=True, alignment_layer=i)
            finally:
                del layer.self_attn.forward  # the class's own method again
            weights = captured[0].float()[:, 0]  # (heads, batch, seq, seq) -> (heads, seq, seq)
            mean = extra["attn"][0][0].float()
            if not torch.allclose(weights.mean(0), mean, atol=1e-5):
                raise RuntimeError(f"layer {i}: the captured weights do not average to the decoder's")
            maps.append(weights[:, -len(tgt_tokens):, :prefix])
    return maps


def attention_for(checkpoint: Path, data_bin: Path, spm_model, sentence: str, beam: int = 5) -> dict:
    """Tokens and attention of one sentence: ``source``, ``target`` (token strings), ``translation``
    (detokenized), ``layers`` (per layer, per head, target x source weights as lists)."""
    import torch

    model, task = load_model(checkpoint, data_bin)
    pieces = source_pieces(sentence, spm_model)
    src_dict, tgt_dict = task.source_dictionary, task.target_dictionary
    src = torch.tensor([[src_dict.index(p) for p in pieces] + [src_dict.eos()]])
    tgt = translate(model, task, src, beam)
    decoder_only = is_decoder_only(model)
    maps = (source_self_attention if decoder_only else cross_attention)(model, src, tgt)
    source = [*pieces, src_dict[src_dict.eos()]]
    target = [tgt_dict[int(t)] for t in tgt]
    if spm_model is not None:
        import sentencepiece as spm

        text = spm.SentencePieceProcessor(model_file=str(spm_model)).decode_pieces(target[:-1])
    else:
        text = " ".join(target[:-1])
    return {"sentence": sentence, "source": [src_dict[src_dict.bos()], *source] if decoder_only else source,
            "target": target, "translation": text, "kind": ATTENTION_KINDS[decoder_only],
            "layers": [m.tolist() for m in maps]}


# what a panel shows: an encoder-decoder's cross-attention, or a decoder-only model's self-attention
ATTENTION_KINDS = {False: "cross-attention", True: "self-attention over the source part"}


def build_figure(found: dict, head=None):
    import matplotlib.pyplot as plt
    import numpy as np

    layers = [np.asarray(layer) for layer in found["layers"]]
    n = len(layers)
    src, tgt = found["source"], found["target"]
    width = max(4.0, 0.38 * len(src) + 2)
    fig, axes = plt.subplots(1, n, figsize=(width * n, max(3.5, 0.38 * len(tgt) + 2)), squeeze=False)
    for i, (ax, layer) in enumerate(zip(axes[0], layers)):
        weights = layer.mean(0) if head is None else layer[head]
        image = ax.imshow(weights, cmap="viridis", vmin=0, vmax=1, aspect="auto", interpolation="nearest")
        ax.set_xticks(range(len(src)), src, rotation=90, fontsize=8)
        ax.set_yticks(range(len(tgt)), tgt, fontsize=8)
        what = "mean over heads" if head is None else f"head {head}"
        ax.set_title(f"decoder layer {i + 1}: {found['kind']} ({what})", fontsize=10)
        ax.set_xlabel("source token")
        if i == 0:
            ax.set_ylabel("target token")
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig.suptitle(f"{found['sentence']}\n→ {found['translation']}", fontsize=10)
    fig.tight_layout()
    return fig


CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans CJK JP", "Source Han Sans SC", "WenQuanYi Zen Hei", "SimHei",
             "AR PL UMing CN", "Microsoft YaHei", "PingFang SC")


def chinese_font(path=None) -> dict:
    """matplotlib settings that draw Chinese tokens: the font file ``path``, else an installed CJK font;
    without one, a single warning (matplotlib's own, one per missing glyph, are silenced)."""
    import warnings

    from matplotlib import font_manager

    if path is not None:
        font_manager.fontManager.addfont(str(path))
        return {"font.sans-serif": [font_manager.FontProperties(fname=str(path)).get_name(), "DejaVu Sans"]}
    installed = {f.name for f in font_manager.fontManager.ttflist}
    for name in CJK_FONTS:
        if name in installed:
            return {"font.sans-serif": [name, "DejaVu Sans"]}
    print(f"{PROG}: warning: no Chinese font found (e.g. {CJK_FONTS[0]}); Chinese tokens are drawn as boxes. "
          f"Install one or pass --font FILE", file=sys.stderr)
    warnings.filterwarnings("ignore", message="Glyph .* missing from font", category=UserWarning)
    return {}


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(prog=PROG, description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path, help="a run dir runs/<corpus>/<rung>/")
    parser.add_argument("sentence", help="an English sentence")
    add_output_options(parser, default_help="RUN/plots/attention.png")
    parser.add_argument("--checkpoint", type=Path, help="default: RUN/checkpoint_avg.pt")
    parser.add_argument("--data", type=Path, help="a prepared corpus or data-bin folder (default: the run's corpus)")
    parser.add_argument("--head", type=int, help="draw this head (0-based) instead of the mean over heads")
    parser.add_argument("--beam", type=int, default=5, help="beam size of the translation (default %(default)s)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the tokens and weights to FILE")
    parser.add_argument("--font", type=Path, metavar="FILE", help="a font file with Chinese glyphs (default: an "
                                                                  "installed CJK font)")
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.beam < 1:
        parser.error(f"--beam must be at least 1, got {args.beam}")
    checkpoint = args.checkpoint or args.run / "checkpoint_avg.pt"
    if not checkpoint.is_file():
        parser.error(f"{checkpoint} not found")
    if args.font is not None and not args.font.is_file():
        parser.error(f"--font {args.font}: not found")
    try:
        data_bin, spm_model = corpus_paths(args.run, args.data)
        found = attention_for(checkpoint, data_bin, spm_model, args.sentence, args.beam)
        heads = len(found["layers"][0])
        if args.head is not None and not 0 <= args.head < heads:
            raise AttentionError(f"--head {args.head}: the model has heads 0..{heads - 1}")
    except AttentionError as err:
        parser.error(str(err))
    except (OSError, pickle.UnpicklingError) as err:  # UnsafeCheckpointError is an UnpicklingError
        parser.error(f"{checkpoint}: {err}")
    if args.json is not None:
        from nmt_suite.files import atomic_write_json

        atomic_write_json(args.json, found)
    import matplotlib.pyplot as plt

    print(found["translation"])
    with plt.rc_context(chinese_font(args.font)):  # drawing happens when the figure is saved, too
        fig = build_figure(found, args.head)
        for path in save_figure(fig, args.output or args.run / "plots" / "attention.png", args.format, args.dpi):
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
