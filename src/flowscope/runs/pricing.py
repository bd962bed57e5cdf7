"""Cost estimates from the genai-prices table (offline, maintained upstream).

A lookup in genai-prices costs ~150 µs (model matching), far too slow for 50,000 node
executions a second, so each (provider, model) is resolved once and the flat per-token
prices are kept; models with tiered prices go through the library on every call.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from decimal import Decimal

from genai_prices import Usage, calc_price

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
    """A model whose price depends on the request: every estimate asks the library."""

    provider: str | None
    model: str

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        usage = Usage(input_tokens=prompt_tokens, output_tokens=completion_tokens)
        price = calc_price(usage, model_ref=self.model, provider_id=self.provider)
        return float(price.total_price)


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
            if isinstance(mp.input_mtok, Decimal) and isinstance(mp.output_mtok, Decimal):
                resolved = FlatPrice(float(mp.input_mtok), float(mp.output_mtok))
            else:
                resolved = TieredPrice(candidate, model)
            break
        with self._lock:
            self._resolved[(provider, model)] = resolved
        return resolved
