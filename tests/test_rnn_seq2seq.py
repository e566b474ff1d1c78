"""rnn_seq2seq (HW5 simple baseline): shapes, incremental = full decoding, beam reordering,
tied embeddings, presets and overrides, and train + beam-search generate through the real CLIs."""
import re

import pytest
import torch
from fairseq import options, tasks

from conftest import USER_DIR, cli
from decoding_checks import assert_reorder_follows_the_beam, decode_steps
from fairseq_ext.models.rnn_seq2seq import AdditiveAttention, ScaledDotProductAttention

ATTENTIONS = ["additive", "dot"]
# A tiny model gains nothing from a second thread; on a shared machine it loses a lot.
ONE_THREAD = {"OMP_NUM_THREADS": "1"}


def parse(toy_bin, arch, *extra):
    parser = options.get_training_parser()
    return options.parse_args_and_arch(
        parser, [str(toy_bin), "--user-dir", str(USER_DIR), "--task", "translation", "--arch", arch, *extra]
    )


def build(toy_bin, arch="rnn_seq2seq_tiny", *extra):
    args = parse(toy_bin, arch, *extra)
    task = tasks.setup_task(args)
    torch.manual_seed(0)
    model = task.build_model(args)
    model.eval()  # no dropout: comparisons below are exact up to float rounding
    return task, model


def valid_batch(task, n=6):
    """Real toy sentences of different lengths, collated by fairseq (source left-padded)."""
    task.load_dataset("valid")
    dataset = task.dataset("valid")
    batch = dataset.collater([dataset[i] for i in range(n)])["net_input"]
    assert batch["src_tokens"].eq(task.source_dictionary.pad()).any(), "the batch should contain padding"
    return batch


def n_params(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("attention", ATTENTIONS)
def test_output_shapes_and_attention_weights(toy_bin, attention):
    task, model = build(toy_bin, "rnn_seq2seq_tiny", "--rnn-attention", attention, "--encoder-layers", "2")
    batch = valid_batch(task)
    bsz, src_len = batch["src_tokens"].shape
    tgt_len = batch["prev_output_tokens"].size(1)
    with torch.no_grad():
        encoder_out = model.encoder(batch["src_tokens"], batch["src_lengths"])
        logits, extra = model(**batch)
    assert encoder_out["encoder_out"][0].shape == (src_len, bsz, 2 * 64)
    assert encoder_out["encoder_hidden"][0].shape == (2, bsz, 2 * 64)
    assert logits.shape == (bsz, tgt_len, len(task.target_dictionary))
    weights = extra["attn"][0]
    assert weights.shape == (bsz, tgt_len, src_len)
    torch.testing.assert_close(weights.sum(-1), torch.ones(bsz, tgt_len))
    pads = batch["src_tokens"].eq(task.source_dictionary.pad())
    assert weights.masked_select(pads.unsqueeze(1)).eq(0).all()


def test_padding_side_does_not_change_the_encoding(toy_bin):
    task, model = build(toy_bin)
    batch = valid_batch(task)
    left = batch["src_tokens"]
    pad = task.source_dictionary.pad()
    right = torch.stack([torch.cat([row[row.ne(pad)], row[row.eq(pad)]]) for row in left])
    with torch.no_grad():
        from_left = model.encoder(left, batch["src_lengths"])
        from_right = model.encoder(right, batch["src_lengths"])
    torch.testing.assert_close(from_left["encoder_hidden"][0], from_right["encoder_hidden"][0])
    for row in range(left.size(0)):
        tokens_left = from_left["encoder_out"][0][left[row].ne(pad), row]
        tokens_right = from_right["encoder_out"][0][right[row].ne(pad), row]
        torch.testing.assert_close(tokens_left, tokens_right)


@pytest.mark.parametrize("attention", ATTENTIONS)
def test_incremental_decoding_equals_full_decoding(toy_bin, attention):
    task, model = build(toy_bin, "rnn_seq2seq_tiny", "--rnn-attention", attention,
                        "--encoder-layers", "2", "--decoder-layers", "2")
    batch = valid_batch(task)
    with torch.no_grad():
        full_logits, full_extra = model(**batch)
        encoder_out = model.encoder(batch["src_tokens"], batch["src_lengths"])
        steps = decode_steps(model, batch["prev_output_tokens"], encoder_out, {})
    for t, (logits, extra) in enumerate(steps):
        torch.testing.assert_close(logits, full_logits[:, t], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(extra["attn"][0][:, 0], full_extra["attn"][0][:, t], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("attention", ATTENTIONS)
def test_reorder_incremental_state_follows_the_beam(toy_bin, attention):
    task, model = build(toy_bin, "rnn_seq2seq_tiny", "--rnn-attention", attention, "--encoder-layers", "2")
    batch = valid_batch(task)
    assert_reorder_follows_the_beam(model, batch["src_tokens"], batch["src_lengths"], batch["prev_output_tokens"])


def test_tied_embeddings_share_one_weight(toy_bin):
    _, tied = build(toy_bin, "rnn_seq2seq_tiny")
    _, untied = build(toy_bin, "rnn_seq2seq_tiny", "--no-share-decoder-input-output-embed")
    assert tied.decoder.output_projection.weight is tied.decoder.embed_tokens.weight
    assert untied.decoder.output_projection.weight is not untied.decoder.embed_tokens.weight
    vocab, dim = tied.decoder.embed_tokens.weight.shape
    assert n_params(untied) - n_params(tied) == vocab * dim
    with torch.no_grad():  # a change to the embedding is a change to the output layer
        tied.decoder.embed_tokens.weight[7].add_(1.0)
    assert torch.equal(tied.decoder.output_projection.weight[7], tied.decoder.embed_tokens.weight[7])


def hw5_param_count(vocab):
    """Hand count for rnn_hw5 (embed 256, bi-GRU 2x512, decoder GRU 1024, dot attention, tied)."""
    def gru(inp, hidden):
        return 3 * hidden * (inp + hidden) + 2 * 3 * hidden  # weights + both bias vectors

    encoder = vocab * 256 + 2 * gru(256, 512)
    decoder = vocab * 256 + gru(256 + 1024, 1024)  # input: embedding + attention context
    attention = 1024 * 1024  # query projection onto the 1024-wide encoder outputs
    pre_output = (1024 + 1024) * 256 + 256  # [state; context] -> embedding size, tied softmax
    return encoder + decoder + attention + pre_output


def test_hw5_parameter_count_matches_hand_count(toy_bin):
    task, model = build(toy_bin, "rnn_hw5")
    assert n_params(model) == hw5_param_count(len(task.source_dictionary))


HW5 = dict(encoder_embed_dim=256, encoder_hidden_size=512, encoder_layers=1, decoder_embed_dim=256,
           decoder_hidden_size=1024, decoder_layers=1, share_decoder_input_output_embed=True,
           dropout=0.3, rnn_attention="dot", max_source_positions=1024, max_target_positions=1024)


@pytest.mark.parametrize(
    "arch, extra, expected",
    [
        ("rnn_hw5", [], HW5),
        ("rnn_seq2seq_tiny", [], dict(encoder_embed_dim=64, encoder_hidden_size=64, decoder_hidden_size=128,
                                      dropout=0.1, share_decoder_input_output_embed=True)),
        ("rnn_seq2seq_small", [], dict(encoder_embed_dim=128, encoder_hidden_size=192, decoder_embed_dim=128,
                                       decoder_hidden_size=384, dropout=0.1, rnn_attention="dot")),
        ("rnn_hw5", ["--dropout", "0.1"], {**HW5, "dropout": 0.1}),
        ("rnn_hw5", ["--encoder-hidden-size", "128"], {**HW5, "encoder_hidden_size": 128, "decoder_hidden_size": 256}),
        ("rnn_hw5", ["--encoder-layers", "2"], {**HW5, "encoder_layers": 2, "decoder_layers": 2}),
        ("rnn_hw5", ["--no-share-decoder-input-output-embed"], {**HW5, "share_decoder_input_output_embed": False}),
        ("rnn_hw5", ["--rnn-attention", "additive", "--rnn-attention-dim", "32"],
         {**HW5, "rnn_attention": "additive", "rnn_attention_dim": 32}),
        ("rnn_hw5", ["--max-source-positions", "256"], {**HW5, "max_source_positions": 256}),
    ],
)
def test_command_line_overrides_architecture_default(toy_bin, arch, extra, expected):
    args = parse(toy_bin, arch, *extra)
    assert {k: getattr(args, k) for k in expected} == expected
    _, model = build(toy_bin, arch, *extra)
    assert model.encoder.rnn.hidden_size == args.encoder_hidden_size
    assert model.encoder.rnn.num_layers == args.encoder_layers == len(model.decoder.layers)
    assert model.decoder.dropout_module.p == args.dropout
    assert model.max_positions() == (args.max_source_positions, args.max_target_positions)
    attention_class = {"additive": AdditiveAttention, "dot": ScaledDotProductAttention}[args.rnn_attention]
    assert isinstance(model.decoder.attention, attention_class)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--decoder-hidden-size", "100"], "--decoder-hidden-size (100) must be 2 x --encoder-hidden-size (64)"),
        (["--encoder-layers", "2", "--decoder-layers", "1"], "--encoder-layers (2) must equal --decoder-layers (1)"),
    ],
)
def test_inconsistent_sizes_are_rejected(toy_bin, extra, message):
    args = parse(toy_bin, "rnn_seq2seq_tiny", *extra)
    with pytest.raises(ValueError, match=re.escape(message)):
        tasks.setup_task(args).build_model(args)


def test_unknown_attention_is_rejected_by_the_cli_parser(toy_bin, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse(toy_bin, "rnn_seq2seq_tiny", "--rnn-attention", "cosine")
    assert exit_info.value.code != 0
    assert "--rnn-attention: invalid choice: 'cosine'" in capsys.readouterr().err


def test_train_then_beam_search_generate_with_the_cli(toy_bin, tmp_path):
    save_dir = tmp_path / "ckpt"
    train = cli(
        "fairseq-train", toy_bin, "--user-dir", USER_DIR, "--task", "translation", "--arch", "rnn_seq2seq_tiny",
        "--optimizer", "adam", "--lr", "5e-3", "--criterion", "cross_entropy", "--max-tokens", "4000",
        "--max-update", "8", "--cpu", "--seed", "1", "--no-progress-bar", "--log-format", "simple",
        "--log-interval", "1", "--num-workers", "0", "--disable-validation", "--no-epoch-checkpoints",
        "--save-dir", save_dir, env=ONE_THREAD,
    )
    losses = [float(x) for x in re.findall(r"train_inner \|.* loss=([0-9.]+)", train.stdout + train.stderr)]
    assert len(losses) == 8 and losses[-1] < losses[0] - 0.5, losses
    generate = cli(
        "fairseq-generate", toy_bin, "--user-dir", USER_DIR, "--task", "translation",
        "--path", save_dir / "checkpoint_last.pt", "--gen-subset", "test", "--beam", "4", "--nbest", "2",
        "--max-tokens", "4000", "--cpu", "--num-workers", "0",
        # fairseq's batch_by_size drops a last batch that is not a multiple of this (default 8)
        "--required-batch-size-multiple", "1", env=ONE_THREAD,
    )
    assert re.search(r"^Generate test with beam=4: BLEU4? = [0-9.]+", generate.stdout, re.M), generate.stdout[-2000:]
    hypotheses = re.findall(r"^H-(\d+)\t", generate.stdout, re.M)
    assert sorted(set(map(int, hypotheses))) == list(range(100))  # toy test split: 100 sentences
    assert len(hypotheses) == 2 * 100  # --nbest 2 from the beam
