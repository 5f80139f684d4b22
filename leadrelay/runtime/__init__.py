"""The Kafka runtime: a producer with acks=all, a consume loop with exactly-once effects."""
