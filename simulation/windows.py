"""Walk-forward window schedule, counted in bars (DESIGN section 1).

Window ``k`` has cut-off bar ``c_k``; its train slice is the ``train_window`` bars ending at ``c_k``
(``rolling``) or every bar from ``start - train_window + 1`` to ``c_k`` (``expanding``); orders fill at
the close of ``c_k + gap``; the test slice is bars ``c_k + 1 .. c_k + step_size``; the next cut-off is
``c_k + step_size``.

Last partial window rule: when fewer than ``step_size`` bars remain after the last cut-off, the window
is kept with ``n_test < step_size`` if it has more than ``gap`` test bars (so that at least one bar is
earned by its own holdings), and dropped otherwise.
"""
from __future__ import annotations

from contracts.errors import ConfigError, DataError
from contracts.window import Window

MODES = ("rolling", "expanding")


def make_windows(n_bars: int, train_window: int, step_size: int, gap: int = 1,
                 mode: str = "rolling", start: int | None = None) -> list[Window]:
    """Windows over a panel of ``n_bars`` bars (bar indices 0-based).

    The first cut-off is ``train_window - 1`` (or ``start``, which must leave ``train_window`` bars of
    train history). Raises ``ConfigError`` for bad settings and ``DataError`` when the data is shorter
    than one window (``train_window`` train bars plus at least ``gap + 1`` test bars).
    """
    for name, value, low in (("train_window", train_window, 1), ("step_size", step_size, 1),
                             ("gap", gap, 0), ("n_bars", n_bars, 0)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ConfigError(f"make_windows: {name} must be an integer >= {low}, got {value!r}")
    if mode not in MODES:
        raise ConfigError(f"make_windows: mode {mode!r} is not one of {MODES}")
    if gap >= step_size:
        raise ConfigError(f"make_windows: gap {gap} must be smaller than step_size {step_size} "
                          "(a window must earn at least one bar with its own holdings)")
    first = train_window - 1 if start is None else start
    if not isinstance(first, int) or first < train_window - 1:
        raise ConfigError(f"make_windows: start {start!r} leaves fewer than train_window={train_window} "
                          "train bars before it")
    need = first + gap + 2  # bars 0..first, then gap + 1 test bars
    if n_bars < need:
        raise DataError(f"make_windows: {n_bars} bars are shorter than one window: the first cut-off is "
                        f"bar {first} (train_window={train_window}) and a window needs at least "
                        f"gap+1={gap + 1} test bars, i.e. {need} bars")
    windows: list[Window] = []
    c = first
    while True:
        n_test = min(step_size, n_bars - 1 - c)
        if n_test <= gap:  # last partial window without a bar of its own: dropped
            break
        train_start = c - train_window + 1 if mode == "rolling" else first - train_window + 1
        windows.append(Window(index=len(windows), cutoff=c, train_start=train_start,
                              step_size=step_size, gap=gap, n_test=n_test))
        if n_test < step_size:
            break
        c += step_size
    return windows
