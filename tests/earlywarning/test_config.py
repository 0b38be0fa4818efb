"""warnings.yaml: the shipped file loads and is checked against alerting.yaml and the fleet; broken files
name their key; a missing file gives the defaults."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from foundation.config import ConfigError
from foundation.warningspec import WarningLevel, WarningSettings, load_warning_settings
from tests.conftest import CONFIG_DIR


def test_the_shipped_file_loads_and_every_number_has_a_source(demo_config) -> None:
    settings = load_warning_settings(CONFIG_DIR, alerting=demo_config.alerting, fleet=demo_config.fleet)
    assert settings.categories["自然灾害/森林火险"].levels == [WarningLevel.I, WarningLevel.II, WarningLevel.III]
    assert settings.verification.deadline_s[WarningLevel.I] == 600 and "DOMAIN.md" in settings.verification.source
    for spec in settings.categories.values():
        assert spec.radius_source and spec.levels_source
    for entry in settings.guidance:
        for measure in entry.watch + entry.measures:
            assert measure.source and not measure.confirmed  # nobody here read these standards' wording
    forest = next(r for r in settings.routes if r.match.categories == ["自然灾害/森林火险"])
    assert not {"plant-operator", "plant-safety"} & set(forest.desk + forest.escalation + forest.recipients)


def test_a_missing_file_gives_the_defaults(tmp_path: Path) -> None:
    assert load_warning_settings(tmp_path) == WarningSettings()
    assert "事故灾难/危险化学品" in WarningSettings().categories


def write(tmp_path: Path, data) -> Path:
    (tmp_path / "warnings.yaml").write_text(yaml.safe_dump(data, allow_unicode=True) if not isinstance(data, str)
                                            else data, encoding="utf-8")
    return tmp_path


ROUTE = {"desk": ["county-duty"]}


@pytest.mark.parametrize("data, key, reason", [
    ("a: [", "-", "not valid YAML"),
    (["x"], "-", "must be a mapping"),
    ({"routez": []}, "routez", "unknown key"),
    ({"categories": {"危险化学品": {"event": "危险化学品事故", "cap_categories": ["CBRNE"]}}}, "-", "大类/小类"),
    ({"categories": {"事故灾难/燃气": {"event": "燃气事故", "cap_categories": ["Gas"]}}},
     "categories.事故灾难/燃气.cap_categories[0]", "Input should be"),
    ({"categories": {"事故灾难/燃气": {"event": "燃气事故", "cap_categories": ["Infra"], "radius_km": 0}}},
     "categories.事故灾难/燃气.radius_km", "greater than 0"),
    ({"guidance": [{"match": {"categories": ["自然灾害/地震"]}}]}, "-", "no category is or lies under"),
    ({"guidance": [{"measures": [{"text": "立即撤离", "source": ""}]}]}, "guidance[0].measures[0].source",
     "at least 3"),
    ({"guidance": [{"measures": [{"text": "立即撤离"}]}]}, "guidance[0].measures[0].source", "Field required"),
    ({"issuers": [{"id": "city", "name": "市局", "sender": "a b"}]}, "issuers[0].sender", "pattern"),
    ({"issuers": [{"id": "city", "name": "市局", "sender": "a"}, {"id": "c2", "name": "局二", "sender": "b"}]},
     "-", "exactly one issuer"),
    ({"issuers": [{"id": "city", "name": "市局", "sender": "a"},
                  {"id": "county-x", "name": "某县局", "sender": "b", "counties": ["某县"]}]}, "issuers[1].counties",
     "unknown county"),
    ({"zones": [{"id": "Z1", "name": "林区", "circle": {"lon": 116, "lat": 36, "radius_km": 1},
                 "polygon": [[116, 36], [116.1, 36], [116.1, 36.1]]}]}, "zones[0]", "give polygon or circle"),
    ({"zones": [{"id": "Z1", "name": "林区", "site_id": "LC-NOPE", "circle": {"lon": 116, "lat": 36,
                                                                              "radius_km": 1}}]},
     "zones[0].site_id", "unknown site"),
    ({"routes": [{"desk": ["nobody"]}]}, "routes[0].desk", "unknown receiver 'nobody'"),
    ({"routes": [{**ROUTE, "escalation": ["city-dutty"]}]}, "routes[0].escalation", "unknown receiver"),
    ({"routes": [{**ROUTE, "match": {"sites": ["LC-NOPE"]}}]}, "routes[0].match.sites", "unknown site"),
    ({"routes": [{"desk": []}]}, "routes[0].desk", "at least 1"),
    ({"verification": {"deadline_s": {"I": 600}}}, "verification", "needs every level"),
    ({"verification": {"deadline_s": {"V": 600}}}, "verification.deadline_s.V", "Input should be"),
    ({"cap": {"scope": "Restricted"}}, "cap", "needs restriction"),
    ({"cap": {"status": "Real"}}, "cap.status", "Input should be"),
])
def test_a_broken_file_names_its_key(tmp_path: Path, demo_config, data, key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_warning_settings(write(tmp_path, data), alerting=demo_config.alerting, fleet=demo_config.fleet)
    assert err.value.file.endswith("warnings.yaml") and err.value.key.startswith(key), str(err.value)
    assert reason in err.value.reason, str(err.value)


def test_the_shipped_file_without_alerting_and_fleet_checks_counties_only(tmp_path: Path) -> None:
    shutil.copy(CONFIG_DIR / "warnings.yaml", tmp_path / "warnings.yaml")
    assert load_warning_settings(tmp_path).routes
