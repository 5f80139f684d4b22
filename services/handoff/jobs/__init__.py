"""Hand-off's background jobs."""
