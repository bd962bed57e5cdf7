"""What one server process shares with its routes and pages (`app.state`, set up by
flowscope.server): the database engine, the settings and the price book, as FastAPI
dependencies for the API and the dashboard alike."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request
from sqlalchemy import Engine

from flowscope.config import Settings
from flowscope.limits import MAX_ROW_ID
from flowscope.runs.pricing import PriceBook


def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_prices(request: Request) -> PriceBook:
    prices: PriceBook = request.app.state.prices
    return prices


DbEngine = Annotated[Engine, Depends(get_engine)]
Prices = Annotated[PriceBook, Depends(get_prices)]
AppSettings = Annotated[Settings, Depends(get_settings)]

RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="A stored row's id.")]
"""The id of a key or a recommendation in a path: a number past the databases' BIGINT is a
422, not a server error."""
