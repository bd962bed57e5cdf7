"""Runs: ingesting, pricing and reading back workflow runs and node executions."""
