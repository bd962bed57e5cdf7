"""The dashboard: server-rendered pages (Jinja2, SVG charts, a little plain JavaScript) over
the same services as the REST API. `install(app)` mounts it at `/`."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from flowscope.web.pages import home, runs, workflow
from flowscope.web.viewer import install_handlers

STATIC = Path(__file__).parent / "static"


def install(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for module in (home, workflow, runs):
        app.include_router(module.router)
    install_handlers(app)
