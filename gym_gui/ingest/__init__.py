"""Ingest (Qt-free): worker JSONL lines to TelemetryEvents on the RunBus."""
