"""Real infrastructure for the integration tests: a Kafka broker and a PostgreSQL cluster.

Both run as local subprocesses (no containers), started by the fixtures in ``tests/conftest.py``
only when a test asks for them.
"""
