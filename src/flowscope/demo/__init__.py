"""Synthetic workload for `flowscope demo`, the tests and the benchmarks.

>>> from flowscope.demo import generate_runs
>>> run = next(generate_runs(runs=1, seed=7))
>>> sorted(run)[:3]
['app_id', 'elapsed_ms', 'error']
"""

from flowscope.demo.generator import generate_batches, generate_runs
from flowscope.demo.workflows import (
    FAILING_NODE,
    INDEPENDENT_SEQUENTIAL,
    NONDETERMINISTIC_BRANCH,
    REGRESSION,
    REPEATED_INPUTS,
    SLOW_OFF_CRITICAL_PATH,
    UNPRICED_MODEL,
    DemoNode,
    DemoWorkflow,
    PlantedEdge,
    PlantedNode,
    RegressionFacts,
    SlowNodeFacts,
    demo_workflows,
)

__all__ = [
    "FAILING_NODE",
    "INDEPENDENT_SEQUENTIAL",
    "NONDETERMINISTIC_BRANCH",
    "REGRESSION",
    "REPEATED_INPUTS",
    "SLOW_OFF_CRITICAL_PATH",
    "UNPRICED_MODEL",
    "DemoNode",
    "DemoWorkflow",
    "PlantedEdge",
    "PlantedNode",
    "RegressionFacts",
    "SlowNodeFacts",
    "demo_workflows",
    "generate_batches",
    "generate_runs",
]
