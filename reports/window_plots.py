"""The per-window plot: the cluster dendrogram(s) from the stored scipy linkage.

Engines whose stored linkage is identical (v4 and its challengers share one partition) are drawn
once, titled with all their names. Leaves are numbered left to right; the page lists them in
that order with each leaf's candidate id, cluster and whether it won. The dashed
line is the partition's distance cut (0.7, DESIGN section 4; a ``maxclust`` fallback cuts
elsewhere, as the window's partition event says).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from scipy.cluster.hierarchy import dendrogram

MAX_TICKS = 8
CUT = 0.7
DPI = 80


def valid_linkage(z: np.ndarray) -> bool:
    """A scipy linkage matrix over ``n = len(z) + 1`` leaves: shape (n-1, 4), finite, row ``i``
    merges two distinct clusters among the leaves and rows before it (ids ``< n + i``), each used
    once, at a non-negative distance, with a count of at least 2. (Checked here because
    ``scipy.cluster.hierarchy.is_valid_linkage`` accepts out-of-range ids in the installed scipy.)"""
    if z.ndim != 2 or z.shape[1] != 4 or z.shape[0] < 1 or not np.isfinite(z).all():
        return False
    n = z.shape[0] + 1
    ids = z[:, :2]
    if (ids != np.round(ids)).any() or (z[:, 2] < 0).any() or (z[:, 3] < 2).any():
        return False
    limit = n + np.arange(z.shape[0])[:, None]
    if (ids < 0).any() or (ids >= limit).any() or (ids[:, 0] == ids[:, 1]).any():
        return False
    flat = ids.ravel()
    return len(np.unique(flat)) == flat.size


def distinct_linkages(engines: Mapping[str, Mapping[str, Any]]) -> list[tuple[list[str], np.ndarray, list[str]]]:
    """[(engine names, linkage matrix, labels)] for each distinct valid linkage, in engine order.

    A linkage that fails ``valid_linkage`` (or has fewer than 2 leaves) is skipped."""
    groups: dict[str, tuple[list[str], np.ndarray, list[str]]] = {}
    for name, e in engines.items():
        link = e.get("linkage")
        if not link:
            continue
        try:
            z = np.asarray(link, dtype=float)
        except (TypeError, ValueError):
            continue
        if not valid_linkage(z):
            continue
        labels = [str(x) for x in (e.get("linkage_labels") or [])]
        if len(labels) != z.shape[0] + 1:
            labels = [str(i) for i in range(z.shape[0] + 1)]
        key = json.dumps([link, labels])
        if key in groups:
            groups[key][0].append(name)
        else:
            groups[key] = ([name], z, labels)
    return list(groups.values())


class DendrogramCanvas:
    """Reusable figures for the window dendrograms (one per panel count), passed explicitly.

    Building a matplotlib figure (axes, spines, ticks) costs more than drawing it; a canvas keeps one
    figure per panel count and only swaps the line segments, limits, ticks and titles, so that a
    worker rendering many windows pays the set-up once. ``figures_built`` counts the set-ups.

    Coordinates come from ``scipy.cluster.hierarchy.dendrogram(no_plot=True)`` and are drawn as one
    ``LineCollection`` per panel with a fixed layout (no tight bounding box). Rotated leaf labels
    would be most of the cost (about 10 ms each; text is what costs), so the x axis shows at most
    ``MAX_TICKS`` leaf numbers, the y axis 4 ticks, and the page lists the leaves in order in a table.
    """

    def __init__(self) -> None:
        self._figs: dict[int, tuple[Figure, list, list[LineCollection]]] = {}
        self.figures_built = 0

    def _figure(self, n: int) -> tuple[Figure, list, list[LineCollection]]:
        if n not in self._figs:
            fig = Figure(figsize=(9.5, 2.4 * n))
            fig.subplots_adjust(left=0.07, right=0.99, top=1 - 0.25 / n, bottom=0.35 / n, hspace=0.55)
            axes, colls = [], []
            for i in range(n):
                ax = fig.add_subplot(n, 1, i + 1)
                coll = LineCollection([], linewidths=1.0)
                ax.add_collection(coll)
                ax.axhline(CUT, color="#c44", lw=0.8, ls="--")
                ax.yaxis.set_major_locator(MaxNLocator(4))
                ax.tick_params(axis="y", labelsize=7)
                ax.tick_params(axis="x", labelsize=7)
                axes.append(ax)
                colls.append(coll)
            self._figs[n] = (fig, axes, colls)
            self.figures_built += 1
        return self._figs[n]

    def draw(self, groups: list[tuple[list[str], np.ndarray, list[str]]], out: Path) -> Path | None:
        """Draw one panel per distinct linkage into ``out``; None when there is none."""
        if not groups:
            return None
        fig, axes, colls = self._figure(len(groups))
        for ax, coll, (names, z, labels) in zip(axes, colls, groups):
            d = dendrogram(z, no_plot=True, labels=labels, color_threshold=CUT)
            coll.set_segments([np.column_stack([ic, dc]) for ic, dc in zip(d["icoord"], d["dcoord"])])
            coll.set_color(d["color_list"])
            m = len(d["ivl"])
            top = max((max(dc) for dc in d["dcoord"]), default=1.0)
            ax.set_xlim(0, 10 * m)
            ax.set_ylim(0, max(top, CUT) * 1.05)
            every = max(1, int(np.ceil(m / MAX_TICKS)))
            pos = np.arange(0, m, every)
            ax.set_xticks(5 + 10 * pos, [str(p + 1) for p in pos])
            ax.set_title(f"{', '.join(names)}: {len(labels)} candidates (y: Ward distance, x: leaf #)", fontsize=9)
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=DPI)
        return out


def leaf_order(z: np.ndarray, labels: list[str]) -> list[str]:
    """Leaf labels left to right as the dendrogram draws them."""
    return list(dendrogram(z, no_plot=True, labels=labels)["ivl"])
