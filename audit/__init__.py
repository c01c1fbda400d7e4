"""Audit pillar: the hash-chained ledger, independent metric recomputation and run checks.

Imports only ``contracts`` and ``market`` (never ``simulation``, ``allocation`` or ``selection``):
independence from what it audits is the point. Submodules are imported explicitly by callers
(``audit.ledger``, ``audit.verify``, ``audit.metrics``, ``audit.checks``, ``audit.raw_audit``).
"""
