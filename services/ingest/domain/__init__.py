"""Ingest's pure rules: what each source's payload means, how it is signed, what is refused.

Nothing here imports HTTP, Kafka or SQL: the routes (``services.ingest.routes``) authenticate and
parse, call these functions, and hand the events to the gateway.
"""
