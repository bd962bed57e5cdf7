"""Cost estimates from the genai-prices table (offline, maintained upstream).

A lookup in genai-prices costs ~150 µs (model matching and Decimal arithmetic), far too slow
for tens of thousands of node executions a second, so each (provider, model) is resolved once
into per-token rates (with the library's long-context tiers) and costs are plain float math;
a test checks them against the library on random token counts.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from decimal import Decimal

from genai_prices import Usage, calc_price
from genai_prices.types import TieredPrices

_MTOK = 1_000_000


@dataclass(frozen=True, slots=True)
class FlatPrice:
    """USD per million input and output tokens."""

    input_mtok: float
    output_mtok: float

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input_mtok + completion_tokens * self.output_mtok) / _MTOK


def provider_id(provider: str | None) -> str | None:
    """Dify names plugin providers `langgenius/openai/openai`; the table knows `openai`."""
    if not provider:
        return None
    return provider.rsplit("/", 1)[-1].strip().lower() or None


@dataclass(frozen=True, slots=True)
class TieredPrice:
    """Per-token prices that step up with the prompt's size (Gemini's long-context tiers).

    genai-prices' "cliff" model: the highest tier whose start the prompt's tokens exceed
    prices all the request's tokens, input and output alike.
    """

    input_mtok: tuple[tuple[int, float], ...]  # (tier start, USD per million), start 0 = base
    output_mtok: tuple[tuple[int, float], ...]

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (
            prompt_tokens * _rate(self.input_mtok, prompt_tokens)
            + completion_tokens * _rate(self.output_mtok, prompt_tokens)
        ) / _MTOK


def _rate(tiers: tuple[tuple[int, float], ...], prompt_tokens: int) -> float:
    for start, rate in reversed(tiers):
        if start == 0 or prompt_tokens > start:
            return rate
    return tiers[0][1]


def _tiers(price: Decimal | TieredPrices) -> tuple[tuple[int, float], ...]:
    if isinstance(price, Decimal):
        return ((0, float(price)),)
    return ((0, float(price.base)), *((t.start, float(t.price)) for t in price.tiers))


class PriceBook:
    """Estimates the USD cost of an LLM call; None when no table knows the model."""

    def __init__(self) -> None:
        self._resolved: dict[tuple[str | None, str], FlatPrice | TieredPrice | None] = {}
        # The same price keyed by the names as reported, so the hot path skips normalising.
        self._by_raw_name: dict[tuple[str | None, str], FlatPrice | TieredPrice | None] = {}
        self._lock = threading.Lock()

    def estimate(
        self, provider: str | None, model: str, prompt_tokens: int, completion_tokens: int
    ) -> float | None:
        try:
            price = self._by_raw_name[(provider, model)]
        except KeyError:
            price = self._resolve(provider_id(provider), model)
            with self._lock:
                self._by_raw_name[(provider, model)] = price
        return None if price is None else price.cost(prompt_tokens, completion_tokens)

    def _resolve(self, provider: str | None, model: str) -> FlatPrice | TieredPrice | None:
        if (provider, model) in self._resolved:
            return self._resolved[(provider, model)]
        resolved: FlatPrice | TieredPrice | None = None
        # An unknown or self-hosted provider name still finds the model by its name alone.
        for candidate in dict.fromkeys([provider, None]):
            try:
                found = calc_price(
                    Usage(input_tokens=1, output_tokens=1), model_ref=model, provider_id=candidate
                )
            except LookupError:
                continue
            mp = found.model_price
            # An embedding model has an input price only: its output costs nothing.
            output = Decimal(0) if mp.output_mtok is None else mp.output_mtok
            if isinstance(mp.input_mtok, Decimal) and isinstance(output, Decimal):
                resolved = FlatPrice(float(mp.input_mtok), float(output))
            elif isinstance(mp.input_mtok, Decimal | TieredPrices) and isinstance(
                output, Decimal | TieredPrices
            ):
                resolved = TieredPrice(_tiers(mp.input_mtok), _tiers(output))
            else:  # a model priced only per request or per search: not an LLM token price
                resolved = None
            break
        with self._lock:
            self._resolved[(provider, model)] = resolved
        return resolved
