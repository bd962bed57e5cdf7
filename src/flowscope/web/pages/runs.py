"""A workflow's runs, and one run's waterfall with its critical path."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
