"""Rollups: per-hour and per-day figures by workflow, version, trigger and node.

`figures` computes what one run contributes (pure), `write` keeps the tables current during
ingestion, `read` merges a window of them for the analytics endpoints.
"""
