"""Selection pillar: candidates as of a window's cut-off -> strategy atoms (SELECTION_SPEC).

- ``selection.pipeline``: the v4 stage pipeline (never imports ``selection.legacy``);
- ``selection.legacy``: the frozen v3.4 engine (never imports ``selection.pipeline``);
- ``selection.baselines``: ``raw`` and ``random``;
- ``selection.registry``: ``ENGINES`` and ``run_window(view, engines, config, seed, cache)``;
- ``selection.config``: ``SelectionConfig``; ``selection.output``: ``portfolio_candidates``.

This module imports nothing, so that importing one engine never loads the other.
"""
