"""A/B variants and gradual rollouts: pure, sticky assignment of a user to a variant.

Bucket = first 8 bytes of SHA-256 of ``"{salt or experiment name}:{unit}"``, big-endian, mod
10,000, mapped through the cumulative weights. The unit is the user id, else the session id, else
a random draw. The same user gets the same variant in every process and Python version.
"""

from __future__ import annotations

import contextvars
import dataclasses
import hashlib
import math
import random
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Literal, NamedTuple

from ._errors import ConfigurationError
from ._prompt import check_label

BUCKETS = 10_000
UnitKind = Literal["user", "session", "random"]


@dataclasses.dataclass(frozen=True)
class Variant:
    """One arm of an experiment: a label or a pinned version of the prompt, and its weight.

    >>> Variant("B", version=2, weight=0.5)
    Variant(name='B', label=None, version=2, weight=0.5)
    """

    name: str
    label: str | None = None
    version: int | None = None
    weight: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigurationError(f"variant name must be a non-empty string, got {self.name!r}")
        if self.label is not None and self.version is not None:
            raise ConfigurationError(
                f"variant {self.name!r}: give a label or a version, not both "
                f"(got label={self.label!r}, version={self.version!r})"
            )
        if self.label is not None:
            check_label(self.label)
        if self.version is not None and (
            isinstance(self.version, bool) or not isinstance(self.version, int) or self.version < 1
        ):
            raise ConfigurationError(f"variant {self.name!r}: version must be a positive integer, got {self.version!r}")
        weight = self.weight
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight):
            raise ConfigurationError(f"variant {self.name!r}: weight must be a finite number, got {weight!r}")
        if weight < 0:
            raise ConfigurationError(f"variant {self.name!r}: weight must be >= 0, got {weight!r}")


@dataclasses.dataclass(frozen=True)
class Experiment:
    """Weighted variants of one prompt; users are split by a salted hash of their id.

    >>> exp = Experiment("analyzer-v2", [Variant("A", version=1), Variant("B", version=2)])
    >>> exp.assign("u-42").name == exp.assign("u-42").name
    True
    """

    name: str
    variants: tuple[Variant, ...]
    salt: str | None = None
    _thresholds: tuple[int, ...] = dataclasses.field(init=False, repr=False, compare=False)

    def __init__(self, name: str, variants: Sequence[Variant], salt: str | None = None) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"experiment name must be a non-empty string, got {name!r}")
        variants = tuple(variants)
        if not variants:
            raise ConfigurationError(f"experiment {name!r} needs at least one variant")
        for variant in variants:
            if not isinstance(variant, Variant):
                raise ConfigurationError(f"experiment {name!r}: {variant!r} is not a Variant")
        names = [v.name for v in variants]
        if len(set(names)) != len(names):
            raise ConfigurationError(f"experiment {name!r}: variant names must be unique, got {names}")
        total = math.fsum(v.weight for v in variants)
        if not total > 0:
            raise ConfigurationError(f"experiment {name!r}: the variant weights must sum to more than 0")
        cumulative, thresholds = 0.0, []
        for variant in variants:
            cumulative += variant.weight
            thresholds.append(round(BUCKETS * cumulative / total))
        thresholds[-1] = BUCKETS
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "variants", variants)
        object.__setattr__(self, "salt", salt)
        object.__setattr__(self, "_thresholds", tuple(thresholds))

    @property
    def weights(self) -> dict[str, float]:
        """Configured weight per variant name, normalised to sum to 1."""
        total = math.fsum(v.weight for v in self.variants)
        return {v.name: v.weight / total for v in self.variants}

    def bucket(self, unit: str) -> int:
        """The bucket in ``[0, 10000)`` of an assignment unit (user or session id)."""
        seed = f"{self.salt or self.name}:{unit}".encode()
        return int.from_bytes(hashlib.sha256(seed).digest()[:8], "big") % BUCKETS

    def variant_for_bucket(self, bucket: int) -> Variant:
        """The variant whose cumulative weight range holds ``bucket``."""
        for variant, threshold in zip(self.variants, self._thresholds, strict=True):
            if bucket < threshold:
                return variant
        return self.variants[-1]

    def assign(self, unit: str) -> Variant:
        """The variant of an assignment unit."""
        return self.variant_for_bucket(self.bucket(unit))

    @classmethod
    def from_config(cls, data: Any, *, default_name: str) -> Experiment:
        """Read an experiment from a prompt config's ``experiment`` entry.

        ``{"name": "...", "salt": "...", "variants": [{"name": "A", "version": 1, "weight": 0.5}, ...]}``
        """
        where = f"experiment in the config of prompt {default_name!r}"
        if not isinstance(data, Mapping):
            raise ConfigurationError(f"{where} must be a mapping, got {type(data).__name__}")
        raw = data.get("variants")
        if not isinstance(raw, Sequence) or isinstance(raw, str) or not raw:
            raise ConfigurationError(f"{where} needs a non-empty 'variants' list")
        variants = []
        for item in raw:
            if not isinstance(item, Mapping):
                raise ConfigurationError(f"{where}: each variant must be a mapping, got {item!r}")
            unknown = set(item) - {"name", "label", "version", "weight"}
            if unknown:
                raise ConfigurationError(f"{where}: unknown variant keys {sorted(unknown)}")
            if "name" not in item:
                raise ConfigurationError(f"{where}: each variant needs a 'name', got {dict(item)!r}")
            variants.append(Variant(**item))
        return cls(str(data.get("name") or default_name), variants, salt=data.get("salt"))


class Rollout(Experiment):
    """A gradual rollout: ``percent`` of users get the ``target`` label, the rest ``baseline``.

    Raising ``percent`` only moves users from baseline to target, never back.

    >>> Rollout("analyzer-canary", target="canary", percent=10).weights["canary"]
    0.1
    """

    def __init__(
        self,
        name: str,
        target: str,
        baseline: str = "production",
        percent: float = 0.0,
        salt: str | None = None,
    ) -> None:
        check_label(target)
        check_label(baseline)
        if target == baseline:
            raise ConfigurationError(f"rollout {name!r}: target and baseline are both {target!r}")
        if isinstance(percent, bool) or not isinstance(percent, (int, float)) or not 0 <= percent <= 100:
            raise ConfigurationError(f"rollout {name!r}: percent must be between 0 and 100, got {percent!r}")
        super().__init__(
            name,
            [Variant(target, label=target, weight=percent), Variant(baseline, label=baseline, weight=100 - percent)],
            salt=salt,
        )

    @property
    def target(self) -> str:
        """The label being rolled out."""
        return self.variants[0].name

    @property
    def baseline(self) -> str:
        """The label the rest of the users keep."""
        return self.variants[1].name

    @property
    def percent(self) -> float:
        """Share of users on the target label, in percent."""
        return self.variants[0].weight


class Assignment(NamedTuple):
    """The variant chosen for one call, and the unit it was chosen by."""

    experiment: Experiment
    variant: Variant
    unit: str | None
    unit_kind: UnitKind
    bucket: int


class _Unit(NamedTuple):
    user_id: str | None
    session_id: str | None


_current_unit: contextvars.ContextVar[_Unit] = contextvars.ContextVar(
    "langfuse_versioned_prompts_unit",
    default=_Unit(None, None),  # noqa: B039 - an immutable NamedTuple
)


@contextmanager
def variant_context(user_id: str | None = None, session_id: str | None = None) -> Iterator[None]:
    """Within the block, assignments use this user (or session) as the unit.

    >>> with variant_context(user_id="u-42"):
    ...     current_unit()
    ('u-42', None)
    """
    token = _current_unit.set(_Unit(_text_or_none(user_id), _text_or_none(session_id)))
    try:
        yield
    finally:
        _current_unit.reset(token)


def current_unit() -> tuple[str | None, str | None]:
    """``(user_id, session_id)`` set by the innermost ``variant_context``."""
    unit = _current_unit.get()
    return unit.user_id, unit.session_id


def assign_variant(
    experiment: Experiment,
    user_id: str | None = None,
    session_id: str | None = None,
    *,
    rng: random.Random | None = None,
) -> Assignment:
    """Choose the variant for a user (else a session, else at random with ``rng``).

    With neither id given, the ones set by ``variant_context`` are used.

    >>> exp = Rollout("canary", target="canary", percent=100)
    >>> assign_variant(exp, user_id="u-1").variant.label
    'canary'
    """
    if user_id is None and session_id is None:
        user_id, session_id = current_unit()
    user_id, session_id = _text_or_none(user_id), _text_or_none(session_id)
    if user_id is not None:
        unit, kind, bucket = user_id, "user", experiment.bucket(user_id)
    elif session_id is not None:
        unit, kind, bucket = session_id, "session", experiment.bucket(session_id)
    else:
        draw = (rng or _random).random()
        unit, kind, bucket = None, "random", min(int(draw * BUCKETS), BUCKETS - 1)
    return Assignment(experiment, experiment.variant_for_bucket(bucket), unit, kind, bucket)  # type: ignore[arg-type]


_random = random.Random()


def _text_or_none(value: object) -> str | None:
    if value is None or value == "":
        return None
    return str(value)
