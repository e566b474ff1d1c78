"""The two figures of an IsoFLOP study, from its isoflop.json content."""
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from nmt_suite.files import atomic_open  # noqa: E402


def _save(fig, path) -> None:
    with atomic_open(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=120)
    plt.close(fig)


def plot_isoflop(study: dict, path) -> None:
    """Valid loss against params, one curve per budget: points, fitted parabola, marked optimum."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    parabolas = study["fits"]["parabolas"]
    colors = plt.cm.viridis(np.linspace(0, 0.85, max(1, len(parabolas))))
    for color, (name, fit) in zip(colors, parabolas.items()):
        at = [p for p in study["points"] if p["budget_flops"] == fit["budget_flops"]]
        params = np.array([p["params"] for p in at], float)
        ax.scatter(params, [p["valid_loss"] for p in at], color=color, zorder=3)
        x = np.linspace(math.log10(params.min()) - 0.05, math.log10(params.max()) + 0.05, 100)
        ax.plot(10 ** x, fit["a"] * x ** 2 + fit["b"] * x + fit["c"], color=color, label=f"{name} FLOPs")
        if fit["vertex"]:
            ax.scatter([fit["vertex"]["params"]], [fit["vertex"]["loss"]], marker="*", s=180, color=color,
                       edgecolor="black", zorder=4)
    ax.set_xscale("log")
    ax.set_xlabel("parameters")
    ax.set_ylabel("valid loss (bits per target token)")
    ax.set_title(f"IsoFLOP profiles, {study['corpus']} (star: fitted optimum)")
    ax.legend()
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    _save(fig, path)


def plot_scaling(study: dict, path) -> None:
    """N_opt and D_opt against the budget, log-log, with the power-law fits and the prediction."""
    fits = study["fits"]
    optima = [(f["budget_flops"], f["vertex"]) for f in fits["parabolas"].values() if f["vertex"]]
    prediction = fits.get("prediction")
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, what, label in ((axes[0], "params", "N_opt (parameters)"), (axes[1], "tokens", "D_opt (target tokens)")):
        budgets = [c for c, v in optima if v["inside_grid"]]
        values = np.array([v[what] for _, v in optima if v["inside_grid"]])
        # one standard error of log10 N_opt (D_opt's: F's slope times it), drawn on the log axis
        slope = 1.0 if what == "params" else abs(fits["flops_per_token"]["exponent"])
        se = np.array([slope * (v["log10_params_se"] or 0.0) for _, v in optima if v["inside_grid"]])
        ax.errorbar(budgets, values, yerr=[values - values / 10 ** se, values * 10 ** se - values], fmt="o",
                    color="tab:blue", capsize=3, zorder=3, label="parabola vertices (± 1 SE)")
        outside = [(c, v) for c, v in optima if not v["inside_grid"]]
        if outside:  # extrapolations: drawn, not fitted
            ax.scatter([c for c, _ in outside], [v[what] for _, v in outside], facecolors="none",
                       edgecolors="tab:blue", zorder=3, label="vertices outside the grid (not fitted)")
        law = fits["power_laws"].get(what)
        if law and budgets:
            top = max([*budgets, prediction["budget_flops"] if prediction else 0])
            c = np.logspace(math.log10(min(budgets)) - 0.1, math.log10(top) + 0.1, 50)
            se = f" ± {law['exponent_se']:.2f}" if law["exponent_se"] is not None else ""
            ax.plot(c, 10 ** (law["exponent"] * np.log10(c) + law["log10_coefficient"]), color="tab:orange",
                    label=f"∝ C^{law['exponent']:.2f}{se}")
        if prediction and what in prediction:
            ax.scatter([prediction["budget_flops"]], [prediction[what]], marker="*", s=180, color="tab:red",
                       zorder=4, label=f"prediction at {prediction['budget_flops']:.2g}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("compute C (training FLOPs)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.suptitle(f"Compute-optimal size and data, {study['corpus']}")
    fig.tight_layout()
    _save(fig, path)
