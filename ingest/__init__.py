"""Ingest: MQTT messages in, validated `Reading`s stored and handed downstream, dead letters out."""

from ingest.base import Sink
from ingest.decode import REASONS, Decoder, Rejection
from ingest.live import LiveValues
from ingest.metrics import IngestMetrics
from ingest.service import IngestService
from ingest.sqlite_sink import SQLiteSink

__all__ = ["REASONS", "Decoder", "IngestMetrics", "IngestService", "LiveValues", "Rejection", "SQLiteSink", "Sink"]
