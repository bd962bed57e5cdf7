"""The Python SDK: record workflow runs and node executions from inside an application.

`Recorder` is the entry point; `Run` and `Node` are what `rec.run(...)` and `run.node(...)`
return. A custom `Transport` can replace HTTP or the in-process database
(`flowscope.sdk.local.InProcessTransport`, imported only when used: it needs SQLAlchemy).
"""

from flowscope.sdk.batcher import RecorderStats
from flowscope.sdk.recorder import Recorder
from flowscope.sdk.records import Node, Run
from flowscope.sdk.transport import HttpTransport, Outcome, Transport

__all__ = [
    "HttpTransport",
    "Node",
    "Outcome",
    "Recorder",
    "RecorderStats",
    "Run",
    "Transport",
]
