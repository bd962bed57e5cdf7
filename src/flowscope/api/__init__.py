"""The REST API: thin routes over the domain modules."""

from flowscope.api.app import create_app

__all__ = ["create_app"]
