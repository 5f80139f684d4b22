"""The archive's background loops."""
