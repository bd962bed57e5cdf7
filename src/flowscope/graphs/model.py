"""A workflow's graph: its nodes, the edges drawn between them, and the data each node reads.

Drawn edges say in which order an engine runs nodes; they often say more than the data needs
(a builder chains two LLM calls that could run side by side). The advisor therefore tells the
two apart:

- `reads[n]`: the nodes whose outputs `n` reads, from value selectors (`[node_id, variable]`
  lists anywhere in its config) and `{{#node_id.variable#}}` templates in its text fields.
  Reads from inside a container (iteration, loop) count as reads of the container;
- `true_needs(n)`: what `n` must wait for: its reads, its drawn predecessors that decide
  branches (if-else, question-classifier: control, not data), and all of its drawn
  predecessors when its config is unknown (a neutral graph node given without `config`).

    >>> g = WorkflowGraph.build(
    ...     [GraphNode("a", "llm", "A", {}), GraphNode("b", "llm", "B", {"text": "{{#a.text#}}"})],
    ...     [GraphEdge("a", "b")],
    ... )
    >>> g.depends_on("b", "a")
    True
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

BRANCH_TYPES = frozenset({"if-else", "question-classifier"})
"""Node types whose outgoing edges are decisions: what follows them waits for the choice."""
START_TYPES = frozenset({"start", "iteration-start", "loop-start"})
SYSTEM_SELECTORS = frozenset({"sys", "env", "conversation"})
"""First elements of value selectors that name engine variables, not nodes."""

TEMPLATE = re.compile(r"\{\{#([^.#}]+)\.[^#}]*#\}\}")


class GraphError(ValueError):
    """A graph that cannot be used; the message says what is wrong and where."""


@dataclass(frozen=True, slots=True)
class GraphNode:
    """One node: Dify's node type (`llm`, `code`, `http-request`, ...), its title, its config
    (Dify's node `data` without layout), and its container when inside an iteration or loop."""

    id: str
    type: str
    title: str | None
    config: Mapping[str, Any]
    parent_id: str | None = None
    # False for neutral-graph nodes given without a config: their reads are unknown.
    config_known: bool = True


@dataclass(frozen=True, slots=True)
class GraphEdge:
    source: str
    target: str
    # Which branch of an if-else or question-classifier (Dify's sourceHandle), if any.
    source_handle: str | None = None


@dataclass(frozen=True)
class WorkflowGraph:
    nodes: dict[str, GraphNode]
    edges: tuple[GraphEdge, ...]
    format: str = "json"  # "dify-dsl" or "json": where it came from
    dsl_version: str | None = None
    reads: dict[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        nodes: Iterable[GraphNode],
        edges: Iterable[GraphEdge],
        *,
        format: str = "json",
        dsl_version: str | None = None,
    ) -> WorkflowGraph:
        """Check ids and edges, and derive every node's reads."""
        by_id: dict[str, GraphNode] = {}
        for node in nodes:
            if not node.id:
                raise GraphError("a node has an empty id")
            if node.id in by_id:
                raise GraphError(f"duplicate node id {node.id!r}")
            by_id[node.id] = node
        for node in by_id.values():
            if node.parent_id is not None and node.parent_id not in by_id:
                raise GraphError(f"node {node.id!r} is inside missing container {node.parent_id!r}")
        for node in by_id.values():
            # A container inside itself would make the walk to the outermost one endless.
            seen = {node.id}
            parent = node.parent_id
            while parent is not None:
                if parent in seen:
                    raise GraphError(f"node {node.id!r} is inside itself (through {parent!r})")
                seen.add(parent)
                parent = by_id[parent].parent_id
        kept = []
        for edge in edges:
            for end in (edge.source, edge.target):
                if end not in by_id:
                    raise GraphError(
                        f"edge {edge.source!r} -> {edge.target!r} refers to missing node {end!r}"
                    )
            kept.append(edge)
        graph = cls(by_id, tuple(kept), format, dsl_version)
        graph.reads.update(_derive_reads(by_id))
        return graph

    # -- structure -------------------------------------------------------------------------

    def top_level(self) -> list[str]:
        return [n.id for n in self.nodes.values() if n.parent_id is None]

    def children(self, container_id: str) -> list[str]:
        return [n.id for n in self.nodes.values() if n.parent_id == container_id]

    def predecessors(self, node_id: str) -> list[str]:
        return _unique(e.source for e in self.edges if e.target == node_id)

    def successors(self, node_id: str) -> list[str]:
        return _unique(e.target for e in self.edges if e.source == node_id)

    def readers(self, node_id: str) -> list[str]:
        """The nodes that read `node_id`'s outputs."""
        return [n for n, reads in self.reads.items() if node_id in reads]

    def needs(self) -> dict[str, frozenset[str]]:
        """Drawn predecessors of every top-level node: what the engine made it wait for (the
        critical-path `Schedule`'s `needs`)."""
        top = set(self.top_level())
        return {
            n: frozenset(p for p in self.predecessors(n) if p in top)
            for n in top
            if n in self.nodes
        }

    def decides(self, node_id: str) -> bool:
        """Whether what follows the node depends on a choice it makes: an if-else, a
        question-classifier, or a node with a fail branch (`error_strategy: fail-branch`)."""
        node = self.nodes[node_id]
        return node.type in BRANCH_TYPES or node.config.get("error_strategy") == "fail-branch"

    def true_needs(self, node_id: str) -> frozenset[str]:
        """What `node_id` must wait for: data it reads, decisions before it, and everything
        drawn before it when its config is unknown."""
        node = self.nodes[node_id]
        drawn = self.predecessors(node_id)
        if not node.config_known:
            return frozenset(drawn)
        control = {p for p in drawn if self.decides(p)}
        return frozenset(self.reads.get(node_id, frozenset()) | control)

    def depends_on(self, node_id: str, other_id: str) -> bool:
        """Whether `node_id` needs `other_id`, directly or through other nodes it needs."""
        seen: set[str] = set()
        stack = list(self.true_needs(node_id))
        while stack:
            current = stack.pop()
            if current == other_id:
                return True
            if current in seen or current not in self.nodes:
                continue
            seen.add(current)
            stack.extend(self.true_needs(current))
        return False

    def independent_edges(self) -> list[GraphEdge]:
        """Drawn edges between top-level nodes whose target does not need their source:
        the source neither starts the workflow nor decides a branch, and the target's config
        is known and reads nothing of it, even through other nodes."""
        top = set(self.top_level())
        found = []
        for edge in self.edges:
            source, target = edge.source, edge.target
            if source not in top or target not in top or source == target:
                continue
            if self.nodes[source].type in START_TYPES or self.decides(source):
                continue
            if self.nodes[target].config_known and not self.depends_on(target, source):
                found.append(edge)
        return found

    def to_json(self) -> dict[str, Any]:
        """The neutral form (what `parse_json_graph` reads back), with provenance."""
        return {
            "format": self.format,
            "dsl_version": self.dsl_version,
            "nodes": [
                {
                    "id": n.id,
                    "type": n.type,
                    "title": n.title,
                    **({"config": dict(n.config)} if n.config_known else {}),
                    **({"parent_id": n.parent_id} if n.parent_id is not None else {}),
                }
                for n in self.nodes.values()
            ],
            "edges": [
                {
                    "source": e.source,
                    "target": e.target,
                    **({"source_handle": e.source_handle} if e.source_handle else {}),
                }
                for e in self.edges
            ],
        }


def selectors_in(value: Any) -> Iterator[str]:
    """Node ids named by value selectors and templates anywhere inside `value`."""
    if isinstance(value, str):
        yield from TEMPLATE.findall(value)
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from selectors_in(item)
    elif isinstance(value, list):
        if len(value) >= 2 and all(isinstance(v, str) for v in value):
            yield value[0]
        for item in value:
            if not isinstance(item, str):
                yield from selectors_in(item)


def _derive_reads(nodes: Mapping[str, GraphNode]) -> dict[str, frozenset[str]]:
    """For each top-level node, the top-level nodes it reads (a container also reads what its
    children read from outside it); for each child, the nodes it names itself."""

    def outermost(node_id: str) -> str:
        while (parent := nodes[node_id].parent_id) is not None:
            node_id = parent
        return node_id

    reads: dict[str, set[str]] = {n: set() for n in nodes}
    for node in nodes.values():
        named = {
            ref for ref in selectors_in(node.config) if ref in nodes and ref not in SYSTEM_SELECTORS
        }
        owner = outermost(node.id)
        if node.parent_id is not None:
            # A child's own reads: siblings, its container's item, outside nodes.
            reads[node.id].update(ref for ref in named if ref != node.id)
        for ref in named:
            target = outermost(ref)
            if target != owner:
                reads[owner].add(target)
    return {n: frozenset(r) for n, r in reads.items()}


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))
