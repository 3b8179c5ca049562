"""The OpenAI-compatible ``/v1`` gateway: routing, workers, keys, limits, metrics."""
