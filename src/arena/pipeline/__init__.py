"""Votes and logs → clean battles: dedup, language, categories, anomalous users, export."""
