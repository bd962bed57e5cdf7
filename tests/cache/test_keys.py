"""Cache keys: the documented test vectors, stability, what changes a key and what does not."""

from __future__ import annotations

import copy
import json
import random
import re
import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flowscope.cache.keys import (
    NON_SEMANTIC_KEYS,
    NON_SEMANTIC_KEYS_BY_TYPE,
    CacheKeyError,
    cache_key,
    dropped_keys,
    key_material,
    result_config,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "cache.md"

_VECTOR = re.compile(
    r"<!-- cache-key-vector: (?P<name>[\w-]+) -->.*?"
    r"```json\n(?P<arguments>.*?)\n```.*?"
    r"```json\n(?P<canonical>.*?)\n```.*?"
    r"Key: `(?P<key>[0-9a-f]{64})`",
    re.DOTALL,
)


def _doc_vectors() -> list[tuple[str, dict[str, Any], str, str]]:
    found = [
        (m["name"], json.loads(m["arguments"]), m["canonical"], m["key"])
        for m in _VECTOR.finditer(DOC.read_text(encoding="utf-8"))
    ]
    assert found, "no test vectors found in docs/cache.md"
    return found


VECTORS = _doc_vectors()


def test_doc_has_the_required_vectors() -> None:
    names = [name for name, *_ in VECTORS]
    assert len(names) >= 4 and len(set(names)) == len(names)
    assert {"unicode", "floats", "utf16-order"} <= set(names)
    assert DOC.read_text(encoding="utf-8").count("<!-- cache-key-vector:") == len(names)


@pytest.mark.parametrize(
    ("name", "arguments", "canonical", "key"), VECTORS, ids=[name for name, *_ in VECTORS]
)
def test_doc_vector_is_reproduced(
    name: str, arguments: dict[str, Any], canonical: str, key: str
) -> None:
    assert key_material(**arguments) == canonical.encode("utf-8"), name
    assert cache_key(**arguments) == key, name


def test_doc_lists_every_dropped_key() -> None:
    doc = DOC.read_text(encoding="utf-8")
    for key in NON_SEMANTIC_KEYS:
        assert f"`{key}`" in doc, f"{key} missing from docs/cache.md"
    for node_type, keys in NON_SEMANTIC_KEYS_BY_TYPE.items():
        assert f"`{node_type}`" in doc
        for key in keys:
            assert f"`{key}`" in doc, f"{node_type} {key} missing from docs/cache.md"


# RFC 8785 appendix B: IEEE 754 bit patterns and their canonical form.
RFC_8785_NUMBERS = [
    (0x0000000000000000, "0"),
    (0x8000000000000000, "0"),
    (0x0000000000000001, "5e-324"),
    (0x8000000000000001, "-5e-324"),
    (0x7FEFFFFFFFFFFFFF, "1.7976931348623157e+308"),
    (0xFFEFFFFFFFFFFFFF, "-1.7976931348623157e+308"),
    (0x4340000000000000, "9007199254740992"),
    (0xC340000000000000, "-9007199254740992"),
    (0x4430000000000000, "295147905179352830000"),
    (0x44B52D02C7E14AF5, "9.999999999999997e+22"),
    (0x44B52D02C7E14AF6, "1e+23"),
    (0x44B52D02C7E14AF7, "1.0000000000000001e+23"),
    (0x444B1AE4D6E2EF4E, "999999999999999700000"),
    (0x444B1AE4D6E2EF4F, "999999999999999900000"),
    (0x444B1AE4D6E2EF50, "1e+21"),
    (0x3EB0C6F7A0B5ED8C, "9.999999999999997e-7"),
    (0x3EB0C6F7A0B5ED8D, "0.000001"),
    (0x41B3DE4355555553, "333333333.3333332"),
    (0x41B3DE4355555554, "333333333.33333325"),
    (0x41B3DE4355555555, "333333333.3333333"),
    (0x41B3DE4355555556, "333333333.3333334"),
    (0x41B3DE4355555557, "333333333.33333343"),
    (0xBECBF647612F3696, "-0.0000033333333333333333"),
    (0x43143FF3C1CB0959, "1424953923781206.2"),
]


def _args(**changes: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "tenant": "acme",
        "app_id": "app-1",
        "workflow_id": "wf-1",
        "node_id": "node-1",
        "node_type": "code",
        "config": {},
        "inputs": {},
    }
    arguments.update(changes)
    return arguments


@pytest.mark.parametrize(("bits", "expected"), RFC_8785_NUMBERS)
def test_numbers_are_formatted_like_ecmascript(bits: int, expected: str) -> None:
    (number,) = struct.unpack(">d", bits.to_bytes(8, "big"))
    material = key_material(**_args(inputs={"n": number}))
    assert f'"inputs":{{"n":{expected}}}'.encode() in material


def test_keys_sort_by_utf16_code_units() -> None:
    # RFC 8785 section 3.2.3.
    keys = ["\u20ac", "\r", "\ufb33", "1", "\U0001f600", "\u0080", "\u00f6"]
    material = key_material(**_args(inputs={key: 0 for key in keys}))
    inputs = json.loads(material)["inputs"]
    assert list(inputs) == ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]


# -- stability -------------------------------------------------------------------------

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
_json = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
_objects = st.dictionaries(st.text(), _json, max_size=5)


def _shuffled(value: Any, rng: random.Random) -> Any:
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {key: _shuffled(item, rng) for key, item in items}
    if isinstance(value, list):
        return [_shuffled(item, rng) for item in value]
    return value


@given(config=_objects, inputs=_objects, seed=st.integers())
def test_key_does_not_depend_on_key_order(
    config: dict[str, Any], inputs: dict[str, Any], seed: int
) -> None:
    rng = random.Random(seed)
    config = {k: v for k, v in config.items() if k not in dropped_keys("llm")}
    first = cache_key(**_args(node_type="llm", config=config, inputs=inputs))
    again = cache_key(
        **_args(node_type="llm", config=_shuffled(config, rng), inputs=_shuffled(inputs, rng))
    )
    assert first == again
    assert re.fullmatch(r"[0-9a-f]{64}", first)


@given(config=_objects, inputs=_objects)
def test_canonical_json_reads_back_as_the_same_data(
    config: dict[str, Any], inputs: dict[str, Any]
) -> None:
    material = key_material(**_args(node_type="tool", config=config, inputs=inputs))
    # JSON numbers are doubles: read them back as such (ints are within 2**53, so exact).
    parsed = json.loads(material, parse_int=float)
    assert parsed["inputs"] == inputs
    assert parsed["config"] == {k: v for k, v in config.items() if k not in dropped_keys("tool")}


def test_integral_floats_and_ints_are_the_same_json_number() -> None:
    assert cache_key(**_args(inputs={"n": 1})) == cache_key(**_args(inputs={"n": 1.0}))


def test_tuples_are_arrays() -> None:
    assert cache_key(**_args(inputs={"xs": (1, 2)})) == cache_key(**_args(inputs={"xs": [1, 2]}))


# -- what changes a key ----------------------------------------------------------------

LLM_CONFIG: dict[str, Any] = {
    "title": "Answer",
    "type": "llm",
    "model": {
        "provider": "openai",
        "name": "gpt-4o-mini",
        "mode": "chat",
        "completion_params": {
            "temperature": 0,
            "top_p": 1,
            "top_k": 40,
            "max_tokens": 512,
            "presence_penalty": 0,
            "frequency_penalty": 0,
            "stop": ["\n\n"],
            "seed": 42,
            "response_format": {"type": "json_object"},
            "logit_bias": {"50256": -100},
        },
    },
    "prompt_template": [
        {"role": "system", "text": "You answer briefly."},
        {"role": "user", "text": "{{#sys.query#}}"},
    ],
    "tools": [{"type": "function", "function": {"name": "lookup", "parameters": {}}}],
    "tool_choice": "auto",
    "memory": {"window": {"enabled": True, "size": 10}},
    "context": {"enabled": False},
    "vision": {"enabled": False},
}

_PARAMS = ("model", "completion_params")

LLM_CHANGES: list[tuple[tuple[Any, ...], Any]] = [
    (("model", "provider"), "anthropic"),
    (("model", "name"), "gpt-4o"),
    (("model", "mode"), "completion"),
    ((*_PARAMS, "temperature"), 0.01),
    ((*_PARAMS, "top_p"), 0.9),
    ((*_PARAMS, "top_k"), 41),
    ((*_PARAMS, "max_tokens"), 513),
    ((*_PARAMS, "presence_penalty"), 0.5),
    ((*_PARAMS, "frequency_penalty"), 0.5),
    ((*_PARAMS, "stop"), ["\n"]),
    ((*_PARAMS, "seed"), 43),
    ((*_PARAMS, "response_format"), {"type": "text"}),
    ((*_PARAMS, "logit_bias"), {"50256": -99}),
    # Parameters nobody listed must count too: a whitelist would miss them.
    ((*_PARAMS, "repetition_penalty"), 1.1),
    ((*_PARAMS, "reasoning_effort"), "high"),
    ((*_PARAMS, "n"), 2),
    (("prompt_template",), [{"role": "user", "text": "{{#sys.query#}}"}]),
    (("prompt_template", 0, "text"), "You answer at length."),
    (("tools",), []),
    (("tools", 0, "function", "name"), "search"),
    (("tool_choice",), "required"),
    (("memory", "window", "size"), 5),
    (("context", "enabled"), True),
    (("vision", "enabled"), True),
    (("structured_output",), {"schema": {"type": "object"}}),
    (("type",), "llm-v2"),
]


def _changed(config: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(config)
    target: Any = changed
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return changed


@pytest.mark.parametrize(("path", "value"), LLM_CHANGES, ids=[str(p) for p, _ in LLM_CHANGES])
def test_every_llm_setting_changes_the_key(path: tuple[Any, ...], value: Any) -> None:
    base = cache_key(**_args(node_type="llm", config=LLM_CONFIG))
    changed = cache_key(**_args(node_type="llm", config=_changed(LLM_CONFIG, path, value)))
    assert base != changed


@pytest.mark.parametrize("name", sorted(LLM_CONFIG["model"]["completion_params"]))
def test_removing_an_llm_parameter_changes_the_key(name: str) -> None:
    without = copy.deepcopy(LLM_CONFIG)
    del without["model"]["completion_params"][name]
    assert cache_key(**_args(node_type="llm", config=LLM_CONFIG)) != cache_key(
        **_args(node_type="llm", config=without)
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("tenant", "other-tenant"),
        ("app_id", "app-2"),
        ("workflow_id", "wf-2"),
        ("node_id", "node-2"),
        ("node_type", "tool"),
        ("inputs", {"q": "other"}),
    ],
)
def test_identity_and_inputs_change_the_key(field: str, value: Any) -> None:
    base = _args(config={"code": "x"}, inputs={"q": "same"})
    assert cache_key(**base) != cache_key(**{**base, field: value})


def test_tenants_never_share_a_key() -> None:
    shared = {"node_type": "llm", "config": LLM_CONFIG, "inputs": {"q": "hi"}}
    assert cache_key(**_args(tenant="a", **shared)) != cache_key(**_args(tenant="b", **shared))


# -- what does not ---------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(NON_SEMANTIC_KEYS))
@pytest.mark.parametrize("node_type", ["llm", "knowledge-retrieval", "http-request", "tool"])
def test_non_semantic_keys_do_not_change_the_key(name: str, node_type: str) -> None:
    config = {"model": {"name": "m"}, "method": "GET"}
    with_it = {**config, name: {"anything": [1, 2]}}
    assert cache_key(**_args(node_type=node_type, config=config)) == cache_key(
        **_args(node_type=node_type, config=with_it)
    )


def test_http_timeout_is_dropped_only_for_http_requests() -> None:
    config = {"method": "GET", "url": "https://example.com"}
    slow = {**config, "timeout": {"read": 60}}
    assert result_config("http-request", slow) == config
    assert result_config("tool", slow) == slow


def test_nested_keys_named_like_dropped_ones_are_kept() -> None:
    config = {"response_format": {"json_schema": {"title": "Reply", "desc": "d"}}}
    assert result_config("llm", config) == config
    assert cache_key(**_args(node_type="llm", config=config)) != cache_key(
        **_args(node_type="llm", config={"response_format": {"json_schema": {}}})
    )


def test_result_config_returns_plain_copies() -> None:
    config: dict[str, Any] = {"a": (1, 2), "b": {"c": [3]}}
    kept = result_config("code", config)
    assert kept == {"a": [1, 2], "b": {"c": [3]}}
    kept["b"]["c"].append(4)
    assert config["b"]["c"] == [3]


# -- values with no key ----------------------------------------------------------------

BAD_VALUES: list[tuple[str, dict[str, Any], str]] = [
    ("config", {"temperature": float("nan")}, "config.temperature"),
    (
        "config",
        {"model": {"completion_params": {"top_p": float("inf")}}},
        "config.model.completion_params.top_p",
    ),
    ("config", {"logit_bias": {"50256": -float("inf")}}, 'config.logit_bias["50256"]'),
    ("inputs", {"items": [1, 2, 2**53]}, "inputs.items[2]"),
    ("inputs", {"n": -(2**53)}, "inputs.n"),
    ("inputs", {"n": 10**30}, "inputs.n"),
    ("inputs", {"a b": {1: "x"}}, 'inputs["a b"]'),
    ("inputs", {"s": "\ud800"}, "inputs.s"),
    ("inputs", {"\udfff": 1}, 'inputs["\udfff"]'),
    ("inputs", {"tags": {"a", "b"}}, "inputs.tags"),
    ("inputs", {"blob": b"bytes"}, "inputs.blob"),
    ("inputs", {"when": object()}, "inputs.when"),
]


@pytest.mark.parametrize(("field", "value", "path"), BAD_VALUES, ids=[p for *_, p in BAD_VALUES])
def test_values_without_canonical_form_are_refused_with_their_path(
    field: str, value: dict[str, Any], path: str
) -> None:
    with pytest.raises(CacheKeyError) as raised:
        cache_key(**_args(**{field: value}))
    assert raised.value.path == path
    assert path in str(raised.value)
    assert isinstance(raised.value, ValueError)


def test_largest_safe_integers_are_accepted() -> None:
    key_material(**_args(inputs={"max": 2**53 - 1, "min": -(2**53) + 1}))


@pytest.mark.parametrize(
    ("field", "value", "path"),
    [
        ("tenant", None, "tenant"),
        ("node_id", 7, "node_id"),
        ("config", [], "config"),
        ("inputs", "text", "inputs"),
    ],
)
def test_wrong_argument_types_are_refused(field: str, value: Any, path: str) -> None:
    with pytest.raises(CacheKeyError) as raised:
        cache_key(**_args(**{field: value}))
    assert raised.value.path == path
