"""The fits of an IsoFLOP study (pure numpy): a parabola per budget, then power laws over budgets.

Per budget C: valid loss = a x^2 + b x + c with x = log10(params); its vertex x* = -b / 2a is the
compute-optimal size N_opt(C) (a parabola that opens downwards has no optimum: ``vertex`` None).
The vertex' standard error comes from the fit's covariance by the delta method. The tokens
that size sees at C: D_opt = C / F(N_opt), where F (training FLOPs per target token) is a
log-log line through the measured points (so log D_opt's error is F's slope times log N_opt's).
Then log10 N_opt = alpha log10 C + k and log10 D_opt = beta log10 C + k' by least squares,
weighted by the vertices' errors (a flat parabola's optimum, known to +-0.3 in log10, counts for
little beside one known to +-0.01; the unweighted exponent is kept beside it); an exponent's
uncertainty is the larger of the residual scatter's and the one propagated from those errors.
"""
import math

import numpy as np


def _ols(x, y, sigma=None):
    """(slope, intercept, slope_se_scatter, slope_se_propagated) of a straight line through (x, y).

    With every ``sigma`` (y's standard errors) known and positive the line is weighted by 1/sigma^2,
    so a point known to +-0.01 counts for more than one known to +-0.3; the propagated error is then
    sqrt((X^T W X)^-1) and the scatter error that scaled by the reduced chi-square. Otherwise it is
    ordinary least squares (propagated error as for fixed sigma, when every sigma is known)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    design = np.stack([x, np.ones_like(x)], axis=1)
    dof = len(x) - 2
    known = sigma is not None and all(s is not None for s in sigma)
    if known and all(s > 0 for s in sigma):
        weights = 1 / np.asarray(sigma, float) ** 2
        inverse = np.linalg.inv(design.T @ (design * weights[:, None]))
        coef = inverse @ design.T @ (weights * y)
        chi2 = float(np.sum(weights * (y - design @ coef) ** 2))
        propagated = math.sqrt(inverse[0, 0])
        scatter = math.sqrt(chi2 / dof * inverse[0, 0]) if dof > 0 else math.nan
        return float(coef[0]), float(coef[1]), scatter, propagated
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    inverse = np.linalg.inv(design.T @ design)
    scatter = math.sqrt(float(np.sum((y - design @ coef) ** 2)) / dof * inverse[0, 0]) if dof > 0 else math.nan
    propagated = math.nan
    if known:
        # y_i carries sigma_i: var(slope) = (A (Sigma) A^T)[0, 0] with A = (X^T X)^-1 X^T
        lever = inverse @ design.T
        propagated = math.sqrt(float(np.sum(lever[0] ** 2 * np.asarray(sigma, float) ** 2)))
    return float(coef[0]), float(coef[1]), scatter, propagated


def parabola(params: list, losses: list) -> dict:
    """The parabola of loss over log10(params), its vertex and each point's residual."""
    x, y = np.log10(np.asarray(params, float)), np.asarray(losses, float)
    if len(x) < 3:
        raise ValueError(f"a parabola needs >= 3 points, got {len(x)}")
    design = np.stack([x ** 2, x, np.ones_like(x)], axis=1)
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    a, b, c = (float(v) for v in coef)
    residuals = y - design @ coef
    dof = len(x) - 3
    fit = {"a": a, "b": b, "c": c, "residuals": [float(r) for r in residuals],
           "rms_residual": float(np.sqrt(np.mean(residuals ** 2))), "vertex": None}
    if a <= 0:
        return fit
    x_star = -b / (2 * a)
    se = None  # 3 points fit a parabola exactly: no error to estimate
    if dof > 0:
        cov = np.linalg.inv(design.T @ design) * float(np.sum(residuals ** 2)) / dof
        grad = np.array([b / (2 * a * a), -1 / (2 * a), 0.0])  # d x* / d(a, b, c)
        se = math.sqrt(float(grad @ cov @ grad))
    fit["vertex"] = {"log10_params": x_star, "log10_params_se": se, "params": 10 ** x_star,
                     "loss": c - b * b / (4 * a),
                     "inside_grid": bool(x.min() <= x_star <= x.max())}
    return fit


def flops_per_token_law(measured: list):
    """(slope, intercept) of log10 FLOPs per target token over log10 params, from measured (params, flops) pairs."""
    slope, intercept, *_ = _ols([math.log10(p) for p, _ in measured], [math.log10(f) for _, f in measured])
    return slope, intercept


def power_laws(optima: list) -> dict:
    """N_opt(C) and D_opt(C) as power laws; ``optima``: dicts of budget, params, tokens
    and their standard errors in log10 (``log10_params_se``, ``log10_tokens_se``)."""
    if len(optima) < 2:
        return {"n_budgets": len(optima), "params": None, "tokens": None}
    log_c = [math.log10(o["budget"]) for o in optima]
    fits = {"n_budgets": len(optima)}
    for what in ("params", "tokens"):
        log_y, sigma = [math.log10(o[what]) for o in optima], [o[f"log10_{what}_se"] for o in optima]
        slope, intercept, scatter, propagated = _ols(log_c, log_y, sigma)
        known = [s for s in (scatter, propagated) if math.isfinite(s)]
        fits[what] = {"exponent": slope, "log10_coefficient": intercept,
                      "weighted": all(s is not None and s > 0 for s in sigma),
                      "exponent_unweighted": _ols(log_c, log_y)[0],
                      "exponent_se": max(known) if known else None,
                      "exponent_se_scatter": scatter if math.isfinite(scatter) else None,
                      "exponent_se_propagated": propagated if math.isfinite(propagated) else None}
    return fits


def predict(laws: dict, budget: float) -> dict:
    """N_opt and D_opt the power laws predict at ``budget``."""
    return {what: 10 ** (laws[what]["exponent"] * math.log10(budget) + laws[what]["log10_coefficient"])
            for what in ("params", "tokens") if laws.get(what)}
