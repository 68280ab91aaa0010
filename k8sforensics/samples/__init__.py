"""Sample evidence with ground truth: the demo breach (``write_sample_evidence``) and a family
of breaches composed from interchangeable parts (``write_scenario``), each written as real
evidence formats plus ``truth.json``, which the accuracy harness scores the analyses against."""

from __future__ import annotations

from .demo import write_sample_evidence

__all__ = ["write_sample_evidence"]
