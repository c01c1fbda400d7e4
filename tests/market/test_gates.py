"""Gates (SELECTION_SPEC section 6) against a plain loop, and their timing (computed up to t-1-gap)."""
import numpy as np
import pandas as pd
import pytest

from contracts import Direction, Logic, StrategyAtom
from market.gates import atom_returns, gates


def _loop_gate(c, logic, d, gap):
    """Plain-Python oracle: g_t from closes up to t-1-gap."""
    n = len(c)
    g = np.zeros(n)
    for t in range(n):
        j = t - 1 - gap
        if j < 0:
            continue
        if logic == "rating":
            g[t] = 1.0
        elif logic == "trend":
            if j < 20:
                continue
            m = np.mean([c[i] / c[i - 1] - 1 for i in range(j - 19, j + 1)])
            g[t] = 1.0 if np.sign(m) * d > 0 else 0.0
        elif logic == "mom":
            if j < 60:
                continue
            x = c[j] / c[j - 60] - 1
            g[t] = 1.0 if np.sign(x) * d > 0 else 0.0
        else:
            if j < 19:
                continue
            ma = np.mean(c[j - 19: j + 1])
            g[t] = 1.0 if (c[j] < ma if d > 0 else c[j] > ma) else 0.0
    return g


@pytest.mark.parametrize("logic", ["rating", "trend", "mom", "rev"])
@pytest.mark.parametrize("d", [1, -1])
@pytest.mark.parametrize("gap", [0, 1, 2])
def test_gates_match_loop(logic, d, gap):
    c = 100 * np.cumprod(1 + np.random.default_rng(5).normal(0, 0.02, 200))
    g = gates(c[:, None], Logic(logic), d, gap)[:, 0]
    np.testing.assert_array_equal(g, _loop_gate(c, logic, d, gap))


def test_gate_ignores_the_close_at_t_minus_1():
    c = 100 * np.cumprod(1 + np.random.default_rng(1).normal(0, 0.02, 150))
    g = gates(c[:, None], Logic.TREND, 1, 1)[:, 0]
    c2 = c.copy()
    c2[120] *= 3.0  # bar t-1 for t = 121
    g2 = gates(c2[:, None], Logic.TREND, 1, 1)[:, 0]
    assert g2[121] == g[121]


def test_short_atom_stream_sign():
    idx = pd.date_range("2022-01-01", periods=100, tz="UTC")
    closes = pd.DataFrame({"AAA": 100 * 0.99 ** np.arange(100)}, index=idx)
    a = StrategyAtom(id="AAA_rating_SHORT", symbol="AAA", identity="AAA", direction=Direction.SHORT,
                     logic=Logic.RATING, cluster=0)
    s = atom_returns(closes, [a])
    assert (s.iloc[2:, 0] > 0).all()  # a SHORT of a falling asset earns
    assert s.iloc[2, 0] == pytest.approx(0.01)
