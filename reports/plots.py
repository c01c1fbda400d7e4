"""Plots of the tournament page (matplotlib, Agg canvas, no pyplot state).

Every function draws one PNG file at ``out`` and returns its path; figures are built with
``matplotlib.figure.Figure`` (not pyplot), so nothing global is touched and nothing stays open.
Inputs are plain pandas/numpy objects prepared by ``reports.tournament_page``; the numbers plotted
are also in the page's tables.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

DPI = 90
#: log-scale floor for an equity that reached 0 (liquidated): shown at this value with a marker.
EQUITY_FLOOR = 1e-3


def _save(fig: Figure, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=DPI, bbox_inches="tight")
    return out


def heatmap(panels: Mapping[str, pd.DataFrame], out: Path, *, title: str = "Sharpe") -> Path:
    """One panel per key (e.g. ``step 20``): rows engines, columns profiles, values annotated.
    The colour scale is symmetric around 0 and common to all panels."""
    n = max(len(panels), 1)
    frames = list(panels.values())
    vmax = max([float(np.nanmax(np.abs(f.to_numpy(dtype=float)))) for f in frames
                if f.size and np.isfinite(f.to_numpy(dtype=float)).any()] + [1e-9])
    ncols = frames[0].shape[1] if frames else 1
    nrows = frames[0].shape[0] if frames else 1
    fig = Figure(figsize=(min(4.0 + 1.1 * ncols, 12) * n if n <= 2 else 6.5 * n, 1.3 + 0.5 * nrows))
    for i, (name, f) in enumerate(panels.items()):
        ax = fig.add_subplot(1, n, i + 1)
        vals = f.to_numpy(dtype=float)
        im = ax.imshow(vals, cmap="RdYlGn", vmin=-vmax, vmax=vmax, aspect="auto")
        ax.set_xticks(range(f.shape[1]), [str(c) for c in f.columns], rotation=35, ha="right", fontsize=8)
        ax.set_yticks(range(f.shape[0]), [str(r) for r in f.index], fontsize=8)
        for (r, c), v in np.ndenumerate(vals):
            ax.text(c, r, "n/a" if not math.isfinite(v) else f"{v:.2f}", ha="center", va="center", fontsize=8)
        ax.set_title(f"{title}: {name}", fontsize=10)
        fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02)
    return _save(fig, out)


def equity_and_drawdown(series: Mapping[str, tuple[pd.Series, pd.Series]],
                        liquidations: Mapping[str, pd.Timestamp], out: Path, *, title: str) -> Path:
    """Equity (log scale, initial capital 1) and drawdown (<= 0) per label; liquidated lines end
    with an ``x`` at the liquidation date (equity plotted at ``EQUITY_FLOOR`` there). The drawdown
    axis spans the deepest drawdown (down to -1 when a cell is liquidated)."""
    fig = Figure(figsize=(11, 5.2))
    ax1 = fig.add_subplot(2, 1, 1)
    ax2 = fig.add_subplot(2, 1, 2, sharex=ax1)
    for label, (eq, dd) in series.items():
        x = eq.index
        y = eq.to_numpy(dtype=float)
        y = np.where(y > 0, y, np.nan)
        (line,) = ax1.plot(x, y, lw=1.1, label=label)
        ax2.plot(dd.index, dd.to_numpy(dtype=float), lw=0.9, color=line.get_color())
        if label in liquidations:
            t = liquidations[label]
            ax1.plot([t], [EQUITY_FLOOR], marker="x", ms=9, mew=2, color=line.get_color())
            ax2.plot([t], [-1.0], marker="x", ms=9, mew=2, color=line.get_color())
    ax1.set_yscale("log")
    ax1.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax1.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax1.yaxis.set_minor_formatter(NullFormatter())
    ax1.axhline(1.0, color="#999", lw=0.6)
    ax1.set_ylabel("equity (log)")
    ax1.set_title(title, fontsize=10)
    ax1.legend(fontsize=7, ncol=4, loc="best")
    ax2.set_ylabel("drawdown")
    lows = [float(np.nanmin(dd.to_numpy(dtype=float))) for _, dd in series.values() if len(dd)]
    floor = -1.02 if liquidations else min(min(lows, default=-0.05) * 1.1, -0.05)
    ax2.set_ylim(floor, 0.01)
    loc = AutoDateLocator()
    ax2.xaxis.set_major_locator(loc)
    ax2.xaxis.set_major_formatter(ConciseDateFormatter(loc))
    ax1.tick_params(labelbottom=False)
    return _save(fig, out)


def vol_bands(points: pd.DataFrame, bands: Mapping[str, tuple[float, float]], out: Path) -> Path:
    """Realised annual volatility per cell (points; columns profile, label, vol) against each
    profile's band (grey bar; a point band shown as a line), DRIFT threshold 0.25 dotted."""
    profiles = list(bands)
    fig = Figure(figsize=(min(2 + 1.5 * len(profiles), 12), 3.6))
    ax = fig.add_subplot(1, 1, 1)
    for i, p in enumerate(profiles):
        lo, hi = bands[p]
        ax.fill_between([i - 0.4, i + 0.4], [lo] * 2, [max(hi, lo + 0.004)] * 2, color="#9db3d6", alpha=0.8)
        ax.plot([i - 0.4, i + 0.4], [max(lo - 0.25, 0)] * 2, ls=":", color="#c44", lw=0.8)
        ax.plot([i - 0.4, i + 0.4], [hi + 0.25] * 2, ls=":", color="#c44", lw=0.8)
        sub = points[points["profile"] == p]
        xs = i + np.linspace(-0.3, 0.3, max(len(sub), 1))[: len(sub)]
        ax.scatter(xs, sub["vol"].to_numpy(dtype=float), s=22, zorder=3, color="#1d2b45")
        for x, (_, r) in zip(xs, sub.iterrows()):
            ax.annotate(str(r["label"]), (x, float(r["vol"])), fontsize=6, xytext=(3, 2),
                        textcoords="offset points")
    ax.set_xticks(range(len(profiles)), profiles, fontsize=8)
    ax.set_ylabel("annualised vol (fraction)")
    ax.set_title("Realised volatility vs band (dotted: DRIFT at 0.25 from the band)", fontsize=10)
    return _save(fig, out)


def pbo_histogram(lambdas: Sequence[float], pbo: float | None, out: Path) -> Path:
    """Histogram of the CSCV logits lambda; the mass at lambda <= 0 is the PBO."""
    lam = np.asarray([x for x in lambdas if x is not None and math.isfinite(x)], dtype=float)
    fig = Figure(figsize=(6.5, 3.2))
    ax = fig.add_subplot(1, 1, 1)
    if lam.size:
        ax.hist(lam, bins=min(40, max(5, lam.size // 5)), color="#4a78c2", edgecolor="white")
    ax.axvline(0.0, color="#c44", lw=1.2)
    ax.set_xlabel("logit lambda of the in-sample best trial's out-of-sample rank")
    ax.set_ylabel("combinations")
    ax.set_title(f"PBO = {pbo:.3f}" if pbo is not None else "PBO n/a", fontsize=10)
    return _save(fig, out)


def bars(labels: Sequence[str], values: Sequence[float], out: Path, *, title: str, ylabel: str,
         hline: float | None = None) -> Path:
    """Vertical bars (e.g. DSR per trial cell), NaN shown as an empty slot."""
    fig = Figure(figsize=(min(2 + 0.32 * len(labels), 16), 3.6))
    ax = fig.add_subplot(1, 1, 1)
    v = np.asarray(values, dtype=float)
    ax.bar(range(len(v)), np.nan_to_num(v, nan=0.0), color=np.where(np.isfinite(v), "#4a78c2", "#ccc"))
    ax.set_xticks(range(len(v)), labels, rotation=60, ha="right", fontsize=6.5)
    if hline is not None:
        ax.axhline(hline, color="#c44", lw=0.8, ls="--")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    return _save(fig, out)


def stacked_stages(counts: pd.DataFrame, out: Path) -> Path:
    """Stacked bars: rows engines, columns HTR stages, values window counts."""
    fig = Figure(figsize=(min(2.5 + 0.9 * len(counts), 11), 3.4))
    ax = fig.add_subplot(1, 1, 1)
    bottom = np.zeros(len(counts))
    for col in counts.columns:
        v = counts[col].to_numpy(dtype=float)
        ax.bar(range(len(counts)), v, bottom=bottom, label=f"stage {col}")
        bottom += v
    ax.set_xticks(range(len(counts)), [str(i) for i in counts.index], rotation=20, fontsize=8)
    ax.set_ylabel("windows")
    ax.legend(fontsize=7)
    ax.set_title("HTR stage reached per engine", fontsize=10)
    return _save(fig, out)
