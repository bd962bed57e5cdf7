"""The REST API: thin routes over the domain modules (assembled with the dashboard by
flowscope.server)."""
