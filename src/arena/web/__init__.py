"""The web pages and the JSON API behind them; arena rules live in ``arena.battles``."""
