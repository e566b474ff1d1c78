"""Budgets in FLOPs or target tokens: checking, the updates they buy, the options they set."""
import pytest

from nmt_suite.rungs.budget import BudgetError, budget_options, check_budget, updates_for


@pytest.mark.parametrize("train, expected", [
    ({}, {}),
    ({"lr": 1e-3}, {}),
    ({"budget_flops": 1e14}, {"budget_flops": 1e14}),
    ({"budget_flops": "1e14"}, {"budget_flops": 1e14}),          # YAML 1.1 reads 1e14 as a string
    ({"budget_tokens": 5_000_000, "budget_warmup": 0.1}, {"budget_tokens": 5_000_000, "budget_warmup": 0.1}),
    ({"budget_flops": None}, {}),
])
def test_check_budget_accepts(train, expected):
    assert check_budget(train) == expected


@pytest.mark.parametrize("train, message", [
    ({"budget_flops": 1e14, "budget_tokens": 1e6}, "give one budget, not both"),
    ({"budget_flops": 0}, "train.budget_flops must be a positive number"),
    ({"budget_flops": -5.0}, "train.budget_flops must be a positive number"),
    ({"budget_flops": "lots"}, "train.budget_flops must be a positive number, got 'lots'"),
    ({"budget_tokens": True}, "train.budget_tokens must be a positive number"),
    ({"budget_flops": float("inf")}, "train.budget_flops must be a positive number"),
    ({"budget_warmup": 0.1}, "give train.budget_flops or train.budget_tokens too"),
    ({"budget_flops": 1e14, "budget_warmup": 1.0}, "train.budget_warmup must be a share in [0, 1)"),
])
def test_check_budget_refuses(train, message):
    with pytest.raises(BudgetError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        check_budget(train)


@pytest.mark.parametrize("budget, flops_per_token, tokens_per_update, updates", [
    ({"budget_flops": 1e12}, 1e6, 1000, 1000),
    ({"budget_flops": 1e12}, 2e6, 1000, 500),
    ({"budget_flops": 1e12}, 1e6, 3000, 333),
    ({"budget_tokens": 1e6}, 123.0, 1000, 1000),     # a token budget ignores the FLOPs per token
    ({"budget_flops": 1.0}, 1e6, 1000, 1),           # at least one update
])
def test_updates_for(budget, flops_per_token, tokens_per_update, updates):
    assert updates_for(budget, flops_per_token, tokens_per_update) == updates


@pytest.mark.parametrize("budget, scheduler, expected", [
    ({"budget_flops": 1e12}, "inverse_sqrt", {"max_update": 400, "max_epoch": None, "stop_time_hours": None}),
    ({"budget_flops": 1e12}, "polynomial_decay",
     {"max_update": 400, "max_epoch": None, "stop_time_hours": None, "total_num_update": 400}),
    ({"budget_flops": 1e12, "budget_warmup": 0.1}, "polynomial_decay",
     {"max_update": 400, "max_epoch": None, "stop_time_hours": None, "total_num_update": 400, "warmup_updates": 40}),
])
def test_budget_options(budget, scheduler, expected):
    assert budget_options(budget, 400, scheduler) == expected


def test_the_flop_counter_sees_a_grus_matmuls_on_the_cpu():
    """RNN rungs are budgeted in FLOPs too: on the CPU a GRU runs as matmuls, which torch's counter
    counts (forward 2 x 3 gates x (input + hidden) x hidden per step and direction; backward twice that,
    less the gradient of the zero initial state, which nothing needs)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    steps, batch, n_in, hidden = 7, 3, 16, 24
    gru = torch.nn.GRU(n_in, hidden, bidirectional=True)
    x = torch.randn(steps, batch, n_in, requires_grad=True)
    counter = FlopCounterMode(display=False)
    with counter:
        gru(x)[0].sum().backward()
    forward = 2 * steps * batch * 2 * 3 * (n_in + hidden) * hidden
    initial_state_grad = 2 * batch * 2 * 3 * hidden * hidden
    assert counter.get_total_flops() == 3 * forward - initial_state_grad
