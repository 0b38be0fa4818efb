"""InfluxDB 1.x ``/write`` endpoint, for the 1.x servers many plants still run (Debian ships 1.6)."""

from __future__ import annotations

from urllib.parse import urlencode

import urllib3

from ingest.base import RejectedWriteError, RetryableWriteError
from ingest.influx_v2 import retry_after_seconds
from foundation.config import InfluxV1Sink


class InfluxV1Writer:
    """POSTs line protocol to ``/write?db=…&precision=ns`` (HTTP basic auth when configured)."""

    name = "influx_v1"

    def __init__(self, settings: InfluxV1Sink) -> None:
        query = {"db": settings.database, "precision": "ns"}
        if settings.retention_policy:
            query["rp"] = settings.retention_policy
        self._url = settings.url.rstrip("/") + "/write?" + urlencode(query)
        self._headers = {"Content-Type": "text/plain; charset=utf-8"}
        if settings.username:
            password = settings.password.get_secret_value() if settings.password else ""
            self._headers.update(urllib3.make_headers(basic_auth=f"{settings.username}:{password}"))
        self._http = urllib3.PoolManager(timeout=urllib3.Timeout(total=settings.timeout_s), retries=False)

    def send(self, body: bytes) -> None:
        """Write one batch; 204 is success, 429/5xx/network errors are retryable, 400 is a rejection."""
        try:
            response = self._http.request("POST", self._url, body=body, headers=self._headers)
        except (urllib3.exceptions.HTTPError, OSError) as err:
            raise RetryableWriteError(f"{type(err).__name__}: {err}") from err
        if response.status in (200, 204):
            return
        detail = response.data[:200].decode("utf-8", "replace")
        if response.status == 400:
            raise RejectedWriteError(f"InfluxDB refused the batch: HTTP 400 {detail}")
        raise RetryableWriteError(f"HTTP {response.status} {detail}", retry_after_seconds(response.headers.get("Retry-After")))

    def close(self) -> None:
        """Close pooled connections."""
        self._http.clear()
