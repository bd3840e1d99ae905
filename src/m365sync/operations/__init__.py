"""Operations: what people running m365sync need beside the product itself.

- ``service``: readiness (database, broker, secret key, schema) and the fleet's gauges read
  from the database for ``/metrics``;
- ``backup``: an online copy of a SQLite database, and restoring one;
- ``retention``: purging old bodies or activities, and erasing one person's data, both
  audited.
"""
