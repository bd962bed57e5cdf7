"""Feeding flowscope from what teams already run: Dify's database and OpenTelemetry traces."""
