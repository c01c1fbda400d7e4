"""The v4 selection pipeline (SELECTION_SPEC): six stateless stages behind one protocol.

Ingestion ``DiscoveryProvider`` -> Feature Engineering ``FeatureGenerator`` -> hard vetoes and the
hardening decision ``HardeningDecision`` -> Inference ``ConvictionScorer`` -> Partitioning
``FactorBucketizer`` -> Policy ``SelectionController`` (one pass per HTR stage) -> Synthesis
``StrategySynthesizer``. Imports only ``contracts``, ``market`` and ``selection.config``; never
``selection.legacy``.
"""
from selection.pipeline.context import (
    InferenceOutputs, Partition, PolicyOutcome, SelectionContext, Stage, StageContractError,
)
from selection.pipeline.features import FeatureGenerator
from selection.pipeline.ingestion import DiscoveryProvider
from selection.pipeline.orchestrator import CHAMPION, prepare, run_pipeline, run_stage, select
from selection.pipeline.partition import FactorBucketizer
from selection.pipeline.policy import SelectionController
from selection.pipeline.scoring import ConvictionScorer, log_mps, p_cdf, p_rank
from selection.pipeline.synthesis import StrategySynthesizer
from selection.pipeline.vetoes import HardeningDecision

__all__ = [
    "InferenceOutputs", "Partition", "PolicyOutcome", "SelectionContext", "Stage",
    "StageContractError", "FeatureGenerator", "DiscoveryProvider", "CHAMPION", "prepare",
    "run_pipeline", "run_stage", "select", "FactorBucketizer", "SelectionController",
    "ConvictionScorer", "log_mps", "p_cdf", "p_rank", "StrategySynthesizer", "HardeningDecision",
]
