"""Preference-trained routers (RouteLLM style): which model should answer this prompt?

Routers learn from battles with prompts (the arena's store, public preference files, judge
verdicts, RouteLLM's golden-labelled benchmark tables) how likely each model is to win on a
prompt, and send each request to the cheapest model expected to do well enough. Featurisers
turn prompts into vectors (offline TF-IDF, or any ``/v1/embeddings`` model with a cache);
``evaluation`` measures quality against the share of strong-model calls.
"""
