"""Prometheus metrics of the ingest stage."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class IngestMetrics:
    """Counters and gauges for the pipeline's health, registered on one registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.messages = Counter("liaowang_ingest_messages_total", "MQTT messages received", registry=registry)
        self.accepted = Counter("liaowang_ingest_readings_accepted_total", "Readings validated and stored",
                                registry=registry)
        self.rejected = Counter("liaowang_ingest_rejected_total", "Readings or payloads dead-lettered, by reason",
                                ["reason"], registry=registry)
        self.queue_depth = Gauge("liaowang_ingest_queue_depth", "Messages waiting for the ingest worker",
                                 registry=registry)
        self.batch_seconds = Histogram("liaowang_ingest_batch_seconds", "Time to decode, store and evaluate a batch",
                                       buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5),
                                       registry=registry)
        self.store_seconds = Histogram("liaowang_store_write_seconds", "Time for a sink to store a batch",
                                       ["sink"], buckets=(.0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1, 5),
                                       registry=registry)
        self.store_errors = Counter("liaowang_store_errors_total", "Failed sink writes (batch kept and retried)",
                                    ["sink"], registry=registry)
        self.spool_bytes = Gauge("liaowang_spool_bytes", "Bytes waiting in a sink's disk spool", ["sink"],
                                 registry=registry)
        self.spool_limit = Gauge("liaowang_spool_limit_bytes", "Configured spool limit", ["sink"], registry=registry)
        self.spool_batches = Gauge("liaowang_spool_batches", "Batches waiting in a sink's disk spool", ["sink"],
                                   registry=registry)
        self.forwarded = Counter("liaowang_forwarded_batches_total", "Batches a remote store accepted", ["sink"],
                                 registry=registry)
        self.forward_errors = Counter("liaowang_forward_errors_total", "Failed sends to a remote store",
                                      ["sink", "kind"], registry=registry)
        self.downstream_retries = Counter(
            "liaowang_ingest_downstream_retries_total",
            "Batches handed downstream again: 'unavailable' (alerting could not commit, e.g. a full disk; retried "
            "until it can) or 'failed' (rules or alerting raised; dead-lettered as evaluation_failed after 3 tries)",
            ["kind"], registry=registry)
        self.broker_connected = Gauge("liaowang_broker_connected", "1 while the ingest client is connected",
                                      registry=registry)
