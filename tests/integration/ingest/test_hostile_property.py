"""A bounded property run over every ingest route: no 5xx, and nothing answered 202 is lost.

Hostile cases (see ``hostile.py``) are sent signed and unsigned to the app on the suite's
real Kafka broker; afterwards every event id that any 202 named must be on its topic.
"""

from __future__ import annotations

from tests.integration.ingest.conftest import (
    API_TOKEN,
    HUBSPOT_SECRET,
    MARKETO_TOKEN,
    WEBHOOK_SECRET,
    Ingest,
)
from tests.integration.ingest.hostile import Credentials, draw_cases, missing_from, send_all

EXAMPLES = 250
CREDENTIALS = Credentials(WEBHOOK_SECRET, HUBSPOT_SECRET, MARKETO_TOKEN, API_TOKEN)


async def test_hostile_requests_get_no_5xx_and_every_accepted_event_is_on_its_topic(
    ingest: Ingest,
) -> None:
    tally = await send_all(ingest.client, draw_cases(EXAMPLES, random_seed=14), CREDENTIALS)
    assert tally.server_errors == 0, tally.statuses
    assert sum(tally.statuses.values()) == EXAMPLES
    assert {202, 401, 422} <= tally.statuses.keys(), tally.statuses  # reached every stage
    prefix = ingest.runtime.settings.topic_prefix
    assert await missing_from(ingest.bootstrap, prefix, tally.accepted) == set()
