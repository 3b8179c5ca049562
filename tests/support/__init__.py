"""Shared test helpers: stand-in upstream servers, tiny models, server runners."""
