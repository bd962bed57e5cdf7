"""Cache policy: default rules firing and not firing, overrides, TTLs, merging, size limit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from flowscope.cache.policy import (
    DEFAULT_OTHER_TTL_SECONDS,
    DEFAULT_TTL_SECONDS,
    MAX_TTL_SECONDS,
    MAX_VALUE_BYTES,
    CachePolicy,
    Decision,
    NodeOverride,
    PolicyError,
    decide,
    default_cacheable,
    merge_policy,
    policy_as_dict,
    resolve_ttl,
    value_size,
    within_size_limit,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "cache.md"


def _llm(temperature: Any = ..., **params: Any) -> dict[str, Any]:
    completion_params = dict(params)
    if temperature is not ...:
        completion_params["temperature"] = temperature
    return {"model": {"provider": "openai", "name": "m", "completion_params": completion_params}}


DEFAULT_RULES: list[tuple[str, dict[str, Any], bool, str]] = [
    ("llm", _llm(0), True, "llm with temperature 0 is treated as deterministic"),
    ("llm", _llm(0.0), True, "llm with temperature 0 is treated as deterministic"),
    ("llm", _llm(0.7), False, "llm with temperature 0.7 is not deterministic"),
    ("llm", _llm(1), False, "llm with temperature 1 is not deterministic"),
    (
        "llm",
        _llm(),
        False,
        "llm without a temperature is not deterministic (providers default to ~1)",
    ),
    ("llm", {}, False, "llm without a temperature is not deterministic (providers default to ~1)"),
    ("llm", _llm(None), False, "llm with temperature None is not deterministic"),
    ("llm", _llm("0"), False, "llm with temperature '0' is not deterministic"),
    ("llm", _llm(False), False, "llm with temperature False is not deterministic"),
    ("llm", {"temperature": 0}, True, "llm with temperature 0 is treated as deterministic"),
    (
        "llm",
        {"completion_params": {"temperature": 0}},
        True,
        "llm with temperature 0 is treated as deterministic",
    ),
    # Two temperatures that disagree: the non-zero one wins.
    (
        "llm",
        {**_llm(0), "temperature": 0.2},
        False,
        "llm with temperature 0.2 is not deterministic",
    ),
    # Declaring an llm deterministic is not enough: only temperature 0 or a node override.
    (
        "llm",
        {**_llm(0.7), "deterministic": True},
        False,
        "llm with temperature 0.7 is not deterministic",
    ),
    (
        "knowledge-retrieval",
        {},
        True,
        "knowledge-retrieval results depend on the query and the datasets",
    ),
    ("http-request", {"method": "GET"}, True, "http-request GET is safe to repeat"),
    ("http-request", {"method": "get"}, True, "http-request GET is safe to repeat"),
    ("http-request", {"method": "Head"}, True, "http-request HEAD is safe to repeat"),
    (
        "http-request",
        {"method": "POST"},
        False,
        "http-request POST may change state and is not cached",
    ),
    (
        "http-request",
        {"method": "put"},
        False,
        "http-request PUT may change state and is not cached",
    ),
    (
        "http-request",
        {"method": "DELETE"},
        False,
        "http-request DELETE may change state and is not cached",
    ),
    ("http-request", {}, False, "http-request without a method is not cached"),
    ("http-request", {"method": 1}, False, "http-request without a method is not cached"),
    ("tool", {"deterministic": True}, True, "tool is declared deterministic"),
    ("tool", {}, False, "tool is cached only when declared deterministic"),
    ("tool", {"deterministic": "true"}, False, "tool is cached only when declared deterministic"),
    ("tool", {"deterministic": 1}, False, "tool is cached only when declared deterministic"),
    ("code", {"deterministic": True}, True, "code is declared deterministic"),
    ("code", {"deterministic": False}, False, "code is cached only when declared deterministic"),
    (
        "template-transform",
        {},
        False,
        "template-transform is cached only when declared deterministic",
    ),
    ("agent", {"deterministic": True}, True, "agent is declared deterministic"),
]


@pytest.mark.parametrize(
    ("node_type", "config", "cacheable", "reason"),
    DEFAULT_RULES,
    ids=[f"{t}-{c}" for t, _, c, r in DEFAULT_RULES],
)
def test_default_rules(
    node_type: str, config: dict[str, Any], cacheable: bool, reason: str
) -> None:
    assert default_cacheable(node_type, config) == (cacheable, reason)
    decision = decide(CachePolicy(), "n1", node_type, config)
    expected_ttl = DEFAULT_TTL_SECONDS.get(node_type, DEFAULT_OTHER_TTL_SECONDS)
    assert decision == Decision(cacheable, expected_ttl if cacheable else None, reason)


DISABLED = CachePolicy(enabled=False, nodes={"n1": NodeOverride(cacheable=True)})
ALLOW_N1 = CachePolicy(nodes={"n1": NodeOverride(cacheable=True)})
DENY_N1 = CachePolicy(nodes={"n1": NodeOverride(cacheable=False)})
TTL_ONLY_N1 = CachePolicy(nodes={"n1": NodeOverride(ttl_seconds=60)})

OVERRIDES: list[tuple[str, CachePolicy, str, str, dict[str, Any], Decision]] = [
    (
        "disabled beats everything",
        DISABLED,
        "n1",
        "knowledge-retrieval",
        {},
        Decision(False, None, "caching is disabled for this workflow"),
    ),
    (
        "disabled beats a node override",
        DISABLED,
        "n1",
        "tool",
        {"deterministic": True},
        Decision(False, None, "caching is disabled for this workflow"),
    ),
    (
        "node allows a hot llm",
        ALLOW_N1,
        "n1",
        "llm",
        _llm(0.7),
        Decision(True, 86_400, "node n1 is marked cacheable"),
    ),
    (
        "node allows an llm without temperature",
        ALLOW_N1,
        "n1",
        "llm",
        {},
        Decision(True, 86_400, "node n1 is marked cacheable"),
    ),
    (
        "node allows a POST",
        ALLOW_N1,
        "n1",
        "http-request",
        {"method": "POST"},
        Decision(True, 300, "node n1 is marked cacheable"),
    ),
    (
        "node allows an undeclared tool",
        ALLOW_N1,
        "n1",
        "tool",
        {},
        Decision(True, 3_600, "node n1 is marked cacheable"),
    ),
    (
        "override is per node",
        ALLOW_N1,
        "n2",
        "tool",
        {},
        Decision(False, None, "tool is cached only when declared deterministic"),
    ),
    (
        "node denies a cold llm",
        DENY_N1,
        "n1",
        "llm",
        _llm(0),
        Decision(False, None, "node n1 is marked not cacheable"),
    ),
    (
        "node denies retrieval",
        DENY_N1,
        "n1",
        "knowledge-retrieval",
        {},
        Decision(False, None, "node n1 is marked not cacheable"),
    ),
    (
        "ttl-only override keeps the rule",
        TTL_ONLY_N1,
        "n1",
        "llm",
        _llm(0.7),
        Decision(False, None, "llm with temperature 0.7 is not deterministic"),
    ),
    (
        "ttl-only override sets the ttl",
        TTL_ONLY_N1,
        "n1",
        "llm",
        _llm(0),
        Decision(True, 60, "llm with temperature 0 is treated as deterministic"),
    ),
]


@pytest.mark.parametrize(
    ("policy", "node_id", "node_type", "config", "expected"),
    [case[1:] for case in OVERRIDES],
    ids=[case[0] for case in OVERRIDES],
)
def test_workflow_and_node_overrides(
    policy: CachePolicy, node_id: str, node_type: str, config: dict[str, Any], expected: Decision
) -> None:
    assert decide(policy, node_id, node_type, config) == expected


TTL_POLICY = CachePolicy(
    ttl_seconds={"llm": 1_000, "tool": 2_000},
    nodes={"llm_1": NodeOverride(ttl_seconds=10), "llm_2": NodeOverride(cacheable=True)},
)


@pytest.mark.parametrize(
    ("node_id", "node_type", "ttl"),
    [
        ("llm_1", "llm", 10),  # the node's own TTL first
        ("llm_2", "llm", 1_000),  # an override without a TTL falls through to the workflow's
        ("llm_3", "llm", 1_000),  # the workflow's TTL for the node type
        ("tool_1", "tool", 2_000),
        ("kr_1", "knowledge-retrieval", 3_600),  # then the default per node type
        ("http_1", "http-request", 300),
        ("code_1", "code", DEFAULT_OTHER_TTL_SECONDS),  # then the default for other types
    ],
)
def test_ttl_resolution_order(node_id: str, node_type: str, ttl: int) -> None:
    assert resolve_ttl(TTL_POLICY, node_id, node_type) == ttl


def test_default_ttls() -> None:
    assert dict(DEFAULT_TTL_SECONDS) == {
        "llm": 86_400,
        "knowledge-retrieval": 3_600,
        "http-request": 300,
    }
    assert DEFAULT_OTHER_TTL_SECONDS == 3_600


# -- merge_policy ----------------------------------------------------------------------

CURRENT = CachePolicy(
    enabled=True,
    ttl_seconds={"llm": 86_400, "http-request": 60},
    nodes={"llm_1": NodeOverride(cacheable=True, ttl_seconds=600), "tool_1": NodeOverride(False)},
)


def test_merge_of_the_documented_body() -> None:
    body = {
        "enabled": True,
        "ttl_seconds": {"llm": 86400, "knowledge-retrieval": 3600},
        "nodes": {"llm_1": {"cacheable": True, "ttl_seconds": 600}},
    }
    merged = merge_policy(CachePolicy(), body)
    assert merged == CachePolicy(
        enabled=True,
        ttl_seconds={"llm": 86_400, "knowledge-retrieval": 3_600},
        nodes={"llm_1": NodeOverride(cacheable=True, ttl_seconds=600)},
    )
    assert policy_as_dict(merged) == body
    assert merge_policy(CachePolicy(), policy_as_dict(CURRENT)) == CURRENT


@pytest.mark.parametrize(
    ("patch", "expected"),
    [
        ({}, CURRENT),
        ({"enabled": False}, CachePolicy(False, CURRENT.ttl_seconds, CURRENT.nodes)),
        ({"enabled": None}, CURRENT),
        (
            {"ttl_seconds": {"knowledge-retrieval": 7_200}},
            CachePolicy(True, {**CURRENT.ttl_seconds, "knowledge-retrieval": 7_200}, CURRENT.nodes),
        ),
        ({"ttl_seconds": {"llm": None}}, CachePolicy(True, {"http-request": 60}, CURRENT.nodes)),
        ({"ttl_seconds": None}, CachePolicy(True, {}, CURRENT.nodes)),
        (
            {"nodes": {"llm_1": {"ttl_seconds": 30}}},
            CachePolicy(
                True,
                CURRENT.ttl_seconds,
                {"llm_1": NodeOverride(True, 30), "tool_1": NodeOverride(False)},
            ),
        ),
        (
            {"nodes": {"llm_1": {"cacheable": None}}},
            CachePolicy(
                True,
                CURRENT.ttl_seconds,
                {"llm_1": NodeOverride(None, 600), "tool_1": NodeOverride(False)},
            ),
        ),
        (
            {"nodes": {"llm_1": None}},
            CachePolicy(True, CURRENT.ttl_seconds, {"tool_1": NodeOverride(False)}),
        ),
        (
            {"nodes": {"tool_1": {"cacheable": None}}},
            CachePolicy(True, CURRENT.ttl_seconds, {"llm_1": NodeOverride(True, 600)}),
        ),
        (
            {"nodes": {"code_1": {"cacheable": True}}},
            CachePolicy(True, CURRENT.ttl_seconds, {**CURRENT.nodes, "code_1": NodeOverride(True)}),
        ),
        ({"nodes": None}, CachePolicy(True, CURRENT.ttl_seconds, {})),
    ],
)
def test_merge_keeps_omitted_fields(patch: dict[str, Any], expected: CachePolicy) -> None:
    assert merge_policy(CURRENT, patch) == expected


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"enable": True}, "unknown field 'enable'"),
        ({"nodes": {"llm_1": {"ttl": 5}}}, "unknown field 'nodes.llm_1.ttl'"),
        ({"enabled": "yes"}, "enabled must be true, false or null"),
        ({"enabled": 1}, "enabled must be true, false or null"),
        ({"ttl_seconds": {"llm": 0}}, "ttl_seconds.llm must be between 1 and 31536000"),
        ({"ttl_seconds": {"llm": -5}}, "ttl_seconds.llm must be between 1"),
        ({"ttl_seconds": {"llm": MAX_TTL_SECONDS + 1}}, "ttl_seconds.llm must be between"),
        ({"ttl_seconds": {"llm": 60.0}}, "ttl_seconds.llm must be a whole number of seconds"),
        ({"ttl_seconds": {"llm": "60"}}, "ttl_seconds.llm must be a whole number"),
        ({"ttl_seconds": {"llm": True}}, "ttl_seconds.llm must be a whole number"),
        ({"ttl_seconds": [60]}, "ttl_seconds must be an object"),
        ({"ttl_seconds": {"": 60}}, "ttl_seconds keys must be non-empty strings"),
        (
            {"nodes": {"llm_1": {"cacheable": "yes"}}},
            "nodes.llm_1.cacheable must be true, false or null",
        ),
        ({"nodes": {"llm_1": {"ttl_seconds": 0}}}, "nodes.llm_1.ttl_seconds must be between"),
        ({"nodes": {"llm_1": True}}, "nodes.llm_1 must be an object or null"),
        ({"nodes": ["llm_1"]}, "nodes must be an object"),
    ],
)
def test_merge_rejects_bad_fields(patch: dict[str, Any], message: str) -> None:
    with pytest.raises(PolicyError, match=message.replace(".", r"\.")):
        merge_policy(CURRENT, patch)
    with pytest.raises(ValueError):
        merge_policy(CURRENT, patch)


def test_merge_rejects_a_body_that_is_not_an_object() -> None:
    with pytest.raises(PolicyError, match="must be a JSON object"):
        merge_policy(CURRENT, [])  # type: ignore[arg-type]


def test_a_failed_merge_changes_nothing() -> None:
    before = policy_as_dict(CURRENT)
    with pytest.raises(PolicyError):
        merge_policy(CURRENT, {"ttl_seconds": {"tool": 5, "llm": 0}})
    assert policy_as_dict(CURRENT) == before


def test_policies_are_immutable() -> None:
    ttls = {"llm": 60}
    policy = CachePolicy(ttl_seconds=ttls)
    ttls["llm"] = 1
    assert policy.ttl_seconds["llm"] == 60
    with pytest.raises(TypeError):
        policy.ttl_seconds["llm"] = 5  # type: ignore[index]
    with pytest.raises(AttributeError):
        policy.enabled = False  # type: ignore[misc]


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: CachePolicy(enabled=1), "enabled must be true or false"),  # type: ignore[arg-type]
        (lambda: CachePolicy(ttl_seconds={"llm": 0}), "ttl_seconds.llm must be between"),
        (lambda: NodeOverride(ttl_seconds=10**9), "ttl_seconds must be between"),
        (lambda: NodeOverride(cacheable="no"), "cacheable must be true, false or null"),  # type: ignore[arg-type]
    ],
)
def test_constructors_validate(build: Any, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        build()


# -- size limit ------------------------------------------------------------------------


def test_value_size_is_the_orjson_encoding() -> None:
    assert value_size({"a": 1}) == len(b'{"a":1}')
    assert value_size("é") == len('"é"'.encode())


def test_values_over_the_limit_are_not_stored() -> None:
    overhead = value_size("")  # the two quotes
    assert within_size_limit("x" * (MAX_VALUE_BYTES - overhead))
    assert not within_size_limit("x" * (MAX_VALUE_BYTES - overhead + 1))
    assert MAX_VALUE_BYTES == 1_000_000


def test_doc_states_the_defaults() -> None:
    doc = DOC.read_text(encoding="utf-8")
    for node_type, ttl in DEFAULT_TTL_SECONDS.items():
        assert f"| `{node_type}` | {ttl} " in doc
    assert f"| others | {DEFAULT_OTHER_TTL_SECONDS} " in doc
    assert str(MAX_VALUE_BYTES) in doc and str(MAX_TTL_SECONDS) in doc
