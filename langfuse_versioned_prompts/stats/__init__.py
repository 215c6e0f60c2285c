"""A/B statistics: from per-variant scores (or Langfuse) to a sound decision.

>>> from langfuse_versioned_prompts import stats
>>> report = stats.analyze({"A": [3, 4, 5, 4, 3], "B": [5, 6, 5, 6, 7]}, control="A")
>>> report.winner
'B'

Needs the ``stats`` extra (scipy, numpy, matplotlib), imported only when a test or plot runs.
"""

from ._analyze import analyze
from ._collect import ScoreCollector
from ._errors import ExperimentNotFoundError, ScoreNotFoundError
from ._langfuse import from_langfuse, parse_time
from ._model import Comparison, SRMCheck, VariantSummary
from ._power import required_sample_size
from ._report import Report
from ._seed import analyze_ab_results
from ._sufficient import MeanStats, ProportionStats
from ._tests import holm_adjust, proportions_test, srm_check, welch_test

__all__ = [
    "Comparison",
    "ExperimentNotFoundError",
    "MeanStats",
    "ProportionStats",
    "Report",
    "SRMCheck",
    "ScoreCollector",
    "ScoreNotFoundError",
    "VariantSummary",
    "analyze",
    "analyze_ab_results",
    "from_langfuse",
    "holm_adjust",
    "parse_time",
    "proportions_test",
    "required_sample_size",
    "srm_check",
    "welch_test",
]
