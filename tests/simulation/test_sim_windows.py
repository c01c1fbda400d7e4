"""Window schedule in bars (DESIGN section 1)."""
from __future__ import annotations

import pytest

from contracts.errors import ConfigError, DataError
from simulation import make_windows


@pytest.mark.parametrize("step", [5, 20, 60])
def test_cutoffs_fills_and_test_slices(step):
    n, train = 400, 100
    wins = make_windows(n, train, step, gap=1)
    assert wins[0].cutoff == train - 1 and wins[0].train_start == 0
    for k, (a, b) in enumerate(zip(wins, wins[1:])):
        assert a.index == k
        assert b.cutoff == a.cutoff + step           # next cut-off = c + step_size
        assert a.test_start == a.cutoff + 1 and a.test_end == a.cutoff + step
        assert a.fill_bar == a.cutoff + 1            # fill at the close of c + gap
        assert a.train_length == train               # rolling
    # test slices tile the bars after the first cut-off, up to the last bar
    covered = [t for w in wins for t in range(w.test_start, w.test_end + 1)]
    assert covered == list(range(train, covered[-1] + 1))
    assert n - 1 - covered[-1] <= 1  # at most gap bars left over (dropped partial window)


def test_last_partial_window_rule():
    # 100 bars, train 50, step 20: cut-offs 49, 69, 89; after 89 there are 10 bars -> kept, n_test 10
    wins = make_windows(100, 50, 20, gap=1)
    assert [w.cutoff for w in wins] == [49, 69, 89]
    assert wins[-1].n_test == 10 and wins[-1].test_end == 99
    # 91 bars: after cut-off 89 only bar 90 remains = gap bars -> no bar of its own -> dropped
    wins = make_windows(91, 50, 20, gap=1)
    assert [w.cutoff for w in wins] == [49, 69] and wins[-1].n_test == 20
    # 92 bars: two bars after 89 (> gap) -> kept with n_test 2
    assert make_windows(92, 50, 20, gap=1)[-1].n_test == 2


def test_expanding_and_start():
    wins = make_windows(300, 50, 20, mode="expanding", start=99)
    assert wins[0].cutoff == 99
    assert all(w.train_start == 50 for w in wins)  # first train slice is bars 50..99, then grows
    assert wins[1].train_length == 70


def test_too_short_names_the_numbers():
    with pytest.raises(DataError, match="52 bars.*train_window=50.*53"):
        make_windows(52, 50, 20, gap=2)
    make_windows(53, 50, 20, gap=2)  # exactly one window: 50 train bars + gap + 1 test bars


@pytest.mark.parametrize("kwargs", [dict(gap=20), dict(mode="sliding"), dict(start=10), dict(gap=-1)])
def test_bad_config(kwargs):
    with pytest.raises(ConfigError):
        make_windows(500, 50, 20, **kwargs)
