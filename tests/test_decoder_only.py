"""decoder_only_nmt: the sequence it reads, incremental = full decoding, beam reordering, the
target-only and source + target losses, and train + beam-search generate through the real CLIs."""
import re

import pytest
import torch
from fairseq import options, tasks

from conftest import USER_DIR, cli
from decoding_checks import assert_reorder_follows_the_beam, decode_steps
from fairseq_ext.models.decoder_only import prefix_and_source_targets

ONE_THREAD = {"OMP_NUM_THREADS": "1"}
POSITIONS = {"sinusoidal": [], "learned": ["--decoder-learned-pos"]}


def parse(toy_bin, *extra, arch="decoder_only_tiny"):
    parser = options.get_training_parser()
    return options.parse_args_and_arch(
        parser, [str(toy_bin), "--user-dir", str(USER_DIR), "--task", "translation", "--arch", arch, *extra])


def build(toy_bin, *extra):
    args = parse(toy_bin, *extra)
    task = tasks.setup_task(args)
    torch.manual_seed(0)
    model = task.build_model(args)
    model.eval()  # no dropout: the comparisons below are exact up to float rounding
    return task, model


def valid_batch(task, n=6):
    """Real toy sentences of different lengths, collated by fairseq (source left-padded, target right-padded)."""
    task.load_dataset("valid")
    dataset = task.dataset("valid")
    sample = dataset.collater([dataset[i] for i in range(n)])
    pad = task.source_dictionary.pad()
    assert sample["net_input"]["src_tokens"].eq(pad).any() and sample["target"].eq(pad).any()
    return sample


def test_the_sequence_is_bos_source_separator_with_padding_before_the_separator():
    pad, bos, eos = 1, 0, 2
    src = torch.tensor([[pad, pad, 7, 8, eos],
                        [5, 6, 7, 8, eos]])
    prefix, source_targets = prefix_and_source_targets(src, pad, bos, eos)
    assert prefix.tolist() == [[bos, 7, 8, pad, pad, eos],
                               [bos, 5, 6, 7, 8, eos]]
    # what each prefix column but the separator predicts: the next source token, the last one </s>
    assert source_targets.tolist() == [[7, 8, eos, pad, pad],
                                       [5, 6, 7, 8, eos]]


@pytest.mark.parametrize("positions", POSITIONS)
def test_incremental_decoding_equals_full_decoding(toy_bin, positions):
    task, model = build(toy_bin, *POSITIONS[positions])
    net_input = valid_batch(task)["net_input"]
    with torch.no_grad():
        full, _ = model(**net_input)
        assert full.size()[:2] == net_input["prev_output_tokens"].size()
        encoder_out = model.encoder(net_input["src_tokens"], net_input["src_lengths"])
        steps = decode_steps(model, net_input["prev_output_tokens"], encoder_out, {})
    for t, (logits, _) in enumerate(steps):
        torch.testing.assert_close(logits, full[:, t], atol=1e-4, rtol=1e-4)


def test_padding_does_not_change_a_sentences_outputs(toy_bin):
    """Decoded in a batch (padded) or alone (no padding): the same logits for each sentence."""
    task, model = build(toy_bin)
    net_input = valid_batch(task)["net_input"]
    pad = task.source_dictionary.pad()
    with torch.no_grad():
        batched, _ = model(**net_input)
        for row in range(net_input["src_tokens"].size(0)):
            src = net_input["src_tokens"][row]
            src = src[src.ne(pad)].unsqueeze(0)
            prev = net_input["prev_output_tokens"][row]
            length = int(prev.ne(pad).sum())
            alone, _ = model(src, torch.tensor([src.size(1)]), prev[:length].unsqueeze(0))
            torch.testing.assert_close(alone[0], batched[row, :length], atol=1e-4, rtol=1e-4)


def test_reorder_incremental_state_follows_the_beam(toy_bin):
    task, model = build(toy_bin)
    net_input = valid_batch(task)["net_input"]
    assert_reorder_follows_the_beam(model, net_input["src_tokens"], net_input["src_lengths"],
                                    net_input["prev_output_tokens"], tolerance=1e-4)


def test_source_loss_adds_the_source_positions_and_their_targets(toy_bin):
    task, plain = build(toy_bin)
    _, both = build(toy_bin, "--source-loss")
    sample = valid_batch(task)
    net_input = sample["net_input"]
    src_len, tgt_len = net_input["src_tokens"].size(1), sample["target"].size(1)
    with torch.no_grad():
        out_plain = plain(**net_input)
        out_both = both(**net_input)
    assert out_plain[0].size(1) == tgt_len and plain.get_targets(sample, out_plain) is sample["target"]
    assert out_both[0].size(1) == src_len + tgt_len
    targets = both.get_targets(sample, out_both)
    assert targets[:, src_len:].equal(sample["target"])
    pad = task.source_dictionary.pad()
    # the same weights (seed 0): the target positions' outputs do not depend on the flag
    torch.testing.assert_close(out_both[0][:, src_len:], out_plain[0], atol=1e-5, rtol=1e-5)
    # each row's source targets are its source tokens (x_1 .. x_m </s>), in order
    for row in range(targets.size(0)):
        src = net_input["src_tokens"][row]
        assert targets[row, :src_len][targets[row, :src_len].ne(pad)].equal(src[src.ne(pad)])


def test_a_separate_dictionary_per_side_is_refused(toy_bin, tmp_path):
    import shutil

    for path in toy_bin.iterdir():
        shutil.copy(path, tmp_path / path.name)
    with open(tmp_path / "dict.zh.txt", "a", encoding="utf-8") as handle:
        handle.write("extra-symbol 1\n")
    with pytest.raises(ValueError, match="must be the same"):
        build(tmp_path)


def test_train_then_beam_search_generate_with_the_cli(toy_bin, tmp_path):
    save_dir = tmp_path / "ckpt"
    train = cli(
        "fairseq-train", toy_bin, "--user-dir", USER_DIR, "--task", "translation_ext", "--arch", "decoder_only_tiny",
        "--optimizer", "adam", "--lr", "2e-3", "--criterion", "label_smoothed_cross_entropy_fused",
        "--max-tokens", "4000", "--max-update", "8", "--cpu", "--seed", "1", "--no-progress-bar",
        "--log-format", "simple", "--log-interval", "1", "--num-workers", "0", "--disable-validation",
        "--no-epoch-checkpoints", "--save-dir", save_dir, env=ONE_THREAD,
    )
    losses = [float(x) for x in re.findall(r"train_inner \|.* loss=([0-9.]+)", train.stdout + train.stderr)]
    assert len(losses) == 8 and losses[-1] < losses[0] - 0.5, losses
    generate = cli(
        "fairseq-generate", toy_bin, "--user-dir", USER_DIR, "--task", "translation_ext",
        "--path", save_dir / "checkpoint_last.pt", "--gen-subset", "test", "--beam", "4", "--nbest", "2",
        "--max-tokens", "4000", "--cpu", "--num-workers", "0", "--required-batch-size-multiple", "1",
        env=ONE_THREAD,
    )
    assert re.search(r"^Generate test with beam=4: BLEU4? = [0-9.]+", generate.stdout, re.M), generate.stdout[-2000:]
    hypotheses = re.findall(r"^H-(\d+)\t", generate.stdout, re.M)
    assert sorted(set(map(int, hypotheses))) == list(range(100))
    assert len(hypotheses) == 2 * 100
