"""The SLA monitor's background jobs: the firing loop and the parked-activity expiry."""
