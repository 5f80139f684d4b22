"""Fixtures of the runtime's integration tests: unique topics and a migrated database."""

from __future__ import annotations

import pytest

from leadrelay.app.schema import upgrade_async
from leadrelay.runtime.topics import ensure_topics
from tests.integration.runtime.effects import Topics


@pytest.fixture
async def topics(kafka_bootstrap: str, unique_topic_prefix: str) -> Topics:
    names = Topics(unique_topic_prefix)
    await ensure_topics(kafka_bootstrap, names.all, partitions=3)
    return names


@pytest.fixture
async def migrated_url(database_url: str) -> str:
    await upgrade_async(database_url)
    return database_url
