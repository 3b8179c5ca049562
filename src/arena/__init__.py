"""Arena: serve, compare and rank large language models by human preference."""

__version__ = "0.1.0"
