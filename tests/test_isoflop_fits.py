"""IsoFLOP fits on synthetic points with known answers, and the size family's rule."""
import math

import numpy as np
import pytest

from nmt_suite.isoflop import fits
from nmt_suite.isoflop.grid import budget_name, size_family


def test_parabola_recovers_a_known_vertex_and_residuals():
    params = [1e5, 3e5, 1e6, 3e6, 1e7]
    x = np.log10(params)
    losses = 2.0 * (x - 6.2) ** 2 + 3.0
    fit = fits.parabola(params, list(losses))
    assert fit["vertex"]["log10_params"] == pytest.approx(6.2)
    assert fit["vertex"]["loss"] == pytest.approx(3.0)
    assert fit["vertex"]["inside_grid"]
    assert max(abs(r) for r in fit["residuals"]) < 1e-9
    noisy = list(losses + np.array([0.1, -0.1, 0.05, 0.0, -0.05]))
    assert fits.parabola(params, noisy)["vertex"]["log10_params_se"] > 0


def test_a_parabola_opening_downwards_has_no_optimum():
    params = [1e5, 1e6, 1e7]
    assert fits.parabola(params, [1.0, 2.0, 1.0])["vertex"] is None
    with pytest.raises(ValueError, match=">= 3 points"):
        fits.parabola(params[:2], [1.0, 2.0])


def test_power_laws_recover_known_exponents():
    budgets = [1e12, 1e13, 1e14, 1e15]
    optima = [{"budget": c, "params": 3.0 * c ** 0.5, "tokens": 0.1 * c ** 0.45,
               "log10_params_se": 0.05, "log10_tokens_se": 0.05} for c in budgets]
    laws = fits.power_laws(optima)
    assert laws["params"]["exponent"] == pytest.approx(0.5, rel=1e-4)
    assert laws["tokens"]["exponent"] == pytest.approx(0.45)
    assert laws["params"]["exponent_se"] == pytest.approx(laws["params"]["exponent_se_propagated"])
    assert fits.predict(laws, 1e16)["params"] == pytest.approx(3.0 * 1e8)
    assert math.isfinite(laws["params"]["log10_coefficient"])


def test_power_laws_weight_each_optimum_by_its_error():
    # two well-measured optima on C^0.5, one badly measured far off the line
    optima = [{"budget": c, "params": 3.0 * c ** 0.5 * shift, "tokens": c ** 0.5, "log10_params_se": se,
               "log10_tokens_se": 0.01} for c, shift, se in [(1e12, 10.0, 0.3), (4e12, 1.0, 0.01), (8e12, 1.0, 0.01)]]
    law = fits.power_laws(optima)["params"]
    assert law["weighted"] and law["exponent"] == pytest.approx(0.5, abs=0.03)
    assert law["exponent_unweighted"] < 0.0  # the flat optimum pulls the unweighted line over
    assert law["exponent_se_propagated"] < law["exponent_se_scatter"]  # the outlier's chi-square shows


@pytest.mark.parametrize("base, steps, expected", [
    (16, 5, [(16, 1, 1), (24, 1, 1), (32, 2, 2), (48, 2, 3), (64, 3, 4)]),
    (8, 4, [(8, 1, 1), (12, 1, 1), (16, 1, 1), (24, 1, 1)]),   # a smaller base extends the family downwards
    (12, 5, [(12, 1, 1), (18, 1, 1), (24, 1, 1), (36, 2, 2), (48, 2, 3)]),
    (64, 4, [(64, 3, 4), (96, 3, 6), (128, 4, 8), (192, 4, 12)]),
])
def test_size_family(base, steps, expected):
    sizes = size_family(base, steps)
    assert [(s.width, s.layers, s.heads) for s in sizes] == expected
    assert all(s.width % s.heads == 0 for s in sizes)
    assert [s.lr for s in sizes] == sorted((s.lr for s in sizes), reverse=True)


@pytest.mark.parametrize("budget, name", [(1e12, "1e12"), (3e12, "3e12"), (1.5e11, "1.5e11"), (2.5e11, "2.5e11")])
def test_budget_name(budget, name):
    assert budget_name(budget) == name


def _synthetic_study():
    """Points of three budgets whose loss parabolas have vertices at log10 N = 0.5 log10 C (inside the grid)."""
    from nmt_suite.isoflop.study import fit_study

    points = []
    for budget in (1e10, 1e11, 1e12):
        for k, log_n in enumerate((4.5, 5.0, 5.5, 6.0, 6.5)):
            n = 10 ** log_n
            points.append({"budget_flops": budget, "size": f"s{k}", "params": round(n), "flops_per_token": 6 * n,
                           "tokens": round(budget / (6 * n)), "train_flops": budget, "updates": 100 - k,
                           "valid_loss": 5 + (log_n - 0.5 * math.log10(budget)) ** 2, "valid_bleu": 1.0,
                           "train_wall_s": 1.0, "wall_s": 2.0})
    return {"corpus": "synthetic", "seed": 1, "loss": "bits", "points": points,
            "grid": {"budgets": [1e10, 1e11, 1e12], "sizes": [f"s{k}" for k in range(5)], "rung": "strong",
                     "size_rule": "test", "settings": {"train.dropout": 0.1, "plots": False}},
            "fits": fit_study(points, 1e14), "train_wall_s": 15.0, "points_wall_s": 30.0, "arguments": ["--corpus", "x"]}


def test_a_study_of_several_budgets_is_fitted_plotted_and_reported(tmp_path):
    from nmt_suite.isoflop.plots import plot_isoflop, plot_scaling
    from nmt_suite.isoflop.report import render

    study = _synthetic_study()
    laws = study["fits"]["power_laws"]
    assert laws["n_budgets"] == 3 and laws["params"]["exponent"] == pytest.approx(0.5, rel=1e-4)
    assert laws["tokens"]["exponent"] == pytest.approx(0.5, rel=1e-4)   # D = C / 6N
    assert study["fits"]["prediction"]["params"] == pytest.approx(1e7, rel=1e-3)
    plot_isoflop(study, tmp_path / "isoflop.png")
    plot_scaling(study, tmp_path / "scaling.png")
    for name in ("isoflop.png", "scaling.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = render(study)
    assert "· C^0.500, exponent ±" in page and "| 1e11 | 316,2" in page and "| 5.500 ±" in page
    assert "`plots=false`" in page and page.count("| inside the grid |") == 3
