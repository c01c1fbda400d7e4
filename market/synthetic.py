"""The synthetic market: the embedded default data set, deterministic from a seed.

Returns follow a factor model on a 365-day (crypto) calendar::

    r_it = beta_i * m_t + gamma_i * s_{sector(i), t} + e_it + J_it + mu_i / 365
    e_it = phi_i * k(regime_t) * e_i,t-1 + sigma_i * u_it,   u ~ Student-t(4) scaled to unit variance

- ``m``: market factor with a fixed regime schedule (calm / turbulent / crisis; daily vol 2.2%, 4%,
  7%) and Student-t(4) shocks; ``s``: six sector factors (daily vol 1.2%);
- ``phi_i``: +0.45 for trending assets, -0.45 for mean-reverting ones, 0 otherwise, scaled by
  ``k(regime)`` = 1 in calm, 0.35 turbulent, 0 in crisis, so that order-based features (entropy,
  efficiency, Hurst) find structure in calm windows and noise in turbulent ones;
- ``J``: Poisson jumps (rate 1/150 per day, size N(0, 10%));
- named events (bars are fractions of ``n_bars``; see ``SyntheticMarket.events``): a market-wide flash
  crash (-32% then +12%), an asset that goes to zero (final price 0, then no more prices), an asset
  listed late, a short squeeze (x5 within 20 bars on a SHORT candidate's asset), two delistings;
- spot and perpetual venues of the same identity (``XXXUSDT`` and ``XXXUSDT.P``) with a small basis;
- OHLCV bars: high/low from the close and an intraday range, volume from a per-asset traded value
  (log-uniform $8M - $3B a day, so liquidity sits on both sides of the $20M / $50M floors);
- a benchmark asset (``BTCUSDT``, beta 1, low idiosyncratic risk);
- monthly scanner snapshots (first day of each month) of the listed candidates with fields derived from
  the bars up to that date (``market.ratings``), so fields are consistent with the bars. A scanner
  sees only the past: each record's direction and logic are decided at each snapshot date from the
  bars up to it, with noise (``scanner_snapshots``); the hidden drift ``mu_i`` and the hidden
  trend/mean-reversion kind never reach a snapshot (issue 15; they used to set the direction).

``no_signal=True`` gives a market with nothing to find, to measure the verdicts' size: every price is a
martingale (zero expected *simple* return each day, not zero log drift, which would hand every long
position a volatility premium): no drift (``mu = 0``, no regime drift), no autocorrelation
(``phi = 0``), no perpetual basis, none of the planted price events (flash crash, bust, squeeze;
late listing and delistings stay: they carry no price information); candidate directions are coin
flips, and the snapshots' fields are drawn at random (independent of every price; membership is only
"has a price that day"), so the scanner cannot read a price either. ``derived`` is None.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from contracts.candidate import CANDIDATE_COLUMNS
from market.loaders import MarketData
from market.panel import validate_panel
from market.ratings import derive_panel
from market.snapshots import SnapshotStore

SECTORS = ("L1", "DeFi", "Meme", "Exchange", "Infra", "AI")
BENCHMARK = "BTCUSDT"
_REGIMES = {"calm": (0.022, 0.0009, 1.0), "turbulent": (0.040, -0.0004, 0.35), "crisis": (0.070, -0.004, 0.0)}
# (start fraction, regime); the schedule is part of the documented model
REGIME_SCHEDULE = ((0.0, "calm"), (0.22, "turbulent"), (0.34, "calm"), (0.50, "crisis"),
                   (0.58, "calm"), (0.80, "turbulent"), (0.90, "calm"))


class SyntheticConfig(BaseModel):
    """Settings of the synthetic market (documented defaults)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = Field(default=7, description="base seed; every draw derives from it")
    n_candidates: int = Field(default=110, ge=20, description="candidate records in the full pool")
    n_bars: int = Field(default=1461, ge=400, description="daily bars (4 years)")
    start: str = Field(default="2021-01-01", description="first date (UTC)")
    dual_venue_share: float = Field(default=0.12, ge=0, le=0.5, description="identities with spot+perp")
    short_share: float = Field(default=0.3, ge=0, le=1, description="share of SHORT candidate records")
    no_signal: bool = Field(default=False, description="martingale prices, snapshots that never read a price")


@dataclass(frozen=True)
class SyntheticMarket:
    data: MarketData
    snapshots: SnapshotStore
    benchmark: str
    events: dict = field(default_factory=dict)
    regimes: pd.Series | None = None
    derived: dict | None = None  # market.ratings.derive_panel of the bars (the snapshots' source)
    scanner_slots: tuple = ()  # the record slots (venue metadata only) scanner_snapshots decides on


def _names(n: int, rng: np.random.Generator) -> list[str]:
    letters = np.array(list("ABCDEFGHIJKLMNOPRSTUVWXZ"))
    out: list[str] = []
    seen = {"BTC"}
    while len(out) < n:
        k = int(rng.integers(3, 5))
        s = "".join(rng.choice(letters, k))
        if s not in seen and not s.endswith(("USD", "EUR", "ETH", "BTC", "DAI")):
            seen.add(s)
            out.append(s)
    return out


def _student_t(rng: np.random.Generator, shape, df: float = 4.0) -> np.ndarray:
    return rng.standard_t(df, size=shape) / np.sqrt(df / (df - 2.0))


def regime_series(n_bars: int) -> np.ndarray:
    """Regime name per bar from ``REGIME_SCHEDULE``."""
    out = np.empty(n_bars, dtype=object)
    for i, (frac, name) in enumerate(REGIME_SCHEDULE):
        start = int(frac * n_bars)
        end = int(REGIME_SCHEDULE[i + 1][0] * n_bars) if i + 1 < len(REGIME_SCHEDULE) else n_bars
        out[start:end] = name
    return out


def generate(config: SyntheticConfig | None = None) -> SyntheticMarket:
    """Generate the synthetic market. Same config, same bytes."""
    cfg = config or SyntheticConfig()
    rng = np.random.default_rng(cfg.seed)
    T = cfg.n_bars
    dates = pd.date_range(cfg.start, periods=T, freq="D", tz="UTC").as_unit("ns")

    # ---- universe: identities, venues, candidate records ------------------------------------------
    n_ident = int(round(cfg.n_candidates * 0.62))
    names = ["BTC"] + _names(n_ident - 1, rng)
    n_dual = int(round(cfg.dual_venue_share * n_ident))
    dual = set(rng.choice(np.arange(1, n_ident), n_dual, replace=False).tolist())
    perp_only = set(rng.choice([i for i in range(1, n_ident) if i not in dual], n_ident // 4, replace=False).tolist())
    assets = []  # (symbol, identity index, asset_type)
    for i, nm in enumerate(names):
        if i in dual:
            assets += [(f"{nm}USDT", i, "spot"), (f"{nm}USDT.P", i, "perp")]
        elif i in perp_only:
            assets.append((f"{nm}USDT.P", i, "perp"))
        else:
            assets.append((f"{nm}USDT", i, "spot"))
    assets.sort(key=lambda a: a[0])  # alphabetical, as a lakehouse folder lists them
    symbols = [a[0] for a in assets]
    n_sym = len(symbols)

    # ---- per-identity parameters ------------------------------------------------------------------
    sector = rng.integers(0, len(SECTORS), n_ident)
    beta = rng.uniform(0.6, 1.5, n_ident)
    beta[0] = 1.0
    gamma = rng.uniform(0.5, 1.2, n_ident)
    sigma = rng.uniform(0.012, 0.035, n_ident)
    sigma[0] = 0.004
    kind = rng.choice(["trend", "revert", "plain"], n_ident, p=[0.4, 0.3, 0.3])
    phi = np.where(kind == "trend", 0.45, np.where(kind == "revert", -0.45, 0.0))
    phi[0] = 0.0
    mu = rng.uniform(-0.9, 1.2, n_ident)  # annual drift, fraction
    mu[0] = 0.2
    if cfg.no_signal:
        mu[:] = 0.0
        phi[:] = 0.0
    traded = 10 ** rng.uniform(6.9, 9.5, n_ident)  # daily traded value, quote currency
    traded[0] = 2e10

    # ---- factors ---------------------------------------------------------------------------------
    reg = regime_series(T)
    vol_m = np.array([_REGIMES[r][0] for r in reg])
    drift_m = np.array([_REGIMES[r][1] for r in reg]) * (0.0 if cfg.no_signal else 1.0)
    k_reg = np.array([_REGIMES[r][2] for r in reg])
    m = drift_m + vol_m * _student_t(rng, T)
    s = 0.012 * _student_t(rng, (T, len(SECTORS)))

    events: dict = {}
    fc = int(0.85 * T)  # inside the last 24 windows that the quick preset tests
    if not cfg.no_signal:
        m[fc], m[fc + 1] = -0.32, 0.12
        events["flash_crash"] = {"date": str(dates[fc].date()), "bar": fc, "market_return": -0.32}

    u = _student_t(rng, (T, n_ident)) * sigma
    e = np.zeros((T, n_ident))
    for t in range(1, T):  # AR(1) recursion over time, vectorised over identities
        e[t] = phi * k_reg[t] * e[t - 1] + u[t]
    jumps = (rng.random((T, n_ident)) < 1 / 150) * rng.normal(0, 0.10, (T, n_ident))
    jumps[:, 0] = 0.0
    r_id = beta * m[:, None] + gamma * s[:, sector] + e + jumps + mu / 365.0
    r_id = np.maximum(r_id, -0.9)

    # ---- named events on identities ----------------------------------------------------------------
    pick = rng.permutation(np.arange(1, n_ident))
    bust, late, squeeze, del1, del2 = (int(x) for x in pick[:5])
    b0 = int(0.40 * T)
    bust_end = b0 + 6
    if cfg.no_signal:
        bust = squeeze = -1  # no planted price event
    else:
        r_id[b0:b0 + 6, bust] = -0.55
        events["bust"] = {"identity": names[bust], "date": str(dates[bust_end].date()), "bar": bust_end}
    late_bar = int(0.30 * T)
    events["late_listing"] = {"identity": names[late], "date": str(dates[late_bar].date()), "bar": late_bar}
    q0 = int(0.72 * T)
    mu_sq = -0.8
    if not cfg.no_signal:
        r_id[:q0, squeeze] = r_id[:q0, squeeze] - 0.0015 + mu_sq / 365.0  # a falling asset ...
        r_id[q0:q0 + 20, squeeze] = 5 ** (1 / 20) - 1 + 0.01 * rng.standard_normal(20)  # ... squeezed x5
        events["short_squeeze"] = {"identity": names[squeeze], "date": str(dates[q0].date()), "bar": q0,
                                   "multiple": float(np.prod(1 + r_id[q0:q0 + 20, squeeze]))}
    delist = {del1: int(0.62 * T), del2: int(0.86 * T)}
    events["delistings"] = [{"identity": names[i], "date": str(dates[b].date()), "bar": b} for i, b in delist.items()]

    # ---- prices per venue ------------------------------------------------------------------------
    close = np.empty((T, n_sym))
    for j, (sym, i, typ) in enumerate(assets):
        basis = 1.0 + (0.002 * rng.standard_normal(T) if typ == "perp" and not cfg.no_signal else 0.0)
        p0 = 10 ** rng.uniform(-1, 3) if i else 30000.0
        close[:, j] = p0 * np.cumprod(1 + r_id[:, i]) * basis
        if i == bust:
            close[bust_end, j] = 0.0
            close[bust_end + 1:, j] = np.nan
        if i == late:
            close[:late_bar, j] = np.nan
        if i in delist:
            close[delist[i]:, j] = np.nan
    rng_range = np.abs(rng.normal(0, 1, (T, n_sym))) * 0.5 * np.array([sigma[a[1]] + 0.01 for a in assets])
    high = close * (1 + rng_range)
    low = close / (1 + rng_range)
    openp = np.vstack([close[:1], close[:-1]]) * (1 + 0.001 * rng.standard_normal((T, n_sym)))
    openp = np.where(np.isnan(close), np.nan, np.where(np.isnan(openp), close, openp))
    tv = np.array([traded[a[1]] * (0.5 if a[2] == "spot" and a[1] in dual else 1.0) for a in assets])
    value = tv * np.exp(0.35 * rng.standard_normal((T, n_sym)))
    with np.errstate(divide="ignore", invalid="ignore"):
        volume = np.where(close > 0, value / close, 0.0)
    volume = np.where(np.isnan(close), np.nan, volume)
    for arr in (high, low, openp):
        arr[close == 0] = 0.0

    frame = lambda a: pd.DataFrame(a, index=dates, columns=symbols)  # noqa: E731
    closes = validate_panel(frame(close), source="synthetic")
    data = MarketData(closes=closes, fields={"open": frame(openp), "high": frame(high), "low": frame(low),
                                             "volume": frame(volume)}, source=f"synthetic(seed={cfg.seed})")
    for key in ("bust", "late_listing", "short_squeeze"):
        if key not in events:
            continue
        ident = events[key]["identity"]
        events[key]["symbols"] = [a[0] for a in assets if names[a[1]] == ident]
    for ev in events["delistings"]:
        ev["symbols"] = [a[0] for a in assets if names[a[1]] == ev["identity"]]

    # ---- candidate records -----------------------------------------------------------------------
    if cfg.no_signal:  # static records with coin-flip directions (no price behind them)
        recs = _candidate_records(cfg, rng, assets, names, sector, kind, mu, squeeze, bust)
        slots: list[dict] = []
        derived = None
        snapshots = _noise_snapshots(data, recs, dates, traded, assets, rng)
        events["no_signal"] = True
    else:  # a scanner that reads the bars up to each snapshot date only (issue 15)
        slots = _candidate_slots(cfg, rng, assets, sector)
        derived = derive_panel(data.closes, data.fields)
        snapshots = scanner_snapshots(data, slots, cfg.seed, derived)
    events["benchmark"] = BENCHMARK
    return SyntheticMarket(data=data, snapshots=snapshots, benchmark=BENCHMARK, events=events,
                           regimes=pd.Series(reg, index=dates, name="regime"), derived=derived,
                           scanner_slots=tuple(slots))


def _candidate_records(cfg, rng, assets, names, sector, kind, mu, squeeze, bust) -> list[dict]:
    """Static candidate records of the no-signal market: (symbol, logic, direction) plus metadata
    (directions are coin flips there: ``mu`` is 0 and no event is planted)."""
    logic_for = {"trend": ["trend", "mom"], "revert": ["rev"], "plain": ["rating", "mom"]}
    recs = []
    for sym, i, typ in assets:
        lg = logic_for[kind[i]][int(rng.integers(len(logic_for[kind[i]])))]
        if cfg.no_signal:
            d = "SHORT" if rng.random() < 0.5 else "LONG"  # a coin flip: no price behind it
        else:
            d = "SHORT" if (mu[i] < -0.2 and rng.random() < 0.8) or i == squeeze else "LONG"
        recs.append(dict(symbol=sym, logic=lg, direction=d, i=i, typ=typ))
    keys = {(r["symbol"], r["logic"], r["direction"]) for r in recs}
    while len(recs) < cfg.n_candidates:  # extra records on existing assets, other logic/direction
        sym, i, typ = assets[int(rng.integers(len(assets)))]
        lg = ["rating", "trend", "mom", "rev"][int(rng.integers(4))]
        d = "SHORT" if rng.random() < cfg.short_share else "LONG"
        if (sym, lg, d) in keys:
            continue
        keys.add((sym, lg, d))
        recs.append(dict(symbol=sym, logic=lg, direction=d, i=i, typ=typ))
    out = []
    for r in recs:
        out.append({"symbol": r["symbol"], "exchange": "BINANCE" if r["typ"] == "perp" else "COINBASE",
                    "asset_type": r["typ"], "sector": SECTORS[sector[r["i"]]], "logic": r["logic"],
                    "direction": r["direction"]})
    for r in out[5:7]:  # two records with missing metadata (the scanner's gaps exist)
        r["sector"] = None
    return out


def _noise_snapshots(data: MarketData, recs: list[dict], dates: pd.DatetimeIndex, traded: np.ndarray,
                     assets: list, rng: np.random.Generator) -> SnapshotStore:
    """Snapshots of the no-signal market: the same dates and membership rule as :func:`scanner_snapshots`
    (listed = has a positive close that day), fields drawn at random in the ranges the derived fields
    take on the default market, independent of every price. ``Value.Traded`` comes from the asset's
    static traded value (not from price x volume)."""
    month_starts = dates[(dates.day == 1)]
    closes = data.closes
    base = pd.DataFrame(recs)
    tv = {a[0]: traded[a[1]] for a in assets}
    frames = {}
    for d in month_starts[2:]:
        row = closes.loc[d]
        listed = row.index[row.notna() & (row > 0)]
        df = base[base["symbol"].isin(listed)].reset_index(drop=True)
        n = len(df)
        df["Value.Traded"] = df["symbol"].map(tv).to_numpy(dtype=float) * np.exp(0.35 * rng.standard_normal(n))
        df["Recommend.All"] = rng.uniform(-0.7, 0.7, n)
        df["Recommend.MA"] = rng.uniform(-1.0, 1.0, n)
        df["ROC"] = 10.0 * rng.standard_normal(n)
        df["Volatility.D"] = rng.uniform(1.0, 6.0, n)
        df["ADX"] = rng.uniform(10.0, 40.0, n)
        df = df[list(CANDIDATE_COLUMNS[:-1])]
        df["snapshot_date"] = d
        frames[d] = df
    return SnapshotStore(frames=frames, point_in_time=True, source="synthetic(no_signal)")


#: scanner rules: trailing bars read at a snapshot date, and the noise of each decision
SCANNER_MOMENTUM_BARS = 60
SCANNER_STAT_BARS = 120
SCANNER_DIRECTION_NOISE = 0.35
SCANNER_LOGIC_NOISE = 0.08
SCANNER_AC_BAND = 0.10
MAX_SLOTS_PER_SYMBOL = 4


def _candidate_slots(cfg, rng, assets, sector) -> list[dict]:
    """Static record slots: one per venue, then extra slots on random venues (at most
    ``MAX_SLOTS_PER_SYMBOL`` per venue) up to ``n_candidates``. A slot fixes the venue and its
    metadata (exchange, asset type, sector; two slots lose their sector: the scanner's gaps exist);
    its logic and direction are decided at each snapshot date from past bars (``scanner_snapshots``)."""
    slots = [dict(symbol=sym, i=i, typ=typ, slot=0) for sym, i, typ in assets]
    count = {sym: 1 for sym, _, _ in assets}
    room = len(assets) * (MAX_SLOTS_PER_SYMBOL - 1)
    while len(slots) < cfg.n_candidates and room > 0:
        sym, i, typ = assets[int(rng.integers(len(assets)))]
        if count[sym] >= MAX_SLOTS_PER_SYMBOL:
            continue
        slots.append(dict(symbol=sym, i=i, typ=typ, slot=count[sym]))
        count[sym] += 1
        room -= 1
    out = []
    for r in slots:
        out.append({"symbol": r["symbol"], "exchange": "BINANCE" if r["typ"] == "perp" else "COINBASE",
                    "asset_type": r["typ"], "sector": SECTORS[sector[r["i"]]], "slot": r["slot"]})
    for r in out[5:7]:  # two records with missing metadata (the scanner's gaps exist)
        r["sector"] = None
    return out


def _past_statistics(past: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Per symbol, from closes up to a snapshot date: the trailing ``SCANNER_MOMENTUM_BARS``-bar
    compounded return (NaN without that history) and the lag-1 autocorrelation of the last
    ``SCANNER_STAT_BARS`` simple returns (0 with fewer than 30 of them)."""
    c = past.iloc[-(SCANNER_STAT_BARS + 1):]
    with np.errstate(divide="ignore", invalid="ignore"):
        r = (c / c.shift(1) - 1.0).iloc[1:]
        mom = past.iloc[-1] / past.iloc[-1 - SCANNER_MOMENTUM_BARS] - 1.0 \
            if len(past) > SCANNER_MOMENTUM_BARS else past.iloc[-1] * np.nan
    a, b = r.iloc[1:].to_numpy(), r.iloc[:-1].to_numpy()
    ok = np.isfinite(a) & np.isfinite(b)
    n = ok.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        am = np.where(ok, a, 0.0).sum(axis=0) / n
        bm = np.where(ok, b, 0.0).sum(axis=0) / n
        da, db = np.where(ok, a - am, 0.0), np.where(ok, b - bm, 0.0)
        ac = (da * db).sum(axis=0) / np.sqrt((da * da).sum(axis=0) * (db * db).sum(axis=0))
    ac = np.where((n >= 30) & np.isfinite(ac), ac, 0.0)
    return mom.replace([np.inf, -np.inf], np.nan), pd.Series(ac, index=past.columns)


def scanner_snapshots(data: MarketData, slots: list[dict], seed: int, derived: dict | None = None
                      ) -> SnapshotStore:
    """Monthly snapshots (first day of each month, from the third) built only from bars up to each
    date: the scanner's fields (``market.ratings``), and per record slot:

    - direction: slot 0 reads the sign of the trailing 60-bar return, other slots the sign of
      ``Recommend.All``, each plus Gaussian noise (sd 0.35 on ``tanh(ret / 0.2)``, resp. on the
      rating in [-1, 1]); a missing signal counts as 0 (the noise decides);
    - logic: from the lag-1 autocorrelation ``ac`` of the last 120 returns plus noise (sd 0.08):
      above +0.10 ``trend`` or ``mom``, below -0.10 ``rev``, else ``rating`` or ``mom``; an extra
      slot takes another logic (a seeded permutation of the other three);
    - a record repeating a (symbol, logic, direction) of the same snapshot is dropped.

    The noise is drawn from a generator seeded by ``(seed, date)``, never from the bars, so a
    snapshot depends on the bars up to its date only (a test perturbs every later bar). A venue
    is listed when its close at the date is positive.
    """
    closes = data.closes
    dates = closes.index
    derived = derived if derived is not None else derive_panel(closes, data.fields)
    base = pd.DataFrame(slots)
    fields = ("Value.Traded", "Recommend.All", "Recommend.MA", "ROC", "Volatility.D", "ADX")
    logics = ("rating", "trend", "mom", "rev")
    frames = {}
    for d in dates[(dates.day == 1)][2:]:
        past = closes.loc[:d]
        row = past.iloc[-1]
        listed = row.index[row.notna() & (row > 0)]
        df = base[base["symbol"].isin(listed)].reset_index(drop=True)
        rng = np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, 15, int(d.value // 10**9)]))
        mom, ac = _past_statistics(past)
        n = len(df)
        u_dir, u_logic, u_pick = rng.normal(0.0, 1.0, n), rng.normal(0.0, 1.0, n), rng.random(n)
        perms = [rng.permutation(3) for _ in range(n)]
        rating = df["symbol"].map(derived["Recommend.All"].loc[d]).to_numpy(dtype=np.float64)
        m = np.tanh(df["symbol"].map(mom).to_numpy(dtype=np.float64) / 0.2)
        signal = np.where(df["slot"].to_numpy() == 0, m, rating)
        signal = np.where(np.isfinite(signal), signal, 0.0) + SCANNER_DIRECTION_NOISE * u_dir
        stat = df["symbol"].map(ac).to_numpy(dtype=np.float64) + SCANNER_LOGIC_NOISE * u_logic
        logic = []
        for k in range(n):
            if stat[k] > SCANNER_AC_BAND:
                first = "trend" if u_pick[k] < 0.5 else "mom"
            elif stat[k] < -SCANNER_AC_BAND:
                first = "rev"
            else:
                first = "rating" if u_pick[k] < 0.5 else "mom"
            slot = int(df.at[k, "slot"])
            if slot == 0:
                logic.append(first)
            else:
                others = [x for x in logics if x != first]
                logic.append(others[int(perms[k][(slot - 1) % 3])])
        df["logic"] = logic
        df["direction"] = np.where(signal < 0, "SHORT", "LONG")
        df = df.drop_duplicates(["symbol", "logic", "direction"]).reset_index(drop=True)
        for f in fields:
            df[f] = df["symbol"].map(derived[f].loc[d]).astype(float)
        df = df[list(CANDIDATE_COLUMNS[:-1])]
        df["snapshot_date"] = d
        frames[d] = df
    return SnapshotStore(frames=frames, point_in_time=True, source="synthetic")
