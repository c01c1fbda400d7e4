"""The summary says in words what the evidence supports (issue 14)."""
from types import SimpleNamespace

from reports.tournament_page import comparison_text, dsr_evidence, pbo_text


def _best(dsr: float, raw: float) -> dict:
    return {"engine": "v3.4", "profile": "equal_weight", "sharpe": 2.433, "dsr": dsr, "dsr_raw": raw,
            "dsr_clustered": 0.9, "dsr_method": "raw", "n_trials": 30, "n_trials_clustered": 8, "psr": 0.999}


def test_not_significant_best_trial_says_no_evidence_and_hides_psr():
    # The misleading line: a no-signal run's best trial with PSR ~1 must read as no evidence
    rd = SimpleNamespace(boot={"dsr": {"method": "raw"}})
    words = dict(dsr_evidence(rd, _best(0.62, 0.62)))
    assert "not significant after deflating for 30 trials" in words["conclusion"]
    assert "no evidence of skill" in words["conclusion"]
    text = words["best trial: deflated Sharpe"]
    assert "deflating for 30 trials (raw count, the headline)" in text and "8 correlation clusters" in text
    assert "PSR" not in text and "0.999" not in text


def test_clustered_headline_also_shows_the_raw_count():
    rd = SimpleNamespace(boot={})
    best = {**_best(0.96, 0.9), "dsr_method": "clustered"}
    text = dict(dsr_evidence(rd, best))["best trial: deflated Sharpe"]
    assert "deflating for 8 trials (clustered count, the headline)" in text and "0.9 for the raw count of 30" in text


def test_significant_best_trial():
    rd = SimpleNamespace(boot={})
    words = dict(dsr_evidence(rd, _best(0.97, 0.97)))
    assert words["conclusion"].startswith("significant")


def test_comparison_without_rejection_states_the_detectable_difference():
    v = {"n": 6, "a_better_significant": 0, "b_better_significant": 0, "detectable_difference": 1.234}
    assert comparison_text(v) == ("no detectable difference in 6 matched pairs (smallest detectable difference "
                                  "at this length: 1.23 annualised Sharpe)")
    v = {"n": 6, "a_better_significant": 2, "b_better_significant": 0}
    assert comparison_text(v).startswith("a better in 2 and b better in 0 of 6")


def test_pbo_reads_against_its_null_spread():
    # the issue: one run's PBO 0.099 with a null s.d. of about 0.21 is within the noise
    assert "within the noise" in pbo_text({"pbo": 0.099, "null": {"mean": 0.5, "sd": 0.21, "reps": 30}})
    assert "below what no-skill" in pbo_text({"pbo": 0.02, "null": {"mean": 0.5, "sd": 0.1, "reps": 30}})
    assert pbo_text({"pbo": 0.3}) == "0.3"
