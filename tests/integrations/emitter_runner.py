"""Run the emitter scenarios (tests/integrations/emitters/*.py) as subprocesses.

Tests call :func:`run_emitter` with a running :class:`FakeOpenAI` and any OTLP endpoint. As a
script it runs every variant against the fake server and an accept-all sink and keeps the
span dumps beside the fake server's call logs:

    .venv/bin/python -m tests.integrations.emitter_runner --out /tmp/spans
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tests.integrations.fake_openai import FakeOpenAI
from tests.integrations.otlp_sink import OtlpSink

EMITTERS = Path(__file__).parent / "emitters"
# Variables of the parent that would change what a scenario emits or where it sends it.
_ISOLATED_PREFIXES = (
    "OTEL_",
    "OPENAI_",
    "TRACELOOP_",
    "OPENINFERENCE_",
    "LANGCHAIN_",
    "LANGSMITH_",
)


@dataclass(frozen=True)
class Variant:
    """A scenario script run with one exporter and extra settings."""

    name: str
    script: str
    exporter: str = "protobuf"
    env: dict[str, str] = field(default_factory=dict)


VARIANTS = (
    Variant("openai_v2", "openai_v2"),
    # httpx2 traced too (every model call gets an HTTP child), with the stable HTTP names.
    Variant(
        "openai_v2_httpx2",
        "openai_v2",
        env={"EMITTER_HTTPX2": "1", "OTEL_SEMCONV_STABILITY_OPT_IN": "http"},
    ),
    Variant("openai_v2_json", "openai_v2", exporter="json"),
    Variant("openinference_chain", "openinference_chain"),
    Variant("openinference_langgraph", "openinference_langgraph", exporter="grpc"),
    Variant("openllmetry_openai", "openllmetry_openai"),
    Variant("openllmetry_langgraph", "openllmetry_langgraph"),
)


def run_emitter(
    script: str,
    *,
    fake: FakeOpenAI,
    endpoint: str,
    headers: str = "",
    exporter: str = "protobuf",
    dump: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run ``emitters/<script>.py`` against ``fake``, exporting to ``endpoint``.

    ``headers`` is ``OTEL_EXPORTER_OTLP_TRACES_HEADERS`` (``k=v,k2=v2``).
    """
    clean = {k: v for k, v in os.environ.items() if not k.startswith(_ISOLATED_PREFIXES)}
    settings = {
        "OPENAI_BASE_URL": fake.base_url,
        "OPENAI_API_KEY": "test",
        "FAKE_TOOL_URL": fake.tool_url,
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": endpoint,
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS": headers,
        "OTEL_SERVICE_NAME": f"emitter-{script}",
        "EMITTER_EXPORTER": exporter,
        **({"EMITTER_DUMP": str(dump)} if dump else {}),
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, str(EMITTERS / f"{script}.py")],
        env={**clean, **settings},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def load_dump(path: Path) -> dict[str, Any]:
    """A dump written by a scenario: scenario, exporter, settings, packages, spans."""
    return dict(json.loads(path.read_text()))


def dump_all(out: Path) -> int:
    """Run every variant, keep its dump (``<variant>.json``) and the fake server's log of the
    calls it served (``<variant>.calls.json``) in ``out``; the number of variants that failed."""
    out.mkdir(parents=True, exist_ok=True)
    failures = 0
    with FakeOpenAI() as fake, OtlpSink() as sink:
        for variant in VARIANTS:
            before, calls_before = sink.span_count(), len(fake.calls)
            endpoint = sink.grpc_endpoint if variant.exporter == "grpc" else sink.http_endpoint
            dump = out / f"{variant.name}.json"
            done = run_emitter(
                variant.script,
                fake=fake,
                endpoint=endpoint,
                exporter=variant.exporter,
                dump=dump,
                env=variant.env,
            )
            calls = [asdict(c) for c in fake.calls[calls_before:]]
            (out / f"{variant.name}.calls.json").write_text(json.dumps(calls, indent=1))
            spans = load_dump(dump)["spans"] if dump.exists() else []
            traces = len({s["trace_id"] for s in spans})
            print(
                f"{variant.name}: exit {done.returncode}, {len(spans)} spans in {traces} traces,"
                f" {sink.span_count() - before} received, {len(fake.calls) - calls_before} calls"
            )
            if done.returncode != 0:
                failures += 1
                print(done.stdout, done.stderr, sep="\n")
    return failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for <variant>.json")
    raise SystemExit(1 if dump_all(parser.parse_args().out) else 0)


if __name__ == "__main__":
    main()
