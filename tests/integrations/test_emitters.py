"""The emitter harness itself: every scenario runs against the fake OpenAI server, delivers
every span it made over its OTLP exporter, and reports the tokens the server really counted.

What flowscope makes of these spans is tested elsewhere; this only proves the harness."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.integrations.emitter_runner import VARIANTS, Variant, load_dump, run_emitter
from tests.integrations.fake_openai import FakeOpenAI
from tests.integrations.otlp_sink import OtlpSink

PROMPT_KEYS = ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "llm.token_count.prompt")
COMPLETION_KEYS = (
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.completion_tokens",
    "llm.token_count.completion",
)


def reported_tokens(span: dict[str, Any]) -> tuple[int, int] | None:
    """(prompt, completion) in whichever convention the span speaks, or None."""
    attributes = span["attributes"]
    prompt = next((attributes[k] for k in PROMPT_KEYS if k in attributes), None)
    completion = next((attributes[k] for k in COMPLETION_KEYS if k in attributes), 0)
    return None if prompt is None else (prompt, completion)


@pytest.mark.parametrize("variant", VARIANTS, ids=[v.name for v in VARIANTS])
def test_scenario_delivers_its_spans_and_true_tokens(
    variant: Variant, fake_openai: FakeOpenAI, otlp_sink: OtlpSink, tmp_path: Path
) -> None:
    grpc = variant.exporter == "grpc"
    done = run_emitter(
        variant.script,
        fake=fake_openai,
        endpoint=otlp_sink.grpc_endpoint if grpc else otlp_sink.http_endpoint,
        exporter=variant.exporter,
        dump=tmp_path / "spans.json",
        env=variant.env,
    )
    assert done.returncode == 0, done.stderr
    dump = load_dump(tmp_path / "spans.json")
    spans = dump["spans"]
    assert spans and otlp_sink.span_count() == len(spans)
    expected_type = (
        "grpc" if grpc else f"application/{'json' if variant.exporter == 'json' else 'x-protobuf'}"
    )
    assert {e.content_type for e in otlp_sink.exports} == {expected_type}
    assert all(s["resource"]["service.name"] == f"emitter-{variant.script}" for s in spans)

    served = [c for c in fake_openai.calls if c.status == 200 and c.endpoint.startswith("/v1/")]
    assert served and any(c.status == 500 for c in fake_openai.calls)
    reported = {reported_tokens(s) for s in spans}
    for call in served:
        assert (call.prompt_tokens, call.completion_tokens) in reported, call
