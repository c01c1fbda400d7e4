"""Economic identity of a symbol (SELECTION_SPEC section 1): BTCUSDT.P, BTCUSDT, BTC-USD -> BTC.

Rule, applied in order to the upper-cased symbol:
1. drop an exchange prefix ``EXCHANGE:`` (e.g. ``BINANCE:BTCUSDT``);
2. strip venue suffixes: ``.P`` (perpetual), ``.PERP``, ``-PERP``, ``_PERP``, ``PERP``, ``.F``;
3. strip one quote currency at the end, longest first: USDT, USDC, BUSD, FDUSD, TUSD, DAI, USD, EUR,
   BTC (only when something remains), ETH (idem);
4. drop separators ``-``, ``_``, ``/``, ``.``.
A symbol that would become empty keeps its cleaned form (so ``USDT`` stays ``USDT``).
"""
from __future__ import annotations

import re

VENUE_SUFFIXES = (".PERP", "-PERP", "_PERP", "PERP", ".P", ".F")
QUOTES = ("FDUSD", "USDT", "USDC", "BUSD", "TUSD", "DAI", "USD", "EUR", "BTC", "ETH")
_SEP = re.compile(r"[-_/.]")


def identity_of(symbol: str) -> str:
    """The economic base asset of ``symbol`` (see the module docstring for the rule)."""
    s = symbol.upper().strip()
    if ":" in s:
        s = s.split(":", 1)[1]
    for suf in VENUE_SUFFIXES:
        if s.endswith(suf) and len(s) > len(suf):
            s = s[: -len(suf)]
            break
    s = s.rstrip("-_/.")
    for q in QUOTES:
        if s.endswith(q) and len(_SEP.sub("", s[: -len(q)])) > 0:
            s = s[: -len(q)]
            break
    cleaned = _SEP.sub("", s)
    return cleaned or _SEP.sub("", symbol.upper())
