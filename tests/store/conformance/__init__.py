"""The store conformance suite, one module per repository; every backend (memory, SQLite, Cosmos DB) runs it.

Each test states one documented behaviour of a repository in ``teams_proactive.bot.store.base``.
Concurrency is exercised with real concurrent tasks (threads for SQLite, concurrent requests for
Cosmos DB), never with sleeps; time-dependent behaviour (leases, due times, expiry) is driven by the
``at`` arguments and by timestamps in the past.
"""
