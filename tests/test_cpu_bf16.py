"""--cpu-bf16: bf16 autocast around forward passes, everything else fp32."""
import copy

import pytest
import torch
from fairseq import optim, options, tasks
from fairseq.dataclass.utils import convert_namespace_to_omegaconf

from conftest import TINY_TRAIN_ARGS, USER_DIR, cli


def _setup(data, *extra):
    """task, criterion and optimizer config as fairseq-train would build them from these options."""
    args = [str(a) for a in (data, *TINY_TRAIN_ARGS, "--dropout", "0", "--no-gnorm-log", *extra)]
    cfg = convert_namespace_to_omegaconf(options.parse_args_and_arch(options.get_training_parser(), args))
    task = tasks.setup_task(cfg.task)
    task.load_dataset("train")
    return task, cfg


def _batch(task):
    itr = task.get_batch_iterator(task.dataset("train"), max_tokens=2000, seed=1)
    return next(itr.next_epoch_itr(shuffle=True))


@pytest.mark.parametrize("criterion", ["label_smoothed_cross_entropy", "label_smoothed_cross_entropy_fused"])
def test_bf16_step_matches_fp32_step(toy_bin, criterion):
    """Same model, same batch: bf16 loss and gradients close to fp32; all state stays fp32."""
    results = {}
    torch.manual_seed(1)
    model0 = None
    for mode in ("fp32", "bf16"):
        task, cfg = _setup(toy_bin, "--criterion", criterion, *(["--cpu-bf16"] if mode == "bf16" else []))
        model0 = model0 or task.build_model(cfg.model)
        model = copy.deepcopy(model0)
        optimizer = optim.build_optimizer(cfg.optimizer, list(model.parameters()))
        logits_dtypes = []
        model.decoder.register_forward_hook(lambda m, i, out: logits_dtypes.append(out[0].dtype))
        loss, sample_size, logging_output = task.train_step(
            _batch(task), model, task.build_criterion(cfg.criterion), optimizer, update_num=0)
        results[mode] = (loss, logging_output, model, logits_dtypes)

    (loss32, log32, model32, dt32), (loss16, log16, model16, dt16) = results["fp32"], results["bf16"]
    assert dt32 == [torch.float32] and dt16 == [torch.bfloat16]  # autocast really was on
    assert loss16.dtype == log16["nll_loss"].dtype == torch.float32  # loss computed in fp32
    assert loss16.item() == pytest.approx(loss32.item(), rel=5e-3)
    assert log16["nll_loss"].item() == pytest.approx(log32["nll_loss"].item(), rel=5e-3)
    largest = max(p.grad.norm() for p in model32.parameters())
    for (name, p32), p16 in zip(model32.named_parameters(), model16.parameters()):
        assert p16.dtype == p16.grad.dtype == torch.float32, name  # fp32 master weights and grads
        g32, g16 = p32.grad.flatten(), p16.grad.flatten()
        if g32.norm() < 1e-4 * largest:  # e.g. key biases: zero in exact arithmetic, only noise
            continue
        cosine = torch.nn.functional.cosine_similarity(g32, g16, dim=0).item()
        assert cosine > 0.99, (name, cosine)
        assert (g16.norm() / g32.norm()).item() == pytest.approx(1.0, abs=0.05), name


def test_no_autocast_without_the_option(toy_bin):
    task, cfg = _setup(toy_bin)
    model = task.build_model(cfg.model)
    seen = []
    model.decoder.register_forward_hook(lambda m, i, out: seen.append(torch.is_autocast_enabled("cpu")))
    task.valid_step(_batch(task), model, task.build_criterion(cfg.criterion))
    assert seen == [False]


def test_fairseq_train_and_generate_with_cpu_bf16(toy_bin, tmp_path):
    """The real CLIs: training (with its end-of-training validation) and beam search under bf16."""
    save_dir = tmp_path / "ckpt"
    train = cli("fairseq-train", toy_bin, *TINY_TRAIN_ARGS, "--cpu-bf16", "--max-update", 8,
                "--save-dir", save_dir, "--no-epoch-checkpoints")
    assert "forward passes run under bf16 autocast on cpu" in train.stdout
    assert "valid on 'valid' subset" in train.stdout  # valid_step ran under bf16 too
    checkpoint = safe_checkpoint(save_dir / "checkpoint_last.pt")
    assert {p.dtype for p in checkpoint["model"].values() if p.is_floating_point()} == {torch.float32}

    generate = cli("fairseq-generate", toy_bin, "--user-dir", USER_DIR, "--task", "translation_ext",
                   "--cpu-bf16", "--path", save_dir / "checkpoint_last.pt", "--gen-subset", "test",
                   "--beam", 4, "--batch-size", 32, "--cpu",
                   # fairseq main drops a last batch smaller than this multiple (default 8)
                   "--required-batch-size-multiple", 1)
    hyps = [line for line in generate.stdout.splitlines() if line.startswith("H-")]
    assert len(hyps) == 100  # the toy test split
    assert "forward passes run under bf16 autocast on cpu" in generate.stdout + generate.stderr


def safe_checkpoint(path):
    from fairseq_ext.checkpoint_safety import safe_load

    return safe_load(path)
