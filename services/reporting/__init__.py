"""The reporting service: the public topics folded into its own tables, and the reports."""
