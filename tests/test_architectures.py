"""The transformer_prenorm family: really pre-norm, hand-checked sizes, overrides win."""
import pytest
import torch
from fairseq import options, tasks

from conftest import USER_DIR


def build(toy_bin, arch, *extra):
    parser = options.get_training_parser()
    args = options.parse_args_and_arch(
        parser, [str(toy_bin), "--user-dir", str(USER_DIR), "--task", "translation_ext", "--arch", arch, *extra]
    )
    task = tasks.setup_task(args)
    return task.build_model(args), len(task.source_dictionary)


def strong_param_count(vocab, d=256, f=1024, layers=6):
    """Hand count for the HW5 strong config with a joined dictionary of size `vocab`."""
    attention = 4 * (d * d + d)  # q, k, v, out projections with biases
    ffn = (d * f + f) + (f * d + d)
    layer_norm = 2 * d
    encoder_layer = attention + ffn + 2 * layer_norm
    decoder_layer = 2 * attention + ffn + 3 * layer_norm
    embeddings = 2 * vocab * d  # encoder + decoder; output projection shares the decoder's
    final_norms = 2 * layer_norm
    return embeddings + layers * (encoder_layer + decoder_layer) + final_norms


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def layer_norm_input_is_layer_input(layer, x, *forward_args):
    """Run `layer` and report whether self_attn_layer_norm saw the raw layer input (pre-norm)."""
    seen = {}
    handle = layer.self_attn_layer_norm.register_forward_hook(lambda m, inp, out: seen.setdefault("x", inp[0]))
    layer.eval()
    with torch.no_grad():
        layer(x, *forward_args)
    handle.remove()
    return torch.equal(seen["x"], x)


def test_prenorm_structure_and_behaviour(toy_bin):
    model, _ = build(toy_bin, "transformer_prenorm")
    for layer in list(model.encoder.layers) + list(model.decoder.layers):
        assert layer.normalize_before
    assert model.encoder.layer_norm is not None and model.decoder.layer_norm is not None
    x = torch.randn(5, 2, 256)
    assert layer_norm_input_is_layer_input(model.encoder.layers[0], x, None)
    assert model.decoder.share_input_output_embed
    assert model.decoder.output_projection.weight is model.decoder.embed_tokens.weight


def test_postnorm_normalises_after_sublayer(toy_bin):
    model, _ = build(toy_bin, "transformer_postnorm")
    for layer in list(model.encoder.layers) + list(model.decoder.layers):
        assert not layer.normalize_before
    assert model.encoder.layer_norm is None and model.decoder.layer_norm is None
    x = torch.randn(5, 2, 256)
    assert not layer_norm_input_is_layer_input(model.encoder.layers[0], x, None)


def test_strong_parameter_count_matches_hand_count(toy_bin):
    prenorm, vocab = build(toy_bin, "transformer_prenorm")
    postnorm, _ = build(toy_bin, "transformer_postnorm")
    assert n_params(prenorm) == strong_param_count(vocab)
    assert n_params(postnorm) == n_params(prenorm)


def test_tiny_postnorm_is_the_tiny_prenorm_twin(toy_bin):
    prenorm, _ = build(toy_bin, "transformer_prenorm_tiny")
    postnorm, _ = build(toy_bin, "transformer_postnorm_tiny")
    assert n_params(postnorm) == n_params(prenorm)
    assert all(not layer.normalize_before for layer in [*postnorm.encoder.layers, *postnorm.decoder.layers])
    assert postnorm.encoder.layer_norm is None and postnorm.encoder.layernorm_embedding is not None


@pytest.mark.parametrize(
    "arch, expected",
    [
        ("transformer_prenorm", dict(encoder_embed_dim=256, encoder_ffn_embed_dim=1024, encoder_attention_heads=4,
                                     encoder_layers=6, decoder_layers=6, dropout=0.3, max_source_positions=1024)),
        ("transformer_prenorm_tiny", dict(encoder_embed_dim=128, encoder_layers=2, decoder_layers=2)),
        ("transformer_prenorm_base", dict(encoder_embed_dim=512, encoder_ffn_embed_dim=2048,
                                          encoder_attention_heads=8, encoder_layers=6)),
        ("transformer_prenorm_big", dict(encoder_embed_dim=1024, encoder_ffn_embed_dim=4096,
                                         encoder_attention_heads=16)),
        ("transformer_postnorm", dict(encoder_embed_dim=256, encoder_normalize_before=False, layernorm_embedding=True)),
        ("transformer_postnorm_tiny", dict(encoder_embed_dim=128, encoder_layers=2, decoder_layers=2, dropout=0.1,
                                           encoder_normalize_before=False, layernorm_embedding=True)),
        ("transformer_prenorm_learnedpos", dict(encoder_embed_dim=256, encoder_layers=6, encoder_learned_pos=True,
                                                decoder_learned_pos=True, max_source_positions=1024)),
        ("transformer_prenorm_tiny_learnedpos", dict(encoder_embed_dim=128, decoder_layers=2, dropout=0.1,
                                                     encoder_learned_pos=True, decoder_learned_pos=True)),
        ("transformer_prenorm_tiny", dict(encoder_learned_pos=False, decoder_learned_pos=False)),
    ],
)
def test_architecture_presets(toy_bin, arch, expected):
    parser = options.get_training_parser()
    args = options.parse_args_and_arch(
        parser, [str(toy_bin), "--user-dir", str(USER_DIR), "--task", "translation_ext", "--arch", arch]
    )
    assert {k: getattr(args, k) for k in expected} == expected


@pytest.mark.parametrize(
    "flag, value, attribute",
    [
        ("--encoder-layers", "2", "encoder_layers"),
        ("--dropout", "0.1", "dropout"),
        ("--encoder-embed-dim", "64", "encoder_embed_dim"),
        ("--max-source-positions", "256", "max_source_positions"),
    ],
)
def test_command_line_overrides_architecture_default(toy_bin, flag, value, attribute):
    parser = options.get_training_parser()
    args = options.parse_args_and_arch(
        parser, [str(toy_bin), "--user-dir", str(USER_DIR), "--task", "translation_ext",
                 "--arch", "transformer_prenorm", flag, value]
    )
    assert getattr(args, attribute) == type(getattr(args, attribute))(value)


def test_override_changes_the_built_model(toy_bin):
    model, _ = build(toy_bin, "transformer_prenorm", "--encoder-layers", "2")
    assert len(model.encoder.layers) == 2 and len(model.decoder.layers) == 6
