"""The fake OpenAI server, checked with the real `openai` client: it is the truth that tests
of real emitters compare spans with, so it must be right itself."""

from __future__ import annotations

import threading
import time

import httpx
import openai
import pytest

from tests.integrations.fake_openai import (
    COMPLETION_BASE,
    COMPLETION_SPREAD,
    PROMPT_OVERHEAD,
    FakeOpenAI,
    chat_usage,
    directives,
    responded_model,
)


def client(fake: FakeOpenAI, retries: int = 0) -> openai.OpenAI:
    return openai.OpenAI(base_url=fake.base_url, api_key="test", max_retries=retries)


def ask(fake: FakeOpenAI, text: str, model: str = "gpt-4o-mini", **kwargs: object) -> object:
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": text}]
    return client(fake).chat.completions.create(model=model, messages=messages, **kwargs)  # type: ignore[call-overload]


def test_usage_is_a_function_of_the_words(fake_openai: FakeOpenAI) -> None:
    first = ask(fake_openai, "plan the refund answer")
    again = ask(fake_openai, "plan the refund answer")
    words = 2 + 4  # "be brief" + "plan the refund answer"
    prompt = words + PROMPT_OVERHEAD
    assert first.usage.prompt_tokens == prompt  # type: ignore[attr-defined]
    assert first.usage.completion_tokens == COMPLETION_BASE + prompt % COMPLETION_SPREAD  # type: ignore[attr-defined]
    assert first.usage.total_tokens == first.usage.prompt_tokens + first.usage.completion_tokens  # type: ignore[attr-defined]
    assert first.usage == again.usage  # type: ignore[attr-defined]
    assert chat_usage(["be brief", "plan the refund answer"]).prompt_tokens == prompt
    assert len(first.choices[0].message.content.split()) == first.usage.completion_tokens  # type: ignore[attr-defined]


def test_reply_directive_sets_the_completion_length(fake_openai: FakeOpenAI) -> None:
    answer = ask(fake_openai, "draft it reply=12")
    assert answer.usage.completion_tokens == 12  # type: ignore[attr-defined]
    assert fake_openai.calls[0].completion_tokens == 12


@pytest.mark.parametrize(
    ("requested", "responded"),
    [
        ("gpt-4o-mini", "gpt-4o-mini-2024-07-18"),
        ("gpt-4o", "gpt-4o-2024-08-06"),
        ("my-model", "my-model"),
    ],
)
def test_the_response_names_the_dated_snapshot(
    fake_openai: FakeOpenAI, requested: str, responded: str
) -> None:
    assert ask(fake_openai, "hello", model=requested).model == responded  # type: ignore[attr-defined]
    call = fake_openai.calls[0]
    assert (call.model_requested, call.model_responded) == (requested, responded)
    assert responded_model(requested) == responded


def test_call_log_records_what_was_served(fake_openai: FakeOpenAI) -> None:
    before = time.time_ns()
    ask(fake_openai, "plan the trip")
    (call,) = fake_openai.calls
    assert call.endpoint == "/v1/chat/completions"
    assert (call.status, call.stream, call.text) == (200, False, "plan the trip")
    assert (call.prompt_tokens, call.completion_tokens) == tuple(
        vars(chat_usage(["be brief", "plan the trip"])).values()
    )
    assert before <= call.start_unix_ns <= call.end_unix_ns <= time.time_ns()
    assert call.start_monotonic_ns <= call.end_monotonic_ns


def test_sleep_delays_the_answer(fake_openai: FakeOpenAI) -> None:
    started = time.monotonic()
    ask(fake_openai, "draft slowly sleep=200")
    assert time.monotonic() - started >= 0.2
    assert fake_openai.calls[0].duration_ms >= 200
    assert directives("draft slowly sleep=200 fail=500 x=1") == {"sleep": "200", "fail": "500"}


@pytest.mark.parametrize(
    ("status", "error", "kind"),
    [
        (400, openai.BadRequestError, "invalid_request_error"),
        (429, openai.RateLimitError, "requests"),
        (500, openai.InternalServerError, "server_error"),
    ],
)
def test_fail_answers_an_openai_shaped_error(
    fake_openai: FakeOpenAI, status: int, error: type[openai.APIStatusError], kind: str
) -> None:
    with pytest.raises(error) as raised:
        ask(fake_openai, f"check it fail={status}")
    assert raised.value.status_code == status
    assert raised.value.type == kind
    assert f"fail={status}" in raised.value.message
    (call,) = fake_openai.calls
    assert (call.status, call.model_requested, call.model_responded) == (
        status,
        "gpt-4o-mini",
        None,
    )
    assert (call.prompt_tokens, call.completion_tokens) == (0, 0)


def test_each_retry_is_a_call(fake_openai: FakeOpenAI) -> None:
    retrying = client(fake_openai, retries=1)
    with pytest.raises(openai.InternalServerError):
        retrying.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "x fail=500"}]
        )
    assert [c.status for c in fake_openai.calls] == [500, 500]


def test_streaming_with_usage_matches_the_plain_answer(fake_openai: FakeOpenAI) -> None:
    plain = ask(fake_openai, "summarize it")
    chunks = list(
        ask(fake_openai, "summarize it", stream=True, stream_options={"include_usage": True})  # type: ignore[call-overload]
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain.choices[0].message.content  # type: ignore[attr-defined]
    assert chunks[-1].choices == [] and chunks[-1].usage == plain.usage  # type: ignore[attr-defined]
    assert all(c.usage is None for c in chunks[:-1])
    assert chunks[-1].model == "gpt-4o-mini-2024-07-18"
    assert [c.stream for c in fake_openai.calls] == [False, True]


def test_streaming_without_usage_sends_none(fake_openai: FakeOpenAI) -> None:
    chunks = list(ask(fake_openai, "summarize it", stream=True))  # type: ignore[call-overload]
    assert all(c.usage is None for c in chunks) and chunks[-1].choices[0].finish_reason == "stop"
    assert fake_openai.calls[0].prompt_tokens > 0  # the log keeps the truth all the same


def test_embeddings_as_floats_and_base64_agree(fake_openai: FakeOpenAI) -> None:
    default = client(fake_openai).embeddings.create(
        model="text-embedding-3-small", input=["refund policy", "shipping"]
    )
    floats = client(fake_openai).embeddings.create(
        model="text-embedding-3-small", input=["refund policy", "shipping"], encoding_format="float"
    )
    for base64_row, float_row in zip(default.data, floats.data, strict=True):
        assert base64_row.embedding == pytest.approx(float_row.embedding, abs=1e-6)
    assert default.model == "text-embedding-3-small"
    assert default.usage.prompt_tokens == default.usage.total_tokens == 3
    call = fake_openai.calls[0]
    assert (call.endpoint, call.prompt_tokens, call.completion_tokens) == ("/v1/embeddings", 3, 0)


def test_tool_endpoint(fake_openai: FakeOpenAI) -> None:
    answer = httpx.get(f"{fake_openai.tool_url}/search?q=refund&sleep=50")
    assert answer.json() == {
        "tool": "search",
        "args": {"q": "refund", "sleep": "50"},
        "result": "ok",
    }
    assert httpx.get(f"{fake_openai.tool_url}/search?fail=503").status_code == 503
    calls = fake_openai.calls
    assert [(c.endpoint, c.status) for c in calls] == [("/tool/search", 200), ("/tool/search", 503)]
    assert calls[0].duration_ms >= 50


def test_unknown_path_is_a_404(fake_openai: FakeOpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        client(fake_openai).completions.create(model="gpt-3.5-turbo-instruct", prompt="hi")


def test_concurrent_calls_are_all_logged(fake_openai: FakeOpenAI) -> None:
    threads = [
        threading.Thread(target=ask, args=(fake_openai, f"branch {i} sleep=50")) for i in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(c.text for c in fake_openai.calls) == sorted(
        f"branch {i} sleep=50" for i in range(8)
    )
    fake_openai.reset()
    assert fake_openai.calls == []
