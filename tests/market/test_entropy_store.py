"""Persistent entropy null tables (market/entropy.py ``EntropyNullCache.store``): a stored table is
the simulated one bit for bit, a key that differs is never read, a damaged file is re-simulated
and rewritten."""
from __future__ import annotations

import numpy as np
import pytest

import market.entropy as entropy
from market.entropy import EntropyNullCache

N = 400


def test_stored_tables_equal_simulated_ones_bit_for_bit(tmp_path) -> None:
    ref = EntropyNullCache(n_series=N)
    cold = EntropyNullCache(n_series=N, store=tmp_path)
    for length in (14, 30, 61):
        assert cold.null(length).tobytes() == ref.null(length).tobytes()
    assert len(list(tmp_path.glob("*.npz"))) == 3 and not list(tmp_path.glob(".tmp-*"))
    warm = EntropyNullCache(n_series=N, store=tmp_path)
    warm._simulate = lambda length: pytest.fail("a stored table was simulated again")  # type: ignore[method-assign]
    for length in (61, 14, 30):
        assert warm.null(length).tobytes() == ref.null(length).tobytes()
    raw = np.array([0.5, 0.9, 0.99, np.nan])
    assert np.array_equal(warm.percentile(raw, np.array([26, 26, 57, 26])),
                          ref.percentile(raw, np.array([26, 26, 57, 26])))


def test_every_parameter_the_numpy_version_and_the_code_are_in_the_key(tmp_path, monkeypatch) -> None:
    base = EntropyNullCache(n_series=N, store=tmp_path)
    key = (30, base.order, N, base.seed)
    paths = {base.path(key), base.path((31, base.order, N, base.seed)),
             base.path((30, base.order + 1, N, base.seed)), base.path((30, base.order, N + 1, base.seed)),
             base.path((30, base.order, N, base.seed + 1))}
    monkeypatch.setattr(np, "__version__", "0.0.0")
    paths.add(base.path(key))
    monkeypatch.undo()
    monkeypatch.setattr(entropy, "_SOURCE_DIGEST", "changed code")
    paths.add(base.path(key))
    assert len(paths) == 7


@pytest.mark.parametrize("damage", ["garbage", "empty", "other_table"])
def test_a_damaged_table_is_simulated_again_and_rewritten(damage: str, tmp_path) -> None:
    ref = EntropyNullCache(n_series=N).null(30)
    EntropyNullCache(n_series=N, store=tmp_path).null(30)
    (path,) = tmp_path.glob("*.npz")
    good = path.read_bytes()
    if damage == "other_table":  # a readable file whose table does not match its checksum
        other = ref.copy()
        other[0] = np.nextafter(other[0], 1.0)
        with open(path, "wb") as f:
            np.savez(f, table=other, sha256=np.array("0" * 64))
    else:
        path.write_bytes({"garbage": b"not a zip" * 9, "empty": b""}[damage])
    again = EntropyNullCache(n_series=N, store=tmp_path)
    assert again.null(30).tobytes() == ref.tobytes()
    assert path.read_bytes() == good


def test_an_unwritable_store_only_costs_the_simulation(tmp_path) -> None:
    (tmp_path / "file").write_text("x")
    cache = EntropyNullCache(n_series=N, store=tmp_path / "file" / "sub")
    assert cache.null(30).tobytes() == EntropyNullCache(n_series=N).null(30).tobytes()


def test_a_units_context_keeps_its_tables_under_the_run_cache_folder(tmp_path, monkeypatch) -> None:
    """``UnitContext`` (every worker's) stores the entropy null tables under
    ``$WFAUDIT_CACHE_DIR/entropy_null``, at the default table size."""
    from tournament.unit import UnitContext, stored_feature_cache

    monkeypatch.setenv("WFAUDIT_CACHE_DIR", str(tmp_path))
    cache = stored_feature_cache().null_cache
    assert cache.store == tmp_path / "entropy_null"
    assert (cache.n_series, cache.seed, cache.order) == (entropy.NULL_SERIES, entropy.NULL_SEED, entropy.ORDER)
    cache.null(20)
    assert len(list((tmp_path / "entropy_null").glob("*.npz"))) == 1
    assert UnitContext.__dataclass_fields__["feature_cache"].default_factory is stored_feature_cache
