"""Sticky, weighted assignment of users to variants."""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
from collections import Counter

import pytest

from langfuse_versioned_prompts import (
    ConfigurationError,
    Experiment,
    Rollout,
    Variant,
    assign_variant,
    variant_context,
)

AB = Experiment("analyzer-v2", [Variant("A", version=1, weight=0.5), Variant("B", version=2, weight=0.5)])


def test_bucket_is_the_documented_sha256_formula() -> None:
    digest = hashlib.sha256(b"analyzer-v2:u-42").digest()
    assert AB.bucket("u-42") == int.from_bytes(digest[:8], "big") % 10_000
    salted = Experiment("x", AB.variants, salt="s1")
    assert salted.bucket("u-42") == int.from_bytes(hashlib.sha256(b"s1:u-42").digest()[:8], "big") % 10_000


def test_same_variant_in_every_process_whatever_the_hash_seed() -> None:
    script = (
        "import json; from langfuse_versioned_prompts import Experiment, Variant, assign_variant\n"
        "e = Experiment('analyzer-v2', [Variant('A', version=1), Variant('B', version=2)])\n"
        "print(json.dumps([assign_variant(e, user_id=f'u{i}').variant.name for i in range(2000)]))"
    )
    runs = []
    for seed in ("0", "1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
        runs.append(json.loads(out.stdout))
    here = [assign_variant(AB, user_id=f"u{i}").variant.name for i in range(2000)]
    assert runs[0] == runs[1] == runs[2] == here


@pytest.mark.parametrize("weights", [(0.5, 0.5), (0.9, 0.1), (1, 2, 7)])
def test_split_within_one_point_of_the_weights(weights: tuple[float, ...]) -> None:
    experiment = Experiment("split", [Variant(f"v{i}", weight=w) for i, w in enumerate(weights)])
    counts = Counter(assign_variant(experiment, user_id=f"user-{i}").variant.name for i in range(100_000))
    total = sum(weights)
    for i, weight in enumerate(weights):
        assert abs(counts[f"v{i}"] / 100_000 - weight / total) < 0.01


def test_raising_a_rollout_only_moves_users_to_the_target() -> None:
    users = [f"user-{i}" for i in range(20_000)]
    previous = {u: "production" for u in users}
    for percent in (0, 1, 5, 10, 25, 50, 99, 100):
        rollout = Rollout("analyzer-canary", target="canary", percent=percent)
        now = {u: assign_variant(rollout, user_id=u).variant.label for u in users}
        assert all(now[u] == "canary" for u in users if previous[u] == "canary"), percent
        share = sum(label == "canary" for label in now.values()) / len(users)
        assert abs(share - percent / 100) < 0.015
        previous = now


def test_unit_falls_back_to_session_then_a_seedable_draw() -> None:
    by_session = assign_variant(AB, session_id="s-1")
    assert by_session.unit_kind == "session" and by_session.unit == "s-1"
    first = [assign_variant(AB, rng=random.Random(7)).variant.name for _ in range(5)]
    again = [assign_variant(AB, rng=random.Random(7)).variant.name for _ in range(5)]
    assert first == again
    draws = Counter(assign_variant(AB, rng=random.Random(i)).unit_kind for i in range(10))
    assert draws == {"random": 10}


def test_variant_context_sets_the_unit_and_explicit_ids_win() -> None:
    with variant_context(user_id="u-42"):
        inside = assign_variant(AB)
        explicit = assign_variant(AB, user_id="u-7")
    assert inside.unit == "u-42" and inside.unit_kind == "user"
    assert explicit.unit == "u-7"
    assert assign_variant(AB, rng=random.Random(1)).unit_kind == "random"


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Variant("A", weight=-1), "weight must be >= 0"),
        (lambda: Variant("A", weight=float("nan")), "finite"),
        (lambda: Variant("A", weight=float("inf")), "finite"),
        (lambda: Variant("A", label="x", version=1), "not both"),
        (lambda: Variant("A", label="Bad Label"), "invalid label"),
        (lambda: Variant("", version=1), "non-empty"),
        (lambda: Experiment("e", []), "at least one variant"),
        (lambda: Experiment("e", [Variant("A", weight=0), Variant("B", weight=0)]), "sum to more than 0"),
        (lambda: Experiment("e", [Variant("A"), Variant("A")]), "unique"),
        (lambda: Rollout("r", target="canary", percent=101), "between 0 and 100"),
        (lambda: Rollout("r", target="production"), "both 'production'"),
    ],
)
def test_bad_definitions_name_the_problem(build: object, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        build()  # type: ignore[operator]


def test_experiment_from_a_prompt_config() -> None:
    exp = Experiment.from_config(
        {
            "name": "remote",
            "variants": [{"name": "A", "label": "production", "weight": 3}, {"name": "B", "version": 2}],
        },
        default_name="p",
    )
    assert exp.name == "remote" and exp.weights == {"A": 0.75, "B": 0.25}
    with pytest.raises(ConfigurationError, match="unknown variant keys"):
        Experiment.from_config({"variants": [{"name": "A", "percent": 1}]}, default_name="p")
    with pytest.raises(ConfigurationError, match="non-empty 'variants'"):
        Experiment.from_config({"variants": []}, default_name="p")
