"""Which node executions the result cache may serve, and for how long (docs/cache.md).

Defaults per node type, overridable per workflow (`enabled`, `ttl_seconds` per node type) and
per node (`cacheable`, `ttl_seconds`):

    >>> decide(CachePolicy(), "llm_1", "llm", {"temperature": 0.7}).reason
    'llm with temperature 0.7 is not deterministic'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import orjson

MAX_VALUE_BYTES = 1_000_000
"""Results whose orjson encoding is larger are not stored (`value_size`)."""

MAX_TTL_SECONDS = 365 * 24 * 3600
"""The longest TTL a policy accepts: one year."""

DEFAULT_TTL_SECONDS: Mapping[str, int] = MappingProxyType(
    {
        # Everything a temperature-0 answer depends on is in the key; the day only bounds how
        # long a model the provider updated behind the same name keeps serving old answers.
        "llm": 86_400,
        # Knowledge bases get re-indexed without the workflow changing: an hour bounds how
        # stale retrieved chunks can be.
        "knowledge-retrieval": 3_600,
        # A remote resource changes without telling us; five minutes, like a short HTTP
        # max-age, keeps repeated calls within a burst of runs cheap.
        "http-request": 300,
    }
)
"""TTL per node type when neither the workflow nor the node sets one."""

DEFAULT_OTHER_TTL_SECONDS = 3_600
"""TTL of other node types (tools, code) declared deterministic: deterministic in their inputs,
but a tool may read outside state, so an hour as for knowledge retrieval."""

SAFE_HTTP_METHODS = frozenset({"GET", "HEAD"})

# Where an llm node keeps its temperature: Dify's `model.completion_params`, or flatter shapes.
_TEMPERATURE_PATHS: tuple[tuple[str, ...], ...] = (
    ("model", "completion_params", "temperature"),
    ("completion_params", "temperature"),
    ("temperature",),
)


class PolicyError(ValueError):
    """A cache policy, or a change to one, that is not valid; the message names the field."""


@dataclass(frozen=True, slots=True)
class NodeOverride:
    """One node's settings; None leaves the decision to the workflow and node type."""

    cacheable: bool | None = None
    ttl_seconds: int | None = None

    def __post_init__(self) -> None:
        if self.cacheable is not None and not isinstance(self.cacheable, bool):
            raise PolicyError("cacheable must be true, false or null")
        if self.ttl_seconds is not None:
            _check_ttl(self.ttl_seconds, "ttl_seconds")


@dataclass(frozen=True, slots=True)
class CachePolicy:
    """A workflow's cache policy: on or off, TTLs per node type, overrides per node id."""

    enabled: bool = True
    ttl_seconds: Mapping[str, int] = field(default_factory=dict)
    nodes: Mapping[str, NodeOverride] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.enabled, bool):
            raise PolicyError("enabled must be true or false")
        for node_type, ttl in self.ttl_seconds.items():
            _check_name(node_type, "ttl_seconds")
            _check_ttl(ttl, f"ttl_seconds.{node_type}")
        for node_id, override in self.nodes.items():
            _check_name(node_id, "nodes")
            if not isinstance(override, NodeOverride):
                raise PolicyError(f"nodes.{node_id} must be a NodeOverride")
        # Copies behind read-only views: the policy cannot change after it was validated.
        object.__setattr__(self, "ttl_seconds", MappingProxyType(dict(self.ttl_seconds)))
        object.__setattr__(self, "nodes", MappingProxyType(dict(self.nodes)))


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether to cache one node execution, for how long, and why (for people to read)."""

    cacheable: bool
    ttl_seconds: int | None
    reason: str


def default_cacheable(node_type: str, config: Mapping[str, Any]) -> tuple[bool, str]:
    """The node type's rule, before workflow and node overrides: (cacheable, reason)."""
    if node_type == "llm":
        return _llm_rule(config)
    if node_type == "knowledge-retrieval":
        return True, "knowledge-retrieval results depend on the query and the datasets"
    if node_type == "http-request":
        method = config.get("method")
        if not isinstance(method, str) or not method.strip():
            return False, "http-request without a method is not cached"
        method = method.strip().upper()
        if method in SAFE_HTTP_METHODS:
            return True, f"http-request {method} is safe to repeat"
        return False, f"http-request {method} may change state and is not cached"
    if config.get("deterministic") is True:
        return True, f"{node_type} is declared deterministic"
    return False, f"{node_type} is cached only when declared deterministic"


def resolve_ttl(policy: CachePolicy, node_id: str, node_type: str) -> int:
    """The node's own TTL, else the workflow's for its node type, else the default."""
    override = policy.nodes.get(node_id)
    if override is not None and override.ttl_seconds is not None:
        return override.ttl_seconds
    if node_type in policy.ttl_seconds:
        return policy.ttl_seconds[node_type]
    return DEFAULT_TTL_SECONDS.get(node_type, DEFAULT_OTHER_TTL_SECONDS)


def decide(
    policy: CachePolicy, node_id: str, node_type: str, config: Mapping[str, Any]
) -> Decision:
    """Whether the cache may store and serve this node execution, for how long, and why.

    Order: the workflow switch, then the node's `cacheable` override (which is how an llm at a
    temperature above 0 is explicitly allowed), then the node type's rule.
    """
    if not policy.enabled:
        return Decision(False, None, "caching is disabled for this workflow")
    override = policy.nodes.get(node_id)
    if override is not None and override.cacheable is not None:
        if not override.cacheable:
            return Decision(False, None, f"node {node_id} is marked not cacheable")
        return Decision(
            True, resolve_ttl(policy, node_id, node_type), f"node {node_id} is marked cacheable"
        )
    cacheable, reason = default_cacheable(node_type, config)
    ttl = resolve_ttl(policy, node_id, node_type) if cacheable else None
    return Decision(cacheable, ttl, reason)


def merge_policy(current: CachePolicy, patch: Mapping[str, Any]) -> CachePolicy:
    """`current` with `patch` (a PUT body) applied; fields left out keep their current values.

    JSON Merge Patch semantics (RFC 7396): `ttl_seconds` and `nodes` merge key by key, and
    `null` resets a field to its default (`{"nodes": {"llm_1": null}}` drops the override).
    Unknown fields and invalid values raise PolicyError naming the field.
    """
    if not isinstance(patch, Mapping):
        raise PolicyError("the cache policy must be a JSON object")
    _reject_unknown(patch, {"enabled", "ttl_seconds", "nodes"}, "")

    enabled = current.enabled
    if "enabled" in patch:
        enabled = True if patch["enabled"] is None else patch["enabled"]
        if not isinstance(enabled, bool):
            raise PolicyError("enabled must be true, false or null")

    ttl_seconds = dict(current.ttl_seconds)
    if "ttl_seconds" in patch:
        ttl_seconds = _merge_ttls(ttl_seconds, patch["ttl_seconds"])

    nodes = dict(current.nodes)
    if "nodes" in patch:
        nodes = _merge_nodes(nodes, patch["nodes"])

    return CachePolicy(enabled=enabled, ttl_seconds=ttl_seconds, nodes=nodes)


def policy_as_dict(policy: CachePolicy) -> dict[str, Any]:
    """The policy as the JSON a GET returns; `merge_policy(CachePolicy(), it)` gives it back."""
    nodes: dict[str, dict[str, Any]] = {}
    for node_id, override in policy.nodes.items():
        fields: dict[str, Any] = {}
        if override.cacheable is not None:
            fields["cacheable"] = override.cacheable
        if override.ttl_seconds is not None:
            fields["ttl_seconds"] = override.ttl_seconds
        nodes[node_id] = fields
    return {"enabled": policy.enabled, "ttl_seconds": dict(policy.ttl_seconds), "nodes": nodes}


def value_size(value: Any) -> int:
    """Bytes of `value`'s orjson encoding; raises TypeError for what orjson cannot encode."""
    return len(orjson.dumps(value))


def within_size_limit(value: Any) -> bool:
    """Whether the cache stores `value`: values over MAX_VALUE_BYTES are not stored."""
    return value_size(value) <= MAX_VALUE_BYTES


def _llm_rule(config: Mapping[str, Any]) -> tuple[bool, str]:
    found = [
        value for path in _TEMPERATURE_PATHS if (value := _lookup(config, path)) is not _MISSING
    ]
    if not found:
        return False, "llm without a temperature is not deterministic (providers default to ~1)"
    for value in found:
        is_number = isinstance(value, int | float) and not isinstance(value, bool)
        if not is_number or value != 0:
            return False, f"llm with temperature {value!r} is not deterministic"
    return True, "llm with temperature 0 is treated as deterministic"


_MISSING = object()


def _lookup(config: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = config
    for name in path:
        if not isinstance(value, Mapping) or name not in value:
            return _MISSING
        value = value[name]
    return value


def _merge_ttls(ttls: dict[str, int], patch: Any) -> dict[str, int]:
    if patch is None:
        return {}
    if not isinstance(patch, Mapping):
        raise PolicyError("ttl_seconds must be an object of node type to seconds, or null")
    for node_type, ttl in patch.items():
        _check_name(node_type, "ttl_seconds")
        if ttl is None:
            ttls.pop(node_type, None)
        else:
            _check_ttl(ttl, f"ttl_seconds.{node_type}")
            ttls[node_type] = ttl
    return ttls


def _merge_nodes(nodes: dict[str, NodeOverride], patch: Any) -> dict[str, NodeOverride]:
    if patch is None:
        return {}
    if not isinstance(patch, Mapping):
        raise PolicyError("nodes must be an object of node id to settings, or null")
    for node_id, fields in patch.items():
        _check_name(node_id, "nodes")
        where = f"nodes.{node_id}"
        if fields is None:
            nodes.pop(node_id, None)
            continue
        if not isinstance(fields, Mapping):
            raise PolicyError(f"{where} must be an object or null")
        _reject_unknown(fields, {"cacheable", "ttl_seconds"}, where)
        old = nodes.get(node_id, NodeOverride())
        cacheable = fields.get("cacheable", old.cacheable)
        if cacheable is not None and not isinstance(cacheable, bool):
            raise PolicyError(f"{where}.cacheable must be true, false or null")
        ttl = fields.get("ttl_seconds", old.ttl_seconds)
        if ttl is not None:
            _check_ttl(ttl, f"{where}.ttl_seconds")
        if cacheable is None and ttl is None:
            nodes.pop(node_id, None)
        else:
            nodes[node_id] = NodeOverride(cacheable=cacheable, ttl_seconds=ttl)
    return nodes


def _reject_unknown(fields: Mapping[str, Any], known: set[str], where: str) -> None:
    for name in fields:
        if name not in known:
            path = f"{where}.{name}" if where else str(name)
            expected = ", ".join(sorted(known))
            raise PolicyError(f"unknown field {path!r} in the cache policy; expected {expected}")


def _check_name(name: Any, where: str) -> None:
    if not isinstance(name, str) or not name:
        raise PolicyError(f"{where} keys must be non-empty strings, not {name!r}")


def _check_ttl(ttl: Any, where: str) -> None:
    if isinstance(ttl, bool) or not isinstance(ttl, int):
        raise PolicyError(f"{where} must be a whole number of seconds, not {ttl!r}")
    if not 1 <= ttl <= MAX_TTL_SECONDS:
        raise PolicyError(f"{where} must be between 1 and {MAX_TTL_SECONDS} seconds, not {ttl}")
