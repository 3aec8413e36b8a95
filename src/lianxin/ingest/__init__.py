"""Meter data in: one reader per source format (readers), the import pipeline with meter look-up,
registration and the quarantine (pipeline, models), the watched drop folder (watch), and the HTTP
and MQTT entry points (api, mqtt)."""
