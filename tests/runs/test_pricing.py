"""Cost estimates from the genai-prices table."""

from __future__ import annotations

import pytest
from genai_prices import Usage, calc_price
from hypothesis import given
from hypothesis import strategies as st

from flowscope.runs.pricing import PriceBook, provider_id

BOOK = PriceBook()


def test_flat_prices_match_the_library() -> None:
    expected = calc_price(
        Usage(input_tokens=1234, output_tokens=567), model_ref="gpt-4o", provider_id="openai"
    ).total_price
    assert BOOK.estimate("openai", "gpt-4o", 1234, 567) == pytest.approx(float(expected))


@pytest.mark.parametrize("model", ["text-embedding-3-small", "text-embedding-3-large"])
def test_embedding_models_are_priced_by_their_input(model: str) -> None:
    """The table gives embedding models an input price only."""
    expected = calc_price(
        Usage(input_tokens=5000, output_tokens=0), model_ref=model, provider_id="openai"
    ).total_price
    assert expected > 0
    assert BOOK.estimate("openai", model, 5000, 0) == pytest.approx(float(expected))


@given(
    st.sampled_from(
        [
            ("openai", "gpt-4o-mini"),
            ("anthropic", "claude-3-5-haiku-20241022"),
            ("google", "gemini-1.5-pro"),
            ("deepseek", "deepseek-chat"),
        ]
    ),
    st.integers(0, 500_000),
    st.integers(0, 50_000),
)
def test_estimates_agree_with_the_library(
    model: tuple[str, str], prompt: int, completion: int
) -> None:
    provider, name = model
    expected = calc_price(
        Usage(input_tokens=prompt, output_tokens=completion), model_ref=name, provider_id=provider
    ).total_price
    assert BOOK.estimate(provider, name, prompt, completion) == pytest.approx(
        float(expected), rel=1e-9, abs=1e-12
    )


def test_unknown_models_are_none_not_zero() -> None:
    assert BOOK.estimate("acme", "in-house-model-7b", 1000, 1000) is None
    assert BOOK.estimate(None, "in-house-model-7b", 1000, 1000) is None


def test_provider_names_are_normalised() -> None:
    assert provider_id("langgenius/openai/openai") == "openai"
    assert provider_id("OpenAI") == "openai"
    assert provider_id("") is None
    assert BOOK.estimate("my-proxy", "gpt-4o-mini", 1000, 0) == pytest.approx(0.00015)


@pytest.mark.parametrize("prompt", [0, 1, 127_999, 128_000, 128_001, 1_000_000])
def test_long_context_tiers_match_the_library_at_the_boundary(prompt: int) -> None:
    expected = calc_price(
        Usage(input_tokens=prompt, output_tokens=1000),
        model_ref="gemini-1.5-flash",
        provider_id="google",
    ).total_price
    assert BOOK.estimate("google", "gemini-1.5-flash", prompt, 1000) == pytest.approx(
        float(expected), rel=1e-12
    )
