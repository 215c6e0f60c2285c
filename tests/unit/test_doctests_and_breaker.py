"""Docstring examples of the core modules run as tests; the circuit breaker's states."""

from __future__ import annotations

import doctest
import importlib

import pytest

from langfuse_versioned_prompts import ConfigurationError
from langfuse_versioned_prompts._breaker import CircuitBreaker

MODULES = [
    "langfuse_versioned_prompts._breaker",
    "langfuse_versioned_prompts._counters",
    "langfuse_versioned_prompts._errors",
    "langfuse_versioned_prompts._prompt",
    "langfuse_versioned_prompts._render",
    "langfuse_versioned_prompts._signature",
    "langfuse_versioned_prompts.sources.memory",
    "langfuse_versioned_prompts.variants",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


def test_breaker_opens_half_opens_and_closes() -> None:
    now = [0.0]
    breaker = CircuitBreaker(failures=2, reset_after=5, timer=lambda: now[0])
    breaker.record_failure()
    assert breaker.allow() and not breaker.is_open
    breaker.record_success()
    breaker.record_failure()
    assert breaker.allow(), "a success resets the count"
    breaker.record_failure()
    assert breaker.is_open and not breaker.allow() and breaker.retry_in() == 5
    now[0] = 5
    assert breaker.allow() and not breaker.allow(), "one trial call at a time"
    breaker.record_failure()
    assert breaker.is_open and not breaker.allow(), "a failed trial opens it again"
    now[0] = 10
    assert breaker.allow()
    breaker.record_success()
    assert not breaker.is_open and breaker.allow() and breaker.retry_in() == 0


@pytest.mark.parametrize("kwargs", [{"failures": 0}, {"failures": 1.5}, {"reset_after": 0}])
def test_breaker_settings_are_checked(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError):
        CircuitBreaker(**kwargs)  # type: ignore[arg-type]


def test_an_abandoned_trial_lets_the_next_call_try() -> None:
    now = [0.0]
    breaker = CircuitBreaker(failures=1, reset_after=5, timer=lambda: now[0])
    breaker.record_failure()
    now[0] = 5
    assert breaker.allow() and not breaker.allow()
    breaker.abandon_trial()  # e.g. the trial call was cancelled
    assert breaker.allow(), "the breaker is not stuck open"
