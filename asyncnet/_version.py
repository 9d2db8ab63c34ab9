"""The package version: a leaf module that any other module may import."""

__all__ = ["__version__"]

__version__ = "0.1.0"
