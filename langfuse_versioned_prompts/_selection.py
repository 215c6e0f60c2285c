"""Which prompt version serves a call: the spec of a template, the unit, and the fallback.

Shared by the LangChain and LlamaIndex templates; pure decisions around the resolver.
"""

from __future__ import annotations

import dataclasses
import logging
import random
from collections.abc import Generator, Mapping
from typing import Any, NamedTuple, TypeVar, cast

from ._errors import ConfigurationError, LVPError, RenderError
from ._prompt import ResolvedPrompt
from .resolver import PromptResolver
from .variants import Assignment, Experiment, assign_variant

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class PromptSpec:
    """What a template asks for: a name and one of label, version or experiment, plus a fallback."""

    name: str
    label: str | None = None
    version: int | None = None
    experiment: Experiment | None = None
    fallback: str | int | None = None

    def __post_init__(self) -> None:
        chosen = [k for k in ("label", "version", "experiment") if getattr(self, k) is not None]
        if len(chosen) > 1:
            raise ConfigurationError(
                f"prompt {self.name!r}: give one of label, version, experiment or rollout, got {chosen}"
            )
        if self.fallback is not None and (isinstance(self.fallback, bool) or not isinstance(self.fallback, (str, int))):
            raise ConfigurationError(
                f"prompt {self.name!r}: fallback must be a label (str) or a version (int), got {self.fallback!r}"
            )

    def fallback_request(self) -> tuple[str | None, int | None]:
        """``(label, version)`` of the fallback."""
        if isinstance(self.fallback, int):
            return None, self.fallback
        return self.fallback, None


class Selection(NamedTuple):
    """The prompt that serves a call and, in an experiment, the assignment that chose it."""

    prompt: ResolvedPrompt
    assignment: Assignment | None
    fallback_from: ResolvedPrompt | None = None

    def metadata(self) -> dict[str, Any]:
        """The run metadata that says what served this call."""
        prompt, assignment = self.prompt, self.assignment
        data = dict(prompt.run_metadata)
        if self.fallback_from is not None:  # marked, not linked, as Langfuse treats fallbacks
            data["prompt_is_fallback"] = True
            data.pop("langfuse_prompt", None)
        if assignment is not None:
            data["ab_experiment"] = assignment.experiment.name
            data["ab_variant"] = assignment.variant.name
        return data


def _remote_experiment(spec: PromptSpec, base: ResolvedPrompt) -> Experiment | None:
    """The experiment in the base prompt's config; a broken one is logged and ignored."""
    if spec.version is not None:
        return None
    try:
        return base.experiment
    except ConfigurationError as exc:
        logger.warning("Ignoring the experiment in %s v%s: %s", base.name, base.version, exc)
        return None


def _variant_request(spec: PromptSpec, assignment: Assignment) -> tuple[str | None, int | None]:
    variant = assignment.variant
    if variant.label is None and variant.version is None:
        return spec.label, None
    return variant.label, variant.version


Request = tuple[str | None, int | None]
"""A prompt version a plan needs: ``(label, version)`` of the spec's prompt."""


def _plan_select(
    spec: PromptSpec, user_id: str | None, session_id: str | None, rng: random.Random | None
) -> Generator[Request, ResolvedPrompt, Selection]:
    experiment = spec.experiment
    if experiment is None:
        base = yield spec.label, spec.version
        experiment = _remote_experiment(spec, base)
        if experiment is None:
            return Selection(base, None)
    assignment = assign_variant(experiment, user_id, session_id, rng=rng)
    prompt = yield _variant_request(spec, assignment)
    return Selection(prompt, assignment)


def _plan_render(
    spec: PromptSpec, selection: Selection, values: Mapping[str, Any]
) -> Generator[Request, ResolvedPrompt, tuple[Any, Selection]]:
    try:
        return selection.prompt.render(**values), selection
    except RenderError as exc:
        if spec.fallback is None:
            raise
        try:
            fallback = yield spec.fallback_request()
        except LVPError as lookup:
            raise exc from lookup
        return _render_fallback(selection, fallback, values, exc)


def _run(resolver: PromptResolver, name: str, plan: Generator[Request, ResolvedPrompt, T]) -> T:
    """Answer a plan's requests with ``resolver.get``."""
    try:
        request = next(plan)
        while True:
            try:
                prompt = resolver.get(name, *request)
            except LVPError as exc:
                request = plan.throw(exc)
            else:
                request = plan.send(prompt)
    except StopIteration as done:
        return cast(T, done.value)


async def _arun(resolver: PromptResolver, name: str, plan: Generator[Request, ResolvedPrompt, T]) -> T:
    """Answer a plan's requests with ``resolver.aget``."""
    try:
        request = next(plan)
        while True:
            try:
                prompt = await resolver.aget(name, *request)
            except LVPError as exc:
                request = plan.throw(exc)
            else:
                request = plan.send(prompt)
    except StopIteration as done:
        return cast(T, done.value)


def select(
    resolver: PromptResolver,
    spec: PromptSpec,
    user_id: str | None = None,
    session_id: str | None = None,
    rng: random.Random | None = None,
) -> Selection:
    """Resolve the prompt for one call (experiments in the prompt config included)."""
    if spec.experiment is None:  # the common case needs no plan: one lookup, nothing to assign
        base = resolver.get(spec.name, label=spec.label, version=spec.version)
        if _remote_experiment(spec, base) is None:
            return Selection(base, None)
    return _run(resolver, spec.name, _plan_select(spec, user_id, session_id, rng))


async def aselect(
    resolver: PromptResolver,
    spec: PromptSpec,
    user_id: str | None = None,
    session_id: str | None = None,
    rng: random.Random | None = None,
) -> Selection:
    """Async twin of ``select``."""
    if spec.experiment is None:
        base = await resolver.aget(spec.name, label=spec.label, version=spec.version)
        if _remote_experiment(spec, base) is None:
            return Selection(base, None)
    return await _arun(resolver, spec.name, _plan_select(spec, user_id, session_id, rng))


def render(
    resolver: PromptResolver, spec: PromptSpec, selection: Selection, values: Mapping[str, Any]
) -> tuple[Any, Selection]:
    """Render the selected prompt; on a render error use the spec's fallback, if any."""
    if spec.fallback is None:  # nothing to fall back to: no plan needed
        return selection.prompt.render(**values), selection
    return _run(resolver, spec.name, _plan_render(spec, selection, values))


async def arender(
    resolver: PromptResolver, spec: PromptSpec, selection: Selection, values: Mapping[str, Any]
) -> tuple[Any, Selection]:
    """Async twin of ``render``."""
    if spec.fallback is None:
        return selection.prompt.render(**values), selection
    return await _arun(resolver, spec.name, _plan_render(spec, selection, values))


def _render_fallback(
    selection: Selection, fallback: ResolvedPrompt, values: Mapping[str, Any], error: RenderError
) -> tuple[Any, Selection]:
    if fallback.version == selection.prompt.version:
        raise error
    try:
        rendered = fallback.render(**values)
    except RenderError:
        raise error from None
    return rendered, Selection(fallback, selection.assignment, fallback_from=selection.prompt)


def input_variables_of(resolver: PromptResolver, spec: PromptSpec) -> list[str]:
    """Variables and placeholders of every version the spec can serve (for construction)."""
    requests: list[tuple[str | None, int | None]] = []
    experiment = spec.experiment
    if experiment is None:
        base = resolver.get(spec.name, label=spec.label, version=spec.version)
        experiment = _remote_experiment(spec, base)
        if experiment is None:
            return [*base.variables, *base.placeholders]
    for variant in experiment.variants:
        if variant.weight > 0:
            requests.append(
                (variant.label, variant.version) if variant.label or variant.version else (spec.label, None)
            )
    names: dict[str, None] = {}
    errors: list[str] = []
    for label, version in requests:
        try:
            prompt = resolver.get(spec.name, label=label, version=version)
        except Exception as exc:  # a variant may not exist yet; the others decide
            errors.append(str(exc))
            continue
        names.update(dict.fromkeys([*prompt.variables, *prompt.placeholders]))
    if errors and not names:
        raise ConfigurationError(
            f"cannot read the variables of prompt {spec.name!r}: {'; '.join(errors)}; pass input_variables explicitly"
        )
    return list(names)
