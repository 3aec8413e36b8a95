"""The HTTP push API for meter readings: per-source tokens, idempotent batches, JSON and CSV bodies.

A 2xx answer means every accepted reading is durable in the readings store and every rejected row
is kept in the quarantine with its reason. The schema is openapi.json beside this file, served at
/api/openapi.json.
"""
