"""Battles table → leaderboard tables, filters, categories, matrices, plots and artifacts."""
