"""Exports of flowscope's figures to other monitoring systems (Prometheus)."""
