"""The package version, in one place (the root package and the server's hello both say it)."""

__version__ = "0.1.0"
