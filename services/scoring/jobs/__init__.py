"""Scoring's background jobs: the retention sweep of idle anonymous visitors."""
