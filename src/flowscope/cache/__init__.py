"""Node result cache: canonical keys, the caching policy and storage backends (docs/cache.md)."""
