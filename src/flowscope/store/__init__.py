"""Storage: tables, engines, dialect differences and migrations."""
