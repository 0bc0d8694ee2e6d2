"""pragmatiq: a foundation model for banking event streams (after PRAGMA, arXiv 2604.08649)."""

__version__ = "0.1.0"
