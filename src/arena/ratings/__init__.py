"""Pure rating math on arrays: Elo, Bradley–Terry, intervals, style control, ranks."""
