"""Walk-forward window, counted in bars (DESIGN section 1)."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Window(BaseModel):
    """One walk-forward window, all positions are bar indices (rows of the panel, 0-based).

    - train slice: bars ``train_start .. cutoff`` inclusive;
    - the decision is made after the close of ``cutoff``;
    - orders fill at the close of ``fill_bar = cutoff + gap``;
    - test slice: bars ``cutoff + 1 .. cutoff + n_test`` inclusive (``n_test == step_size`` except for
      a last partial window);
    - bars ``cutoff + 1 .. fill_bar`` are earned by the holdings carried from the previous window.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    index: int = Field(ge=0, description="window number k")
    cutoff: int = Field(ge=0, description="cut-off bar c")
    train_start: int = Field(ge=0, description="first bar of the train slice")
    step_size: int = Field(ge=1, description="bars between cut-offs")
    gap: int = Field(default=1, ge=0, description="bars between the cut-off and the fill")
    n_test: int = Field(ge=1, description="number of test bars (step_size, or fewer for the last)")

    @model_validator(mode="after")
    def _check(self) -> "Window":
        if self.train_start > self.cutoff:
            raise ValueError(f"window {self.index}: train_start {self.train_start} > cutoff {self.cutoff}")
        if self.n_test > self.step_size:
            raise ValueError(f"window {self.index}: n_test {self.n_test} > step_size {self.step_size}")
        if self.gap >= self.n_test:
            raise ValueError(
                f"window {self.index}: gap {self.gap} must be smaller than its {self.n_test} test bars"
            )
        return self

    @property
    def train_end(self) -> int:
        """Last train bar (inclusive) == cutoff."""
        return self.cutoff

    @property
    def train_length(self) -> int:
        return self.cutoff - self.train_start + 1

    @property
    def fill_bar(self) -> int:
        return self.cutoff + self.gap

    @property
    def test_start(self) -> int:
        return self.cutoff + 1

    @property
    def test_end(self) -> int:
        """Last test bar (inclusive)."""
        return self.cutoff + self.n_test

    def train_slice(self) -> slice:
        return slice(self.train_start, self.cutoff + 1)

    def test_slice(self) -> slice:
        return slice(self.test_start, self.test_end + 1)
