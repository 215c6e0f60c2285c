"""A circuit breaker: stop calling a backend that keeps failing, try again after a pause."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from ._errors import ConfigurationError
from ._settings import BREAKER_FAILURES, BREAKER_RESET_SECONDS


class CircuitBreaker:
    """Opens after ``failures`` consecutive failures; after ``reset_after`` seconds one trial call
    is let through (half-open): success closes it, failure opens it again. Thread-safe.

    >>> now = [0.0]
    >>> breaker = CircuitBreaker(failures=2, reset_after=10, timer=lambda: now[0])
    >>> breaker.record_failure(); breaker.record_failure(); breaker.allow()
    False
    >>> now[0] = 10.0; breaker.allow(), breaker.allow()
    (True, False)
    """

    def __init__(
        self,
        failures: int = BREAKER_FAILURES,
        reset_after: float = BREAKER_RESET_SECONDS,
        *,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(failures, bool) or not isinstance(failures, int) or failures < 1:
            raise ConfigurationError(f"CircuitBreaker failures must be an integer >= 1, got {failures!r}")
        if not reset_after > 0:
            raise ConfigurationError(f"CircuitBreaker reset_after must be > 0 seconds, got {reset_after!r}")
        self.failures = failures
        self.reset_after = float(reset_after)
        self.timer = timer
        self._consecutive = 0
        self._opened_at: float | None = None
        self._trial_running = False
        self._lock = threading.Lock()

    @property
    def is_open(self) -> bool:
        """True while calls are refused."""
        return self._opened_at is not None

    def allow(self) -> bool:
        """Whether a call may go out now."""
        if self._opened_at is None:
            return True
        with self._lock:
            if self._opened_at is None:
                return True
            if self._trial_running or self.timer() - self._opened_at < self.reset_after:
                return False
            self._trial_running = True
            return True

    def record_success(self) -> None:
        """A call succeeded: close the circuit."""
        if self._consecutive or self._opened_at is not None:
            with self._lock:
                self._consecutive = 0
                self._opened_at = None
                self._trial_running = False

    def record_failure(self) -> None:
        """A call failed: count it, open the circuit at the threshold or after a failed trial."""
        with self._lock:
            self._consecutive += 1
            if self._trial_running or self._consecutive >= self.failures:
                self._opened_at = self.timer()
                self._trial_running = False

    def abandon_trial(self) -> None:
        """A call ended without an answer (cancelled): let the next call be the trial."""
        with self._lock:
            self._trial_running = False

    def retry_in(self) -> float:
        """Seconds until the next trial call is allowed (0 when closed)."""
        opened = self._opened_at
        return 0.0 if opened is None else max(0.0, self.reset_after - (self.timer() - opened))
