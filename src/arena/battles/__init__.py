"""Pure arena logic: pair sampling, battle states, identity-leak detection, moderation, limits."""
