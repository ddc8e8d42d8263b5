"""The delivery engine: durable outbox, Teams-paced dispatcher, retries, broadcasts, scheduling."""
