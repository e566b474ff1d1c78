"""GRU encoder-decoder with attention: the ML2023 HW5 "simple" baseline as a fairseq model.

Model ``rnn_seq2seq``; architectures ``rnn_hw5`` (the HW5 sample code's sizes),
``rnn_seq2seq_small`` (the size of ``transformer_prenorm_tiny``, for budgets a CPU can afford) and
``rnn_seq2seq_tiny`` (tests and demo).

Shape, as in the HW5 sample code:

* encoder: token embedding -> dropout -> bidirectional GRU -> dropout. Its outputs
  (``2 * encoder_hidden_size`` wide) are the attention memory; its final hidden states,
  both directions concatenated per layer, start the decoder GRU. That is why the decoder
  hidden size must be twice the encoder's and the layer counts must match (HW5 asserts
  the same two conditions).
* decoder: token embedding -> GRU with attention over the encoder outputs -> a
  projection to ``decoder_embed_dim`` -> output projection to the vocabulary, tied to the
  decoder input embedding by default (``--no-share-decoder-input-output-embed`` unties).

One deliberate difference: the HW5 sample attends from the previous target token's
*embedding*, before the GRU, so attention cannot see what has been translated so far.
Here the query is the decoder's recurrent state (Bahdanau et al., 2015, and fairseq's
``lstm`` model): at step t the context c_t = attend(s_{t-1}, encoder outputs) and the
GRU reads [embed(y_{t-1}); c_t]; the output layer reads [s_t; c_t]. ``--rnn-attention``
picks the score function: ``additive`` (Bahdanau, v^T tanh(W_q s + W_k h)) or ``dot``
(scaled dot product, (W_q s) . h / sqrt(d), HW5's score plus the scaling).

Incremental decoding (fairseq's beam search) caches the decoder hidden states and the
projected attention keys in ``incremental_state`` and reorders both, as fairseq's
``lstm`` and ``transformer`` do.

Architecture presets fill a value only when it is absent (``getattr(args, name, default)``):
fairseq adds model options with ``argparse.SUPPRESS``, so only what the user typed
reaches the namespace and it wins over the preset.
"""
import argparse
from typing import Dict, List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from fairseq.models import FairseqEncoder, FairseqEncoderDecoderModel, FairseqIncrementalDecoder
from fairseq.modules import FairseqDropout
from torch import Tensor

from fairseq_ext._registry import register_architecture_once, register_model_once

ATTENTION_TYPES = ("additive", "dot")
DEFAULT_MAX_POSITIONS = 1024


@register_model_once("rnn_seq2seq")
class RNNSeq2SeqModel(FairseqEncoderDecoderModel):
    @staticmethod
    def add_args(parser):
        parser.add_argument("--dropout", type=float, metavar="D",
                            help="dropout on embeddings, between GRU layers and on outputs")
        parser.add_argument("--encoder-embed-dim", type=int, metavar="N",
                            help="encoder embedding dimension")
        parser.add_argument("--encoder-hidden-size", type=int, metavar="N",
                            help="hidden size of each direction of the bidirectional encoder GRU "
                                 "(HW5's encoder_ffn_embed_dim)")
        parser.add_argument("--encoder-layers", type=int, metavar="N",
                            help="encoder GRU layers (must equal --decoder-layers)")
        parser.add_argument("--decoder-embed-dim", type=int, metavar="N",
                            help="decoder embedding dimension (also the output layer's input)")
        parser.add_argument("--decoder-hidden-size", type=int, metavar="N",
                            help="decoder GRU hidden size, must be 2 x --encoder-hidden-size "
                                 "(HW5's decoder_ffn_embed_dim)")
        parser.add_argument("--decoder-layers", type=int, metavar="N",
                            help="decoder GRU layers (must equal --encoder-layers)")
        parser.add_argument("--share-decoder-input-output-embed",
                            action=argparse.BooleanOptionalAction,
                            help="tie the decoder input embedding and the output projection")
        parser.add_argument("--rnn-attention", choices=ATTENTION_TYPES,
                            help="attention score: additive (Bahdanau) or scaled dot product")
        parser.add_argument("--rnn-attention-dim", type=int, metavar="N",
                            help="hidden size of the additive attention (unused by dot)")

    @classmethod
    def build_model(cls, args, task):
        _base_architecture(args)  # also fills fields that checkpoints of older versions lack
        if args.encoder_layers != args.decoder_layers:
            raise ValueError(
                f"rnn_seq2seq: --encoder-layers ({args.encoder_layers}) must equal --decoder-layers "
                f"({args.decoder_layers}): each decoder layer starts from the encoder layer's final state"
            )
        if args.decoder_hidden_size != 2 * args.encoder_hidden_size:
            raise ValueError(
                f"rnn_seq2seq: --decoder-hidden-size ({args.decoder_hidden_size}) must be 2 x "
                f"--encoder-hidden-size ({args.encoder_hidden_size}): the decoder starts from both "
                f"encoder directions' final states concatenated"
            )
        if args.rnn_attention not in ATTENTION_TYPES:
            raise ValueError(f"rnn_seq2seq: --rnn-attention must be one of {ATTENTION_TYPES}, "
                             f"got {args.rnn_attention!r}")
        encoder = RNNEncoder(
            task.source_dictionary,
            embed_dim=args.encoder_embed_dim,
            hidden_size=args.encoder_hidden_size,
            num_layers=args.encoder_layers,
            dropout=args.dropout,
            max_source_positions=args.max_source_positions,
        )
        decoder = RNNDecoder(
            task.target_dictionary,
            embed_dim=args.decoder_embed_dim,
            hidden_size=args.decoder_hidden_size,
            num_layers=args.decoder_layers,
            encoder_output_units=encoder.output_units,
            attention=args.rnn_attention,
            attention_dim=args.rnn_attention_dim,
            dropout=args.dropout,
            share_input_output_embed=args.share_decoder_input_output_embed,
            max_target_positions=args.max_target_positions,
        )
        return cls(encoder, decoder)


def Embedding(num_embeddings, embedding_dim, padding_idx):
    """fairseq's transformer initialisation: N(0, d^-1/2), which keeps tied logits small."""
    m = nn.Embedding(num_embeddings, embedding_dim, padding_idx=padding_idx)
    nn.init.normal_(m.weight, mean=0, std=embedding_dim**-0.5)
    nn.init.constant_(m.weight[padding_idx], 0)
    return m


class RNNEncoder(FairseqEncoder):
    """Embedding + bidirectional GRU over the non-pad tokens of each sentence."""

    def __init__(self, dictionary, *, embed_dim, hidden_size, num_layers, dropout, max_source_positions):
        super().__init__(dictionary)
        self.padding_idx = dictionary.pad()
        self.num_layers = num_layers
        self.max_source_positions = max_source_positions
        self.embed_tokens = Embedding(len(dictionary), embed_dim, self.padding_idx)
        self.dropout_module = FairseqDropout(dropout, module_name=self.__class__.__name__)
        self.rnn = nn.GRU(embed_dim, hidden_size, num_layers,
                          dropout=dropout if num_layers > 1 else 0.0, bidirectional=True)
        self.output_units = 2 * hidden_size

    def forward(self, src_tokens: Tensor, src_lengths: Optional[Tensor] = None):
        """``src_lengths`` is part of fairseq's encoder interface; the lengths used are counted
        from the padding itself, so left- and right-padded batches give the same states.

        Returns a dict (fairseq's transformer convention):
          encoder_out:          [src_len x batch x 2*hidden] outputs, at the input's token positions
          encoder_padding_mask: [batch x src_len] True at pads
          encoder_hidden:       [layers x batch x 2*hidden] final states, directions concatenated
        """
        bsz, src_len = src_tokens.size()
        pad_mask = src_tokens.eq(self.padding_idx)
        lengths = (~pad_mask).sum(dim=1)
        # pack_padded_sequence wants each row's tokens first; a stable sort moves the pads
        # to the end whatever side fairseq padded on, and `restore` undoes it afterwards.
        to_right_padded = pad_mask.long().argsort(dim=1, stable=True)
        restore = to_right_padded.argsort(dim=1)

        x = self.dropout_module(self.embed_tokens(src_tokens.gather(1, to_right_padded)))
        x = x.transpose(0, 1)  # B x T x C -> T x B x C
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), enforce_sorted=False)
        packed_out, final_hidden = self.rnn(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(packed_out, total_length=src_len)
        out = out.gather(0, restore.t().unsqueeze(-1).expand_as(out))
        out = self.dropout_module(out)

        # (layers * 2) x B x H -> layers x B x 2H, forward direction first (as HW5's combine_bidir)
        final_hidden = final_hidden.view(self.num_layers, 2, bsz, -1).transpose(1, 2)
        final_hidden = final_hidden.reshape(self.num_layers, bsz, self.output_units)
        return {
            "encoder_out": [out],
            "encoder_padding_mask": [pad_mask],
            "encoder_hidden": [final_hidden],
        }

    def reorder_encoder_out(self, encoder_out: Dict[str, List[Tensor]], new_order: Tensor):
        return {
            "encoder_out": [encoder_out["encoder_out"][0].index_select(1, new_order)],
            "encoder_padding_mask": [encoder_out["encoder_padding_mask"][0].index_select(0, new_order)],
            "encoder_hidden": [encoder_out["encoder_hidden"][0].index_select(1, new_order)],
        }

    def max_positions(self):
        return self.max_source_positions


class AdditiveAttention(nn.Module):
    """Bahdanau score v^T tanh(W_q q + W_k h_j)."""

    def __init__(self, query_dim, source_dim, attention_dim):
        super().__init__()
        self.query_proj = nn.Linear(query_dim, attention_dim, bias=False)
        self.key_proj = nn.Linear(source_dim, attention_dim, bias=True)
        self.score_proj = nn.Linear(attention_dim, 1, bias=False)

    def project_keys(self, source: Tensor) -> Tensor:
        return self.key_proj(source)

    def scores(self, query: Tensor, keys: Tensor) -> Tensor:
        """query B x Q, keys S x B x A -> S x B"""
        return self.score_proj(torch.tanh(keys + self.query_proj(query).unsqueeze(0))).squeeze(-1)


class ScaledDotProductAttention(nn.Module):
    """Score (W_q q) . h_j / sqrt(d): the encoder outputs are the keys as they are."""

    def __init__(self, query_dim, source_dim):
        super().__init__()
        self.query_proj = nn.Linear(query_dim, source_dim, bias=False)
        self.scale = source_dim**-0.5

    def project_keys(self, source: Tensor) -> Tensor:
        return source

    def scores(self, query: Tensor, keys: Tensor) -> Tensor:
        return torch.einsum("sbd,bd->sb", keys, self.query_proj(query)) * self.scale


def attend(attention, query: Tensor, keys: Tensor, values: Tensor, pad_mask: Tensor):
    """Context B x C and weights B x S for one decoder step; pads get zero weight."""
    scores = attention.scores(query, keys).float().masked_fill(pad_mask.t(), float("-inf"))
    weights = F.softmax(scores, dim=0).type_as(values)  # S x B
    context = torch.einsum("sb,sbc->bc", weights, values)
    return context, weights.t()


class RNNDecoder(FairseqIncrementalDecoder):
    """GRU decoder; attention query at step t is the top layer's previous state."""

    def __init__(self, dictionary, *, embed_dim, hidden_size, num_layers, encoder_output_units,
                 attention, attention_dim, dropout, share_input_output_embed, max_target_positions):
        super().__init__(dictionary)
        self.max_target_positions = max_target_positions
        self.embed_tokens = Embedding(len(dictionary), embed_dim, dictionary.pad())
        self.dropout_module = FairseqDropout(dropout, module_name=self.__class__.__name__)
        self.layers = nn.ModuleList(
            nn.GRUCell(embed_dim + encoder_output_units if i == 0 else hidden_size, hidden_size)
            for i in range(num_layers)
        )
        if attention == "additive":
            self.attention = AdditiveAttention(hidden_size, encoder_output_units, attention_dim)
        else:
            self.attention = ScaledDotProductAttention(hidden_size, encoder_output_units)
        # [s_t; c_t] -> embed_dim, so the output projection can share the input embedding
        self.pre_output = nn.Linear(hidden_size + encoder_output_units, embed_dim)
        self.output_projection = nn.Linear(embed_dim, len(dictionary), bias=False)
        if share_input_output_embed:
            self.output_projection.weight = self.embed_tokens.weight
        else:
            nn.init.normal_(self.output_projection.weight, mean=0, std=embed_dim**-0.5)

    def forward(self, prev_output_tokens, encoder_out=None, incremental_state=None,
                features_only: bool = False, **unused):
        x, extra = self.extract_features(prev_output_tokens, encoder_out, incremental_state)
        if not features_only:
            x = self.output_layer(x)
        return x, extra

    def extract_features(self, prev_output_tokens, encoder_out=None, incremental_state=None, **unused):
        """Returns features B x T x decoder_embed_dim and {"attn": [B x T x S weights]}.

        With a cached state only the last token is new; without one (training, or the
        first generation step) every given token is decoded from the encoder's final state.
        """
        source = encoder_out["encoder_out"][0]
        pad_mask = encoder_out["encoder_padding_mask"][0]
        cached = (self.get_incremental_state(incremental_state, "cached_state")
                  if incremental_state is not None else None)
        if cached is not None:
            prev_output_tokens = prev_output_tokens[:, -1:]
            hiddens = list(cached["prev_hiddens"].unbind(0))
            keys = cached["attn_keys"]
        else:
            hiddens = list(encoder_out["encoder_hidden"][0].unbind(0))
            keys = self.attention.project_keys(source)

        x = self.dropout_module(self.embed_tokens(prev_output_tokens)).transpose(0, 1)  # T x B x C
        tops, contexts, weights = [], [], []
        for step_input in x:
            context, step_weights = attend(self.attention, hiddens[-1], keys, source, pad_mask)
            layer_input = torch.cat([step_input, context], dim=1)
            for i, cell in enumerate(self.layers):
                hiddens[i] = cell(layer_input, hiddens[i])
                layer_input = self.dropout_module(hiddens[i])
            tops.append(layer_input)
            contexts.append(context)
            weights.append(step_weights)

        if incremental_state is not None:
            self.set_incremental_state(
                incremental_state, "cached_state",
                {"prev_hiddens": torch.stack(hiddens), "attn_keys": keys},
            )
        features = torch.tanh(self.pre_output(torch.cat([torch.stack(tops), torch.stack(contexts)], dim=-1)))
        features = self.dropout_module(features).transpose(0, 1)  # T x B x C -> B x T x C
        return features, {"attn": [torch.stack(weights, dim=1)]}

    def output_layer(self, features):
        return self.output_projection(features)

    def reorder_incremental_state(self, incremental_state: Dict[str, Dict[str, Optional[Tensor]]],
                                  new_order: Tensor):
        cached = self.get_incremental_state(incremental_state, "cached_state")
        if cached is None:
            return
        self.set_incremental_state(
            incremental_state, "cached_state",
            {
                "prev_hiddens": cached["prev_hiddens"].index_select(1, new_order),
                "attn_keys": cached["attn_keys"].index_select(1, new_order),
            },
        )

    def max_positions(self):
        return self.max_target_positions


def _base_architecture(args):
    """Defaults = the HW5 sample code's arch_args (and dot-product attention, closest to its score)."""
    args.dropout = getattr(args, "dropout", 0.3)
    args.encoder_embed_dim = getattr(args, "encoder_embed_dim", 256)
    args.encoder_hidden_size = getattr(args, "encoder_hidden_size", 512)
    args.encoder_layers = getattr(args, "encoder_layers", 1)
    args.decoder_embed_dim = getattr(args, "decoder_embed_dim", 256)
    args.decoder_hidden_size = getattr(args, "decoder_hidden_size", 2 * args.encoder_hidden_size)
    args.decoder_layers = getattr(args, "decoder_layers", args.encoder_layers)
    args.share_decoder_input_output_embed = getattr(args, "share_decoder_input_output_embed", True)
    args.rnn_attention = getattr(args, "rnn_attention", "dot")
    args.rnn_attention_dim = getattr(args, "rnn_attention_dim", args.decoder_embed_dim)
    args.max_source_positions = getattr(args, "max_source_positions", DEFAULT_MAX_POSITIONS)
    args.max_target_positions = getattr(args, "max_target_positions", DEFAULT_MAX_POSITIONS)


@register_architecture_once("rnn_seq2seq", "rnn_hw5")
def rnn_hw5(args):
    """HW5 simple baseline: embed 256, bi-GRU 2 x 512, GRU decoder 1024, 1+1 layers, tied, dropout 0.3."""
    _base_architecture(args)


@register_architecture_once("rnn_seq2seq", "rnn_seq2seq_tiny")
def rnn_seq2seq_tiny(args):
    """For tests and the demo: embed 64, bi-GRU 2 x 64, decoder 128, dropout 0.1; trains in seconds."""
    args.dropout = getattr(args, "dropout", 0.1)
    args.encoder_embed_dim = getattr(args, "encoder_embed_dim", 64)
    args.encoder_hidden_size = getattr(args, "encoder_hidden_size", 64)
    args.decoder_embed_dim = getattr(args, "decoder_embed_dim", 64)
    _base_architecture(args)


@register_architecture_once("rnn_seq2seq", "rnn_seq2seq_small")
def rnn_seq2seq_small(args):
    """embed 128, bi-GRU 2 x 192, decoder 384, dropout 0.1: about the parameters of
    ``transformer_prenorm_tiny`` (3.7M against 3.0M on an 8k vocabulary), for equal-compute ladders."""
    args.dropout = getattr(args, "dropout", 0.1)
    args.encoder_embed_dim = getattr(args, "encoder_embed_dim", 128)
    args.encoder_hidden_size = getattr(args, "encoder_hidden_size", 192)
    args.decoder_embed_dim = getattr(args, "decoder_embed_dim", 128)
    _base_architecture(args)
