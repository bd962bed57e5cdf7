"""A fake OpenAI-compatible HTTP server, the independent truth for tests of real emitters.

Endpoints (all on 127.0.0.1, a free port):

- ``POST /v1/chat/completions``: non-streaming, or SSE with ``"stream": true`` (a final usage
  chunk when ``stream_options.include_usage`` is set, as OpenAI does).
- ``POST /v1/embeddings``: float lists, or base64 (the ``openai`` client's default).
- ``GET /tool/<name>?k=v``: small JSON, for HTTP-client spans (httpx instrumentation).

Usage is deterministic (see :func:`chat_usage` and :func:`embedding_usage`)::

    prompt_tokens     = words in every message's text + PROMPT_OVERHEAD
    completion_tokens = COMPLETION_BASE + prompt_tokens % COMPLETION_SPREAD   (or reply=<n>)
    embeddings        = words in every input (token-id inputs: their count), no completion

The response's model is the dated snapshot OpenAI would answer with (:data:`DATED_MODELS`,
e.g. ``gpt-4o-mini`` -> ``gpt-4o-mini-2024-07-18``); any other model is echoed unchanged, as
OpenAI does for embedding models.

Directives, ``key=value`` words in the last user message (in the query string for ``/tool``):
``sleep=<ms>`` delays the answer, ``fail=<status>`` answers that HTTP status with an
OpenAI-shaped error body, ``reply=<n>`` makes the completion ``n`` tokens long.

Every request served is appended to :attr:`FakeOpenAI.calls` as a :class:`Call`.

>>> with FakeOpenAI() as fake:
...     client = openai.OpenAI(base_url=fake.base_url, api_key="test")
...     client.chat.completions.create(model="gpt-4o-mini", messages=[...])
...     fake.calls[0].prompt_tokens
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

PROMPT_OVERHEAD = 5
COMPLETION_BASE = 3
COMPLETION_SPREAD = 7
EMBEDDING_DIMENSIONS = 8

# Request model -> the snapshot OpenAI names in its answer (as of late 2024/2025).
DATED_MODELS: dict[str, str] = {
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "gpt-4o": "gpt-4o-2024-08-06",
    "gpt-4.1": "gpt-4.1-2025-04-14",
    "gpt-4.1-mini": "gpt-4.1-mini-2025-04-14",
    "gpt-3.5-turbo": "gpt-3.5-turbo-0125",
}

_ERROR_TYPES = {
    400: ("invalid_request_error", "invalid_value"),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
}


def responded_model(requested: str) -> str:
    """The model name OpenAI answers with for a requested one."""
    return DATED_MODELS.get(requested, requested)


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def chat_usage(texts: list[str], reply: int | None = None) -> Usage:
    """Token counts for a chat request whose messages hold ``texts``."""
    prompt = sum(len(text.split()) for text in texts) + PROMPT_OVERHEAD
    completion = reply if reply is not None else COMPLETION_BASE + prompt % COMPLETION_SPREAD
    return Usage(prompt, completion)


def embedding_usage(inputs: list[str] | list[list[int]]) -> Usage:
    """Token counts for an embeddings request."""
    return Usage(sum(len(i.split()) if isinstance(i, str) else len(i) for i in inputs), 0)


@dataclass(frozen=True)
class Call:
    """One request the server answered."""

    endpoint: str  # "/v1/chat/completions", "/v1/embeddings", "/tool/<name>"
    model_requested: str | None
    model_responded: str | None  # None when the call failed
    prompt_tokens: int  # 0 when the call failed
    completion_tokens: int
    status: int
    stream: bool
    start_monotonic_ns: int
    end_monotonic_ns: int
    start_unix_ns: int  # wall clock, comparable with span start/end times
    end_unix_ns: int
    text: str  # the last user message (chat), the inputs joined (embeddings), the query (tool)

    @property
    def duration_ms(self) -> float:
        return (self.end_monotonic_ns - self.start_monotonic_ns) / 1e6


def directives(text: str) -> dict[str, str]:
    """The ``key=value`` words of a text: ``"plan it sleep=200"`` -> ``{"sleep": "200"}``."""
    pairs = (word.split("=", 1) for word in text.split() if "=" in word)
    return {key: value for key, value in pairs if key in ("sleep", "fail", "reply")}


def _message_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _vector(text: str, dimensions: int) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    return [round(digest[i % len(digest)] / 255 - 0.5, 6) for i in range(dimensions)]


@dataclass
class _Answer:
    status: int
    body: dict[str, Any]
    model_requested: str | None = None
    usage: Usage = field(default_factory=lambda: Usage(0, 0))
    text: str = ""
    stream: bool = False
    include_usage: bool = False
    sleep_ms: int = 0


class FakeOpenAI:
    """The server, started on enter (or :meth:`start`) and stopped on exit (or :meth:`stop`)."""

    def __init__(self) -> None:
        self._calls: list[Call] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.fake = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def base_url(self) -> str:
        """What ``OPENAI_BASE_URL`` should be."""
        return f"{self.url}/v1"

    @property
    def tool_url(self) -> str:
        """The prefix of the plain JSON endpoints: ``{tool_url}/<name>?k=v``."""
        return f"{self.url}/tool"

    @property
    def calls(self) -> list[Call]:
        """A copy of the calls served so far, in the order they finished."""
        with self._lock:
            return list(self._calls)

    def reset(self) -> None:
        with self._lock:
            self._calls.clear()

    def start(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(
        self, exc: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _record(self, call: Call) -> None:
        with self._lock:
            self._calls.append(call)

    def _next_id(self) -> int:
        return next(self._ids)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the openai client expects
    server: ThreadingHTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # quiet under pytest
        pass

    @property
    def fake(self) -> FakeOpenAI:
        return self.server.fake  # type: ignore[attr-defined, no-any-return]

    def do_POST(self) -> None:
        start_mono, start_unix = time.monotonic_ns(), time.time_ns()
        path = urlsplit(self.path).path
        try:
            request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        except ValueError:
            request = None
        if not isinstance(request, dict):
            answer = _error(400, "We could not parse the JSON body of your request.")
        elif path == "/v1/chat/completions":
            answer = _chat(request, self.fake._next_id())
        elif path == "/v1/embeddings":
            answer = _embeddings(request)
        else:
            answer = _error(404, f"Invalid URL (POST {path})", code="unknown_url")
        self._finish(path, answer, start_mono, start_unix)

    def do_GET(self) -> None:
        start_mono, start_unix = time.monotonic_ns(), time.time_ns()
        parts = urlsplit(self.path)
        if parts.path.startswith("/tool/"):
            query = dict(parse_qsl(parts.query))
            answer = _Answer(200, {"tool": parts.path[6:], "args": query, "result": "ok"})
            answer.text = parts.query
            answer.sleep_ms = int(query.get("sleep", 0))
            if "fail" in query:
                answer = _error(int(query["fail"]), "fake failure requested by fail=")
                answer.text = parts.query
        else:
            answer = _error(404, f"Invalid URL (GET {parts.path})", code="unknown_url")
        self._finish(parts.path, answer, start_mono, start_unix)

    def _finish(self, path: str, answer: _Answer, start_mono: int, start_unix: int) -> None:
        if answer.sleep_ms:
            time.sleep(answer.sleep_ms / 1000)
        ok = answer.status == 200

        def record() -> None:
            # Called just before the answer's last bytes go out, so a client that has read
            # its whole answer always finds the call in the log.
            self.fake._record(
                Call(
                    endpoint=path,
                    model_requested=answer.model_requested,
                    model_responded=answer.body.get("model") if ok else None,
                    prompt_tokens=answer.usage.prompt_tokens if ok else 0,
                    completion_tokens=answer.usage.completion_tokens if ok else 0,
                    status=answer.status,
                    stream=answer.stream,
                    start_monotonic_ns=start_mono,
                    end_monotonic_ns=time.monotonic_ns(),
                    start_unix_ns=start_unix,
                    end_unix_ns=time.time_ns(),
                    text=answer.text,
                )
            )

        if answer.stream and ok:
            self._send_stream(answer, record)
        else:
            self._send_json(answer.status, answer.body, record)

    def _send_json(self, status: int, body: dict[str, Any], record: Callable[[], None]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-request-id", f"req_fake_{time.monotonic_ns()}")
        self.end_headers()
        record()
        self.wfile.write(data)
        self.wfile.flush()

    def _send_stream(self, answer: _Answer, record: Callable[[], None]) -> None:
        # No Content-Length: the stream ends when the connection closes.
        self.close_connection = True
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        for chunk in _chunks(answer):
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()
        record()
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()


def _error(status: int, message: str, code: str | None = None) -> _Answer:
    kind, default_code = _ERROR_TYPES.get(status, ("server_error", None))
    error = {"message": message, "type": kind, "param": None, "code": code or default_code}
    return _Answer(status, {"error": error})


def _apply_directives(answer: _Answer, found: dict[str, str]) -> _Answer:
    answer.sleep_ms = int(found.get("sleep", 0))
    if "fail" in found:
        failed = _error(int(found["fail"]), f"fake failure requested by fail={found['fail']}")
        failed.model_requested, failed.text = answer.model_requested, answer.text
        failed.sleep_ms, failed.stream = answer.sleep_ms, answer.stream
        return failed
    return answer


def _chat(request: dict[str, Any], number: int) -> _Answer:
    model = str(request.get("model", ""))
    messages = [m for m in request.get("messages", []) if isinstance(m, dict)]
    texts = [_message_text(m.get("content")) for m in messages]
    user_texts = [t for m, t in zip(messages, texts, strict=True) if m.get("role") == "user"]
    last_user = user_texts[-1] if user_texts else ""
    found = directives(last_user)
    usage = chat_usage(texts, int(found["reply"]) if "reply" in found else None)
    content = " ".join(f"w{i}" for i in range(usage.completion_tokens))
    body = {
        "id": f"chatcmpl-fake{number}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": responded_model(model),
        "system_fingerprint": "fp_fake",
        "service_tier": "default",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": _usage_body(usage),
    }
    stream_options = request.get("stream_options") or {}
    answer = _Answer(200, body, model, usage, last_user, stream=bool(request.get("stream")))
    answer.include_usage = bool(stream_options.get("include_usage"))
    return _apply_directives(answer, found)


def _usage_body(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    }


def _chunks(answer: _Answer) -> list[dict[str, Any]]:
    """The SSE chunks of a streamed chat answer: role, one word each, finish, usage."""
    body = answer.body
    usage_key = {"usage": None} if answer.include_usage else {}
    head = {k: body[k] for k in ("id", "created", "model", "system_fingerprint")}
    head["object"] = "chat.completion.chunk"

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {**head, "choices": [choice], **usage_key}

    words = body["choices"][0]["message"]["content"].split()
    chunks = [chunk({"role": "assistant", "content": ""})]
    chunks += [chunk({"content": (" " if i else "") + w}) for i, w in enumerate(words)]
    chunks.append(chunk({}, "stop"))
    if answer.include_usage:
        chunks.append({**head, "choices": [], "usage": body["usage"]})
    return chunks


def _embeddings(request: dict[str, Any]) -> _Answer:
    model = str(request.get("model", ""))
    raw = request.get("input", [])
    inputs: list[Any] = [raw] if isinstance(raw, str) or (raw and isinstance(raw[0], int)) else raw
    usage = embedding_usage(inputs)
    dimensions = int(request.get("dimensions") or EMBEDDING_DIMENSIONS)
    data = []
    for index, item in enumerate(inputs):
        vector = _vector(item if isinstance(item, str) else repr(item), dimensions)
        embedding: Any = vector
        if request.get("encoding_format") == "base64":
            embedding = base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    body = {
        "object": "list",
        "data": data,
        "model": responded_model(model),
        "usage": {"prompt_tokens": usage.prompt_tokens, "total_tokens": usage.total_tokens},
    }
    text = " ".join(i if isinstance(i, str) else "" for i in inputs)
    return _apply_directives(_Answer(200, body, model, usage, text), directives(text))
