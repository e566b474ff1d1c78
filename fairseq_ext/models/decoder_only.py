"""Decoder-only translation: one Transformer decoder reads ``<s> source </s> target </s>`` as one sequence.

Model ``decoder_only_nmt``; architectures ``decoder_only_tiny`` and ``decoder_only``, the parameter
twins of ``transformer_prenorm_tiny`` and ``transformer_prenorm`` (same width, same total parameters).

It is an encoder-decoder model to fairseq, so the translation task, fairseq-train, fairseq-generate
and fairseq-interactive work unchanged: the "encoder" only hands the source tokens on
(:class:`SourcePrefix`), and the decoder (fairseq's ``TransformerDecoder`` without encoder
attention, causal self-attention over everything) prepends them to the target prefix it is given:

* the sequence is ``<s> x_1 .. x_m <pad>.. </s> y_1 .. y_n``: the source's own end marker ``</s>``
  is the separator, so the corpus' dictionary needs no new symbol; the source's padding sits
  *between* the source and the separator, so that the separator and every target token are in
  the same column for the whole batch (beam search appends one column per step), and the first
  column is always ``<s>``, so no query ever has only padding to attend to. Positions count real
  tokens only (fairseq's ``make_positions``), so padding does not shift them.
* the outputs are those of ``</s> y_1 .. y_n``, which predict ``y_1 .. y_n </s>``: the loss is on the
  target only. ``--source-loss`` adds the language-model loss on the source (each source token
  predicts the next, the last one the separator): the outputs then cover the whole sequence and
  :meth:`DecoderOnlyNMTModel.get_targets` the source's next tokens before the target.
* incremental decoding (fairseq's beam search): the first call runs the whole prefix (source and
  separator) and caches every layer's keys and values; each later call runs only the newest
  target token. The cache is fairseq's own (``MultiheadAttention``), reordered for the beam the
  usual way.

Source and target share one embedding, so the task's two dictionaries must be the same (a joined
dictionary, as data preparation here always makes).
"""
import copy
from typing import Dict, List, Optional

import torch
from fairseq import utils
from fairseq.models import FairseqEncoder, FairseqEncoderDecoderModel
from fairseq.models.transformer import TransformerDecoder, TransformerModel, base_architecture
from torch import Tensor

from fairseq_ext._registry import register_architecture_once, register_model_once

DEFAULT_MAX_POSITIONS = 1024


class SourcePrefix(FairseqEncoder):
    """The "encoder": the source tokens, as they are, for the decoder to read first."""

    def __init__(self, dictionary, max_source_positions: int):
        super().__init__(dictionary)
        self.max_source_positions = max_source_positions

    def forward(self, src_tokens, src_lengths=None, **kwargs):
        return {"src_tokens": [src_tokens]}

    @torch.jit.export
    def reorder_encoder_out(self, encoder_out: Dict[str, List[Tensor]], new_order):
        return {"src_tokens": [encoder_out["src_tokens"][0].index_select(0, new_order)]}

    def max_positions(self):
        return self.max_source_positions


def prefix_and_source_targets(src_tokens: Tensor, pad: int, bos: int, eos: int):
    """``(prefix, source_targets)`` of fairseq's left-padded ``src_tokens`` (``.. x_1 .. x_m </s>``):
    the decoder's first columns ``<s> x_1 .. x_m <pad>.. </s>`` and what each of those columns
    but the last predicts, ``x_1 .. x_m </s> <pad>..`` (the source right-padded)."""
    body = utils.convert_padding_direction(src_tokens[:, :-1], pad, left_to_right=True)
    rows = (src_tokens.size(0), 1)
    prefix = torch.cat([src_tokens.new_full(rows, bos), body, src_tokens.new_full(rows, eos)], dim=1)
    return prefix, utils.convert_padding_direction(src_tokens, pad, left_to_right=True)


class DecoderOnlyDecoder(TransformerDecoder):
    """fairseq's Transformer decoder without encoder attention, over source prefix + target."""

    def __init__(self, args, dictionary, embed_tokens, max_target_positions: int):
        super().__init__(args, dictionary, embed_tokens, no_encoder_attn=True)
        self.source_loss = bool(getattr(args, "source_loss", False))
        self.target_positions = max_target_positions  # the sequence holds the source too

    def max_positions(self):
        return self.target_positions

    def _primed(self, incremental_state) -> bool:
        """Whether an earlier call cached the prefix (the first layer's self-attention holds keys)."""
        if incremental_state is None:
            return False
        return "prev_key" in self.layers[0].self_attn._get_input_buffer(incremental_state)

    def extract_features_scriptable(
        self,
        prev_output_tokens,
        encoder_out: Optional[Dict[str, List[Tensor]]],
        incremental_state: Optional[Dict[str, Dict[str, Optional[Tensor]]]] = None,
        full_context_alignment: bool = False,
        alignment_layer: Optional[int] = None,
        alignment_heads: Optional[int] = None,
    ):
        if alignment_layer is None:
            alignment_layer = self.num_layers - 1
        prefix, _ = prefix_and_source_targets(encoder_out["src_tokens"][0], self.padding_idx,
                                              self.dictionary.bos(), self.dictionary.eos())
        # prev_output_tokens start with </s>: the prefix's separator plays that part
        tokens = torch.cat([prefix, prev_output_tokens[:, 1:]], dim=1)
        positions = self.embed_positions(tokens) if self.embed_positions is not None else None
        primed = self._primed(incremental_state)
        if primed:
            tokens = tokens[:, -1:]
            positions = positions[:, -1:] if positions is not None else None
        x = self.embed_scale * self.embed_tokens(tokens.contiguous())
        if self.project_in_dim is not None:
            x = self.project_in_dim(x)
        if positions is not None:
            x = x + positions
        if self.layernorm_embedding is not None:
            x = self.layernorm_embedding(x)
        x = self.dropout_module(x).transpose(0, 1)
        padding_mask = tokens.eq(self.padding_idx) if tokens.eq(self.padding_idx).any() else None
        self_attn_mask = None if primed or full_context_alignment else self.buffered_future_mask(x)
        attn: Optional[Tensor] = None
        inner_states: List[Optional[Tensor]] = [x]
        for idx, layer in enumerate(self.layers):
            x, layer_attn, _ = layer(x, None, None, incremental_state, self_attn_mask=self_attn_mask,
                                     self_attn_padding_mask=padding_mask,
                                     need_attn=idx == alignment_layer, need_head_weights=idx == alignment_layer)
            inner_states.append(x)
            if layer_attn is not None and idx == alignment_layer:
                attn = layer_attn.float().to(x)
        if attn is not None:
            attn = (attn[:alignment_heads] if alignment_heads is not None else attn).mean(dim=0)
        if self.layer_norm is not None:
            x = self.layer_norm(x)
        x = x.transpose(0, 1)
        if self.project_out_dim is not None:
            x = self.project_out_dim(x)
        if not primed and not (self.source_loss and incremental_state is None):
            # the outputs of </s> y_1 .. y_n: one per target position
            x = x[:, -prev_output_tokens.size(1):]
        return x, {"attn": [attn], "inner_states": inner_states}


@register_model_once("decoder_only_nmt")
class DecoderOnlyNMTModel(FairseqEncoderDecoderModel):
    """Translation with one Transformer decoder over source + target (see the module docstring)."""

    @staticmethod
    def add_args(parser):
        TransformerModel.add_args(parser)  # the decoder_* options are the ones read
        parser.add_argument("--source-loss", action="store_true",
                            help="also train on predicting the source (a language-model loss on every "
                                 "source token), not only the target")

    @classmethod
    def build_model(cls, args, task):
        decoder_only_base(args)
        src_dict, tgt_dict = task.source_dictionary, task.target_dictionary
        if src_dict.symbols != tgt_dict.symbols:
            raise ValueError("decoder_only_nmt reads source and target with one embedding: the source and "
                             "target dictionaries must be the same (binarize with --joined-dictionary)")
        embed_tokens = TransformerModel.build_embedding(args, tgt_dict, args.decoder_embed_dim)
        decoder_args = copy.copy(args)
        # the decoder's positions run over <s> source </s> target
        decoder_args.max_target_positions = args.max_source_positions + args.max_target_positions + 2
        decoder = DecoderOnlyDecoder(decoder_args, tgt_dict, embed_tokens, args.max_target_positions)
        return cls(SourcePrefix(src_dict, args.max_source_positions), decoder)

    def get_targets(self, sample, net_output):
        target = sample["target"]
        if net_output[0].size(1) == target.size(1):
            return target
        dictionary = self.decoder.dictionary
        _, source_targets = prefix_and_source_targets(sample["net_input"]["src_tokens"], dictionary.pad(),
                                                      dictionary.bos(), dictionary.eos())
        return torch.cat([source_targets, target], dim=1)

    def max_positions(self):
        return self.encoder.max_positions(), self.decoder.max_positions()


def _set_defaults(args, **defaults):
    for name, value in defaults.items():
        if getattr(args, name, None) is None:
            setattr(args, name, value)


def decoder_only_base(args):
    """Pre-norm, tied input/output embedding, fairseq's Transformer defaults for everything else."""
    _set_defaults(args, decoder_normalize_before=True, share_decoder_input_output_embed=True,
                  max_source_positions=DEFAULT_MAX_POSITIONS, max_target_positions=DEFAULT_MAX_POSITIONS,
                  source_loss=False)
    base_architecture(args)
    args.encoder_embed_dim = args.decoder_embed_dim  # no encoder: keep fairseq's checks quiet


# The presets match an encoder-decoder preset's width and total parameters: one embedding instead
# of two buys the layers (an 8k vocabulary, as the corpora here have).

@register_architecture_once("decoder_only_nmt", "decoder_only")
def decoder_only(args):
    """``transformer_prenorm`` (HW5 strong) as one decoder: 256/1024/4 heads, 16 layers, dropout 0.3."""
    _set_defaults(args, decoder_embed_dim=256, decoder_ffn_embed_dim=1024, decoder_attention_heads=4,
                  decoder_layers=16, dropout=0.3, activation_fn="relu")
    decoder_only_base(args)


@register_architecture_once("decoder_only_nmt", "decoder_only_tiny")
def decoder_only_tiny(args):
    """``transformer_prenorm_tiny`` as one decoder: 128/512/4 heads, 10 layers, dropout 0.1."""
    _set_defaults(args, decoder_embed_dim=128, decoder_ffn_embed_dim=512, decoder_attention_heads=4,
                  decoder_layers=10, dropout=0.1, activation_fn="relu")
    decoder_only_base(args)
