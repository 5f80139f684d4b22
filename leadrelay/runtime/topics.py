"""Creates LeadRelay's topics with the configured partition count when they are missing."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

log = logging.getLogger(__name__)


async def ensure_topics(
    bootstrap: str, names: Iterable[str], *, partitions: int, replication_factor: int = 1
) -> list[str]:
    """Create each missing topic; return the ones created. Existing topics are left as they are."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="leadrelay-admin")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = sorted(set(names) - existing)
        if not missing:
            return []
        response = await admin.create_topics(
            [
                NewTopic(name, num_partitions=partitions, replication_factor=replication_factor)
                for name in missing
            ]
        )
        created = []
        for topic, error_code, *rest in response.topic_errors:
            if error_code == 0:
                created.append(topic)
            elif error_code != TopicAlreadyExistsError.errno:  # another instance raced us: fine
                message = rest[0] if rest else ""
                raise KafkaError(f"cannot create topic {topic}: error {error_code} {message}")
        log.info("created topics %s with %d partitions", created, partitions)
        return created
    finally:
        await admin.close()
