"""Peak matmul rate of this machine and the model FLOPs of a training step (for MFU)."""
import time

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def matmul_peak(device: str, dtype: str, n: int = 0, min_seconds: float = 0.5, trials: int = 3) -> float:
    """Best FLOP/s of an n x n x n matmul over *trials* timings of >= *min_seconds* each.

    The best, not the median: the peak is what the hardware can do, and on a shared
    machine every disturbance only makes a trial slower.
    """
    n = n or (8192 if device == "cuda" else 2048)
    a = torch.randn(n, n, device=device, dtype=DTYPES[dtype])
    b = torch.randn(n, n, device=device, dtype=DTYPES[dtype])
    a @ b  # warm-up (library initialisation, kernel selection)
    _sync(device)
    best = 0.0
    for _ in range(trials):
        reps, start = 0, time.perf_counter()
        while True:
            a @ b
            reps += 1
            _sync(device)
            elapsed = time.perf_counter() - start
            if elapsed >= min_seconds:
                break
        best = max(best, 2.0 * n**3 * reps / elapsed)
    return best


def training_setup(train_args: list):
    """fairseq's task, model and criterion for *train_args*, and the batches of one training epoch.

    *train_args* are fairseq-train arguments (data, task, arch, criterion, --max-tokens,
    --seed ...); the model is built on the CPU in fp32 (FLOPs do not depend on precision).
    The batches are lists of sentence indices in fairseq's order (by length), the same
    set every epoch; fairseq shuffles their order per epoch.
    """
    from fairseq import options, tasks, utils
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    args = options.parse_args_and_arch(options.get_training_parser(), [str(a) for a in train_args])
    cfg = convert_namespace_to_omegaconf(args)
    utils.import_user_module(cfg.common)
    task = tasks.setup_task(cfg.task)
    task.load_dataset("train")
    torch.manual_seed(cfg.common.seed)
    model = task.build_model(cfg.model)
    criterion = task.build_criterion(cfg.criterion)
    iterator = task.get_batch_iterator(
        task.dataset("train"), max_tokens=cfg.dataset.max_tokens, max_sentences=cfg.dataset.batch_size,
        max_positions=utils.resolve_max_positions(task.max_positions(), model.max_positions()),
        required_batch_size_multiple=cfg.dataset.required_batch_size_multiple,
        seed=cfg.common.seed, ignore_invalid_inputs=True,
    )
    return cfg, task, model, criterion, [list(batch) for batch in iterator.frozen_batches]


def flops_per_target_token(task, model, criterion, batches: list) -> float:
    """Matmul FLOPs of forward + backward per target token, counted on *batches* (index lists).

    Attention runs through the math kernel here so that its matmuls are counted too. torch's
    counter knows matmuls, convolutions and attention; GRUs count as well, because on the CPU,
    where this runs, they are computed as matmuls (cuDNN's fused RNN kernels would not be).
    """
    dataset = task.dataset("train")
    # collated before counting: under the counter every tensor op of the data path is dispatched
    # through Python too (no FLOPs, but seconds for a few thousand sentences)
    samples = [dataset.collater([dataset[i] for i in batch]) for batch in batches]
    tokens, counter = 0, FlopCounterMode(display=False)
    model.train()
    with counter, sdpa_kernel([SDPBackend.MATH]):
        for sample in samples:
            loss, _, _ = criterion(model, sample)
            loss.backward()
            tokens += int(sample["ntokens"])
    return counter.get_total_flops() / tokens


def spread(items: list, n: int) -> list:
    """*n* items evenly spaced over *items* (all of them when there are fewer)."""
    if n >= len(items):
        return list(items)
    return [items[round(i * (len(items) - 1) / (n - 1))] for i in range(n)] if n > 1 else [items[len(items) // 2]]


def training_flops_per_token(train_args: list, batches: int = 2) -> float:
    """Matmul FLOPs of forward + backward per target token, on *batches* batches spread over
    the lengths of the training set (fairseq's batches run from the shortest to the longest)."""
    _, task, model, criterion, all_batches = training_setup(train_args)
    return flops_per_target_token(task, model, criterion, spread(all_batches, batches))
