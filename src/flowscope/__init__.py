"""flowscope: performance analytics, result cache and optimization advisor for LLM workflows."""

__version__ = "0.1.0"

from flowscope.sdk import Recorder  # after __version__, which the SDK reads

__all__ = ["Recorder", "__version__"]
