"""``resume_overrides`` (``tournament run --resume`` with ``--executor``/``--workers``/...) are validated
with the run's config: a plain string becomes its enum without a serializer warning (pydantic warned
"Expected `enum`" when the override was copied in unvalidated and dumped), a bad value is refused."""
from __future__ import annotations

import warnings

import pydantic
import pytest

from contracts.enums import ExecutorKind
from tests.tournament.conftest import small_config
from tournament.run import _resumable_config, run_tournament


@pytest.fixture(scope="module")
def partial_run(tmp_path_factory):
    return run_tournament(small_config(), tmp_path_factory.mktemp("runs"), stop_after_units=1).run_dir


def test_string_overrides_become_enums_without_a_warning(partial_run):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cfg = _resumable_config(partial_run, {"executor": "process", "workers": 2, "report": False})
    assert cfg.executor is ExecutorKind.PROCESS and cfg.workers == 2 and cfg.report is False


def test_a_bad_override_is_refused(partial_run):
    with pytest.raises(pydantic.ValidationError, match="executor"):
        _resumable_config(partial_run, {"executor": "threads"})
