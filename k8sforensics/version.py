"""The package version, in a module of its own so that the store can record it without
importing the package root (which imports the store)."""

__version__ = "0.1.0"
