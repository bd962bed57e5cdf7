"""A workflow's page: summary, trends, nodes, bottlenecks, cache and recommendations."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
