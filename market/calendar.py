"""Trading calendars: how many periods (bars) make a year. Every annualised metric uses this."""
from __future__ import annotations

from dataclasses import dataclass

from contracts.errors import ConfigError


@dataclass(frozen=True)
class Calendar:
    """A calendar of daily bars. ``periods_per_year`` is P (365 crypto, 252 exchange-traded)."""

    name: str
    periods_per_year: int

    def annualise_vol(self, daily_std: float) -> float:
        """Annualised volatility (fraction) from a daily standard deviation (fraction)."""
        return float(daily_std) * self.periods_per_year ** 0.5


CRYPTO = Calendar("crypto", 365)
EXCHANGE = Calendar("exchange", 252)


def get_calendar(name: str) -> Calendar:
    """Calendar by name: ``crypto`` (365) or ``exchange`` (252)."""
    try:
        return {"crypto": CRYPTO, "exchange": EXCHANGE}[name]
    except KeyError:
        raise ConfigError(f"unknown calendar {name!r}: use 'crypto' (365) or 'exchange' (252)") from None
