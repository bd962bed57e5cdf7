"""Cache keys: SHA-256 over the RFC 8785 canonical JSON of what determines a node's result.

The key object (docs/cache.md gives test vectors to reproduce it in another language):

    {"v": 1, "tenant": ..., "app_id": ..., "workflow_id": ..., "node_id": ...,
     "node_type": ..., "config": result_config(node_type, config), "inputs": inputs}

`config` keeps the whole node configuration except a documented list of top-level keys that
cannot change a result (titles, canvas layout, editor state). It is a denylist on purpose: a
list of the keys that matter misses the parameter nobody thought of (a new sampling option,
`logit_bias`, a tool schema) and then serves one configuration's answer to another.

    >>> cache_key(tenant="t", app_id="a", workflow_id="w", node_id="n", node_type="code",
    ...           config={}, inputs={})[:12]
    'd76d3027778a'
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from typing import Any

import rfc8785

KEY_VERSION = 1
"""Bumped whenever the key object or the configuration kept in it changes meaning."""

# Safe integers of IEEE 754 doubles (ECMAScript's Number.MAX_SAFE_INTEGER); rfc8785 refuses
# anything beyond, since another implementation would read it as a different number.
MAX_SAFE_INTEGER = 2**53 - 1

NON_SEMANTIC_KEYS: frozenset[str] = frozenset(
    {
        # Labels shown on the canvas.
        "title",
        "desc",
        # Canvas layout and editor state (Dify's React Flow nodes).
        "position",
        "positionAbsolute",
        "width",
        "height",
        "selected",
        "dragging",
        "draggable",
        "selectable",
        "sourcePosition",
        "targetPosition",
        "zIndex",
        # Editor run state that Dify keeps on node data.
        "_connectedSourceHandleIds",
        "_connectedTargetHandleIds",
        "_runningStatus",
        "_singleRunningStatus",
        "_isSingleRun",
        "_isCandidate",
        "_isBundled",
        "_isEntering",
        "_isInvalidConnection",
        "_waitingRun",
        "_dimmed",
        # Retries re-run the same configuration; a successful result does not depend on them.
        "retry_config",
        # flowscope's own caching hint (cache/policy.py): whether to cache, not what comes out.
        "deterministic",
    }
)
"""Top-level node configuration keys dropped from the key, for every node type."""

NON_SEMANTIC_KEYS_BY_TYPE: Mapping[str, frozenset[str]] = {
    # How long to wait for a response, not which response comes back.
    "http-request": frozenset({"timeout"}),
}
"""Further top-level keys dropped for one node type."""

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


class CacheKeyError(ValueError):
    """A value that has no canonical JSON form; `path` names where it is (`config.a[0].b`)."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


def dropped_keys(node_type: str) -> frozenset[str]:
    """The top-level configuration keys that `result_config` drops for `node_type`."""
    return NON_SEMANTIC_KEYS | NON_SEMANTIC_KEYS_BY_TYPE.get(node_type, frozenset())


def result_config(node_type: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a node's configuration that can change its result, as plain JSON data.

    Everything except `dropped_keys(node_type)` at the top level; nested keys are always kept
    (a `title` inside a JSON schema is part of the schema). Raises CacheKeyError for values
    with no canonical JSON form.
    """
    if not isinstance(config, Mapping):
        raise CacheKeyError("config", f"must be an object, not {type(config).__name__}")
    dropped = dropped_keys(node_type)
    kept = {key: value for key, value in config.items() if key not in dropped}
    return _plain(kept, "config")


def key_object(
    *,
    tenant: str,
    app_id: str,
    workflow_id: str,
    node_id: str,
    node_type: str,
    config: Mapping[str, Any],
    inputs: Mapping[str, Any],
) -> dict[str, Any]:
    """The object whose canonical JSON is hashed: see the module docstring."""
    names = {
        "tenant": tenant,
        "app_id": app_id,
        "workflow_id": workflow_id,
        "node_id": node_id,
        "node_type": node_type,
    }
    for name, value in names.items():
        if not isinstance(value, str):
            raise CacheKeyError(name, f"must be a string, not {type(value).__name__}")
    if not isinstance(inputs, Mapping):
        raise CacheKeyError("inputs", f"must be an object, not {type(inputs).__name__}")
    checked = _plain(names, "")
    return {
        "v": KEY_VERSION,
        **checked,
        "config": result_config(node_type, config),
        "inputs": _plain(inputs, "inputs"),
    }


def key_material(
    *,
    tenant: str,
    app_id: str,
    workflow_id: str,
    node_id: str,
    node_type: str,
    config: Mapping[str, Any],
    inputs: Mapping[str, Any],
) -> bytes:
    """The RFC 8785 canonical JSON (UTF-8) of the key object: what `cache_key` hashes."""
    obj = key_object(
        tenant=tenant,
        app_id=app_id,
        workflow_id=workflow_id,
        node_id=node_id,
        node_type=node_type,
        config=config,
        inputs=inputs,
    )
    try:
        return rfc8785.dumps(obj)
    except rfc8785.CanonicalizationError as error:  # _plain should have caught it first
        raise CacheKeyError("$", str(error)) from error


def cache_key(
    *,
    tenant: str,
    app_id: str,
    workflow_id: str,
    node_id: str,
    node_type: str,
    config: Mapping[str, Any],
    inputs: Mapping[str, Any],
) -> str:
    """SHA-256, lowercase hex, of `key_material`: the key a node result is stored under."""
    material = key_material(
        tenant=tenant,
        app_id=app_id,
        workflow_id=workflow_id,
        node_id=node_id,
        node_type=node_type,
        config=config,
        inputs=inputs,
    )
    return hashlib.sha256(material).hexdigest()


def _child(path: str, key: str) -> str:
    if _IDENTIFIER.fullmatch(key):
        return f"{path}.{key}" if path else key
    return f"{path}[{json.dumps(key, ensure_ascii=False)}]"


def _check_text(text: str, path: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise CacheKeyError(path, "string is not valid Unicode (lone surrogate)") from error


def _plain(value: Any, path: str) -> Any:
    """`value` as plain JSON data (dict, list, str, int, float, bool, None), or CacheKeyError.

    Mirrors the domain of RFC 8785 so that errors name the offending path instead of failing
    somewhere inside the canonicaliser.
    """
    where = path or "$"
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise CacheKeyError(
                where, f"integer {value} is beyond ±(2**53 - 1) and has no exact JSON number"
            )
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise CacheKeyError(where, f"{value} is not a JSON number")
        return float(value)
    if isinstance(value, str):
        _check_text(value, where)
        return str(value)
    if isinstance(value, list | tuple):
        return [_plain(item, f"{where}[{index}]") for index, item in enumerate(value)]
    if isinstance(value, Mapping):
        plain: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise CacheKeyError(where, f"object key {key!r} is not a string")
            child = _child(path, key)
            _check_text(key, child)
            plain[str(key)] = _plain(item, child)
        return plain
    raise CacheKeyError(where, f"{type(value).__name__} is not a JSON value")
