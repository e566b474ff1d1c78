"""Pre-norm Transformer architecture family on fairseq's own ``transformer`` model.

These are architectures (argument presets), not new model classes, so checkpoints are
plain fairseq ``transformer`` checkpoints: fairseq-generate, fairseq-interactive and
``TransformerModel.from_pretrained`` load them without this plugin's model code.

Every preset fills a value only when it is absent (``getattr(args, name, default)``),
so anything given on the command line wins: fairseq adds model options with
``argparse.SUPPRESS`` and only the ones a user typed reach the namespace.
"""
from fairseq.models.transformer import base_architecture

from fairseq_ext._registry import register_architecture_once


def _set_defaults(args, **defaults):
    for name, value in defaults.items():
        if getattr(args, name, None) is None:
            setattr(args, name, value)


def _hw5_shape(args, *, embed, ffn, heads, layers, dropout, normalize_before):
    """Shared shape of the family: same size encoder and decoder, relu, shared decoder embeddings."""
    _set_defaults(
        args,
        encoder_embed_dim=embed,
        encoder_ffn_embed_dim=ffn,
        encoder_attention_heads=heads,
        encoder_layers=layers,
        decoder_embed_dim=embed,
        decoder_ffn_embed_dim=ffn,
        decoder_attention_heads=heads,
        decoder_layers=layers,
        encoder_normalize_before=normalize_before,
        decoder_normalize_before=normalize_before,
        share_decoder_input_output_embed=True,
        dropout=dropout,
        activation_fn="relu",
        max_source_positions=1024,
        max_target_positions=1024,
    )
    base_architecture(args)


@register_architecture_once("transformer", "transformer_prenorm")
def transformer_prenorm(args):
    """HW5 strong baseline: 6+6 layers, 256/1024/4 heads, pre-norm, dropout 0.3."""
    _hw5_shape(args, embed=256, ffn=1024, heads=4, layers=6, dropout=0.3, normalize_before=True)


@register_architecture_once("transformer", "transformer_prenorm_tiny")
def transformer_prenorm_tiny(args):
    """For tests and the demo: 2+2 layers, 128/512/4 heads; trains in seconds on a CPU."""
    _hw5_shape(args, embed=128, ffn=512, heads=4, layers=2, dropout=0.1, normalize_before=True)


def _learned_positions(args):
    """Learned positional embeddings on both sides (one vector per position up to the maximum),
    so that what the model learned about positions can be looked at (analysis/plot_posemb.py)."""
    _set_defaults(args, encoder_learned_pos=True, decoder_learned_pos=True)


@register_architecture_once("transformer", "transformer_prenorm_learnedpos")
def transformer_prenorm_learnedpos(args):
    """``transformer_prenorm`` with learned instead of sinusoidal positions."""
    _learned_positions(args)
    transformer_prenorm(args)


@register_architecture_once("transformer", "transformer_prenorm_tiny_learnedpos")
def transformer_prenorm_tiny_learnedpos(args):
    """``transformer_prenorm_tiny`` with learned instead of sinusoidal positions."""
    _learned_positions(args)
    transformer_prenorm_tiny(args)


@register_architecture_once("transformer", "transformer_prenorm_base")
def transformer_prenorm_base(args):
    """Transformer-base size (512/2048/8 heads/6+6), pre-norm."""
    _hw5_shape(args, embed=512, ffn=2048, heads=8, layers=6, dropout=0.3, normalize_before=True)


@register_architecture_once("transformer", "transformer_prenorm_big")
def transformer_prenorm_big(args):
    """Transformer-big size (1024/4096/16 heads/6+6), pre-norm."""
    _hw5_shape(args, embed=1024, ffn=4096, heads=16, layers=6, dropout=0.3, normalize_before=True)


@register_architecture_once("transformer", "transformer_postnorm")
def transformer_postnorm(args):
    """``transformer_prenorm`` with layer norm after each sublayer (residual, then norm).

    Post-norm has no final encoder/decoder layer norm (each layer already ends with
    one). To keep the parameter count identical to the pre-norm twin, for a fair
    pre- vs post-norm comparison, it normalises the embeddings instead
    (``layernorm_embedding``, as BART does): the same 2 x 2d parameters.
    """
    _set_defaults(args, layernorm_embedding=True)
    _hw5_shape(args, embed=256, ffn=1024, heads=4, layers=6, dropout=0.3, normalize_before=False)


@register_architecture_once("transformer", "transformer_postnorm_tiny")
def transformer_postnorm_tiny(args):
    """``transformer_prenorm_tiny``'s post-norm twin (same size and parameter count)."""
    _set_defaults(args, layernorm_embedding=True)
    _hw5_shape(args, embed=128, ffn=512, heads=4, layers=2, dropout=0.1, normalize_before=False)
