"""The grids of an IsoFLOP study: FLOP budgets x a family of model sizes, and each point's rung overrides.

The size family scales width and depth together: step k has width ``d = base * 2**(k//2)``,
times 1.5 on odd steps (so the width doubles every two steps: 16, 24, 32, 48, 64, 96 ...). The
shape follows from the width alone, so families of different bases share their common sizes:
one encoder and one decoder layer below width 32 and one more per doubling (32-63: 2, 64-127: 3
...), a feed-forward width of 4d and heads of 16 dimensions (``max(1, d // 16)`` heads).
Every point trains ``transformer_prenorm`` with a
learning rate that falls as 1/sqrt(d) (capped at LR_CAP), warm-up over a tenth of its updates
and a linear decay to zero at the end of its budget, so each size gets a schedule fitted to
its budget (as Chinchilla's cosine cycles are).
"""
import dataclasses
import math

LR_AT_256 = 2e-3   # strong.yaml's peak for d_model 256
LR_CAP = 5e-3
WARMUP_SHARE = 0.1
HEAD_WIDTH = 16    # also the width below which a model has one layer


@dataclasses.dataclass(frozen=True)
class Size:
    width: int
    layers: int
    heads: int

    @property
    def name(self) -> str:
        return f"d{self.width}-l{self.layers}"

    @property
    def lr(self) -> float:
        return round(min(LR_CAP, LR_AT_256 * math.sqrt(256 / self.width)), 6)

    def train_overrides(self) -> dict:
        """fairseq-train options of this size (encoder and decoder alike)."""
        shape = {}
        for side in ("encoder", "decoder"):
            shape.update({f"{side}_embed_dim": self.width, f"{side}_ffn_embed_dim": 4 * self.width,
                          f"{side}_layers": self.layers, f"{side}_attention_heads": self.heads})
        return {**shape, "lr": self.lr}


def size_family(base: int, steps: int) -> list:
    """The first ``steps`` sizes of the family whose narrowest model is ``base`` wide (module docstring)."""
    return [size_of(base * 2 ** (k // 2) * (3 if k % 2 else 2) // 2) for k in range(steps)]


def size_of(width: int) -> Size:
    """The family's shape of a model ``width`` wide (module docstring)."""
    layers = 1 + max(0, (width // HEAD_WIDTH).bit_length() - 1)
    return Size(width=width, layers=layers, heads=max(1, width // HEAD_WIDTH))


@dataclasses.dataclass(frozen=True)
class Grid:
    """Budgets (FLOPs) x sizes, and the rung settings every point shares."""

    budgets: tuple
    sizes: tuple
    rung: str = "strong"
    settings: tuple = ()   # (key, value) overrides of the rung config, for every point

    def points(self):
        """(budget, size) of every point, smallest budget first."""
        return [(budget, size) for budget in self.budgets for size in self.sizes]


# every point: the budget is the only stop; no epoch checkpoints (the last weights are evaluated);
# greedy decoding of valid (its BLEU is a side figure, the fit uses the valid loss), whatever length penalty
# the rung's corpus block sets for its own runs. The plugin's
# fused criterion and Adam compute fairseq's loss and update (same losses to 3 decimals over 40
# ted-lowres updates) about 1.5x faster on a 32-wide model, whose step is mostly the N x V softmax.
POINT_SETTINGS = (
    ("train.arch", "transformer_prenorm"), ("train.lr_scheduler", "polynomial_decay"),
    ("train.criterion", "label_smoothed_cross_entropy_fused"), ("train.optimizer", "fused_adam"),
    ("train.warmup_updates", None), ("train.warmup_init_lr", None), ("train.budget_warmup", WARMUP_SHARE),
    ("train.dropout", 0.1), ("train.no_epoch_checkpoints", True), ("train.keep_last_epochs", None),
    ("train.save_interval_updates", None), ("train.keep_interval_updates", None),
    ("average.last", 1), ("generate.beam", 1), ("generate.lenpen", 1.0), ("plots", False),
)

GRIDS = {
    # sized for ted-lowres (36k pairs, 8k vocabulary) to fit two sessions on two CPU cores, where these
    # small models train at only ~10 GFLOP/s (their step is mostly the N x V softmax); widths 12 to 64
    # (base 8 without its first size): at 2e12 FLOPs the 16-wide model beat every wider one
    "default": Grid(budgets=(1e12, 2e12, 4e12, 8e12), sizes=tuple(size_family(8, 7)[1:]),
                       settings=(*POINT_SETTINGS, ("train.max_tokens", 4096), ("train.update_freq", 1))),
    # --quick, for the demo corpus: 15 small runs (each also pays a FLOP count and a decoding of
    # valid); at 1e10 FLOPs the 18-wide model already beats the 12- and 24-wide ones
    "quick": Grid(budgets=(1e10, 2e10, 4e10), sizes=tuple(size_family(12, 5)),
                 settings=(*POINT_SETTINGS, ("train.max_tokens", 1024))),
}


def override_value(value) -> str:
    """``value`` as a command-line override writes it (``train.x=null``, ``=true``)."""
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def budget_name(budget: float) -> str:
    """``3e12`` for 3e+12 (a folder name)."""
    mantissa, exponent = f"{budget:.3e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
