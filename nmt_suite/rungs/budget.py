"""Training budgets that do not depend on the machine: FLOPs (or target tokens) -> a number of updates.

A rung given ``train.budget_flops=X`` (or ``train.budget_tokens=T``) trains for

    updates = round(T / tokens_per_update),  T = X / flops_per_token,

where ``flops_per_token`` is the model's forward + backward FLOPs per target token, counted
with torch's FLOP counter on real batches of the training set (spread from its shortest to its
longest sentences), and ``tokens_per_update`` is the mean target tokens of fairseq's batches
over a whole epoch (the same set of batches every epoch) times ``update_freq``. Both depend on
the data, the model and the batch size only, never on how fast the machine is, so the same
budget always ends at the same update. ``train.budget_warmup=0.1`` makes the warm-up that share
of the budget's updates. The plan is measured once per run (in a child process: fairseq's
logging goes to ``budget.log``) and recorded with the train stage's other inputs.

    python -m nmt_suite.rungs.budget --out plan.json [--batches 4] -- FAIRSEQ_TRAIN_ARGS ...
"""
import argparse
import json
import math
import sys

# train-section keys the pipeline reads itself (never passed to fairseq-train)
BUDGET_KEYS = ("budget_flops", "budget_tokens", "budget_warmup")
# what a budget replaces: the stopping options of fairseq-train
STOPPING_KEYS = ("max_update", "max_epoch", "stop_time_hours")
# schedulers whose decay length fairseq reads from --total-num-update (set to the budget's updates)
DECAY_TO_BUDGET = ("polynomial_decay", "tri_stage")
FLOP_BATCHES = 4


class BudgetError(ValueError):
    pass


def _number(value):
    """YAML 1.1 reads ``1e14`` (no dot) as a string: take it as the number it says."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def check_budget(train: dict) -> dict:
    """The budget keys of a train section, checked: ``{}`` when it has none (BudgetError naming the key)."""
    budget = {key: _number(train[key]) for key in BUDGET_KEYS if train.get(key) is not None}
    if "budget_flops" in budget and "budget_tokens" in budget:
        raise BudgetError("train.budget_flops and train.budget_tokens: give one budget, not both")
    for key in ("budget_flops", "budget_tokens"):
        if key in budget:
            value = budget[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or not math.isfinite(value):
                raise BudgetError(f"train.{key} must be a positive number, got {value!r}")
    if "budget_warmup" in budget:
        share = budget["budget_warmup"]
        if "budget_flops" not in budget and "budget_tokens" not in budget:
            raise BudgetError("train.budget_warmup is a share of a budget's updates: give train.budget_flops "
                              "or train.budget_tokens too")
        if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 <= share < 1:
            raise BudgetError(f"train.budget_warmup must be a share in [0, 1), got {share!r}")
    return budget


def updates_for(budget: dict, flops_per_token: float, tokens_per_update: float) -> int:
    """The updates a budget buys (at least 1)."""
    tokens = budget["budget_tokens"] if "budget_tokens" in budget else budget["budget_flops"] / flops_per_token
    return max(1, round(tokens / tokens_per_update))


def budget_options(budget: dict, updates: int, lr_scheduler) -> dict:
    """The fairseq-train options a budget of ``updates`` sets (stopping replaced, decay and warm-up fitted)."""
    options = {"max_update": updates, "max_epoch": None, "stop_time_hours": None}
    if lr_scheduler in DECAY_TO_BUDGET:
        options["total_num_update"] = updates
    if "budget_warmup" in budget:
        options["warmup_updates"] = max(1, round(budget["budget_warmup"] * updates))
    return options


def measure(train_args: list, batches: int = FLOP_BATCHES) -> dict:
    """flops_per_token and tokens_per_update of a fairseq-train command line (its arguments)."""
    from nmt_suite.bench.flops import flops_per_target_token, spread, training_setup

    cfg, task, model, criterion, all_batches = training_setup(train_args)
    sizes = task.dataset("train").tgt_sizes
    epoch_tokens = int(sum(int(sizes[i]) for batch in all_batches for i in batch))
    update_freq = cfg.optimization.update_freq[0]
    world = max(1, cfg.distributed_training.distributed_world_size or 1)
    return {
        "flops_per_token": flops_per_target_token(task, model, criterion, spread(all_batches, batches)),
        "flop_batches": min(batches, len(all_batches)),
        "tokens_per_update": epoch_tokens / len(all_batches) * update_freq * world,
        "batches_per_epoch": len(all_batches),
        "target_tokens_per_epoch": epoch_tokens,
        "params": sum(p.numel() for p in model.parameters()),
    }


def main(argv=None) -> int:
    from nmt_suite.files import atomic_write_json

    argv = list(sys.argv[1:] if argv is None else argv)
    split = argv.index("--") if "--" in argv else len(argv)
    parser = argparse.ArgumentParser(prog="python -m nmt_suite.rungs.budget", description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="where the measurement goes (JSON)")
    parser.add_argument("--batches", type=int, default=FLOP_BATCHES, help="batches the FLOPs are counted on")
    args = parser.parse_args(argv[:split])
    found = measure(argv[split + 1:], args.batches)
    atomic_write_json(args.out, found)
    print(json.dumps(found))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
