"""InfluxDB v2 write API through influxdb-client (InfluxDB 2.x; 1.8+ and 3.x via v2 compatibility).

influxdb-client's batching writer swallows errors (TRAPS.md), so this uses its synchronous
writer with the client's own retries off: every failure surfaces here, is classified, and the
spooled sink around it owns backoff and retry.
"""

from __future__ import annotations

import urllib3

from ingest.base import RejectedWriteError, RetryableWriteError
from foundation.config import InfluxV2Sink


def retry_after_seconds(value: str | None) -> float | None:
    """Parse a Retry-After header given in seconds (HTTP dates are rare from InfluxDB; ignored).

    >>> retry_after_seconds("7"), retry_after_seconds(None), retry_after_seconds("soon")
    (7.0, None, None)
    """
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


class InfluxV2Writer:
    """Writes line protocol to ``/api/v2/write`` and classifies every failure."""

    name = "influx_v2"

    def __init__(self, settings: InfluxV2Sink) -> None:
        # imported here, not at the top: influxdb-client (and reactivex, dateutil…) is ~13 MB of RSS that
        # `liaowang run` without an InfluxDB sink would carry for nothing
        from influxdb_client import InfluxDBClient, WritePrecision
        from influxdb_client.client.write_api import SYNCHRONOUS
        from influxdb_client.rest import ApiException

        self._precision, self._api_exception = WritePrecision.NS, ApiException
        self._settings = settings
        self._client = InfluxDBClient(url=settings.url, token=settings.token.get_secret_value(), org=settings.org,
                                      timeout=int(settings.timeout_s * 1000), retries=False)
        self._write = self._client.write_api(write_options=SYNCHRONOUS)

    def send(self, body: bytes) -> None:
        """Write one batch; RetryableWriteError on 429/5xx/network trouble, RejectedWriteError on 400/413."""
        try:
            self._write.write(bucket=self._settings.bucket, org=self._settings.org, record=body,
                              write_precision=self._precision)
        except self._api_exception as err:
            headers = err.headers or {}
            retry_after = retry_after_seconds(headers.get("Retry-After") or headers.get("retry-after"))
            if err.status in (400, 413, 422):
                raise RejectedWriteError(f"InfluxDB refused the batch: HTTP {err.status} {err.body!r:.200}") from err
            # 401/403/404 are configuration problems (token, org, bucket): retried, never dropped.
            raise RetryableWriteError(f"HTTP {err.status}", retry_after) from err
        except (urllib3.exceptions.HTTPError, OSError) as err:
            raise RetryableWriteError(f"{type(err).__name__}: {err}") from err

    def close(self) -> None:
        """Close the HTTP client."""
        self._write.close()
        self._client.close()
