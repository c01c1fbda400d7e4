"""What a selection engine returns for one window (SELECTION_SPEC sections 6-7)."""
from __future__ import annotations

from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts.atom import StrategyAtom
from contracts.enums import SpecVersion


class RejectedCandidate(BaseModel):
    """A candidate that did not win, with every veto reason and the last HTR stage that saw it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    symbol: str
    reasons: list[str]
    last_stage: Optional[int] = None
    #: per threshold reason, the value the rule read and the threshold it was held to (v4 engines;
    #: ``{reason: {"value", "threshold", "rule"}}``; empty where not recorded, e.g. the frozen v3.4)
    evidence: dict[str, dict[str, Any]] = Field(default_factory=dict)


class Funnel(BaseModel):
    """The selection funnel (SELECTION_SPEC section 7). Counts never rise before the winners."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    snapshot: int = Field(ge=0, description="snapshot records as of the cut-off")
    deduplicated: int = Field(ge=0, description="after deduplication and the depth cap")
    after_hard_vetoes: int = Field(ge=0)
    after_all_vetoes_stage1: int = Field(ge=0)
    winners_by_stage: dict[int, int] = Field(default_factory=dict)
    n_clusters: int = Field(ge=0)

    @property
    def winners(self) -> int:
        return sum(self.winners_by_stage.values())

    def invariant_errors(self) -> list[str]:
        """Broken funnel invariants, as readable strings (empty when the funnel holds)."""
        errs = []
        seq = [("snapshot", self.snapshot), ("deduplicated", self.deduplicated),
               ("after_hard_vetoes", self.after_hard_vetoes),
               ("after_all_vetoes_stage1", self.after_all_vetoes_stage1)]
        for (na, a), (nb, b) in zip(seq, seq[1:]):
            if b > a:
                errs.append(f"{nb} ({b}) > {na} ({a})")
        if self.winners > self.after_hard_vetoes:
            errs.append(f"winners ({self.winners}) > after_hard_vetoes ({self.after_hard_vetoes})")
        return errs


class SelectionResult(BaseModel):
    """One engine's selection for one window.

    ``manifest`` carries what later pillars need: ``shrinkage_intensity`` (float) and ``hardened``
    (bool). ``linkage`` is scipy's linkage matrix as nested lists (for the dendrogram) over
    ``linkage_labels``. ``pipeline_audit`` is the list of ``{stage, event, data}`` events.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    engine: str
    spec_version: SpecVersion
    window: int
    cutoff_date: str
    atoms: list[StrategyAtom]
    clusters: dict[str, int] = Field(default_factory=dict, description="candidate id -> cluster")
    htr_stage: Optional[int] = Field(default=None, description="stage the HTR loop stopped at")
    manifest: dict[str, Any] = Field(default_factory=lambda: {"shrinkage_intensity": 0.01,
                                                              "hardened": False})
    funnel: Optional[Funnel] = None
    rejected: list[RejectedCandidate] = Field(default_factory=list)
    linkage: Optional[list[list[float]]] = None
    linkage_labels: Optional[list[str]] = None
    pipeline_audit: list[dict[str, Any]] = Field(default_factory=list)
    metrics: dict[str, Any] = Field(default_factory=dict,
                                    description="cluster density, average conviction, pool diversity")

    @model_validator(mode="after")
    def _unique_atoms(self) -> "SelectionResult":
        ids = [a.id for a in self.atoms]
        if len(ids) != len(set(ids)):
            raise ValueError(f"engine {self.engine} window {self.window}: duplicate atom ids")
        return self

    @property
    def shrinkage(self) -> float:
        return float(self.manifest.get("shrinkage_intensity", 0.01))
