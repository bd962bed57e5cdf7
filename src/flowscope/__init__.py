"""flowscope: performance analytics, result cache and optimization advisor for LLM workflows."""

__version__ = "0.1.0"

__all__ = ["__version__"]
