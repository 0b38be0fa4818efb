"""docker-compose.yml, the Dockerfile and the Grafana provisioning, checked by parsing (no Docker engine runs here)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from foundation.config import hash_token, load_config
from liaowang.pipeline import Pipeline

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
SERVICES = COMPOSE["services"]
GRAFANA = ROOT / "dashboards" / "grafana"


def test_every_image_is_pinned_and_every_long_running_service_has_a_healthcheck():
    assert set(SERVICES) == {"mosquitto", "influxdb", "liaowang", "prometheus", "grafana", "simulators"}
    for name, service in SERVICES.items():
        image = service.get("image")
        assert image and re.search(r":v?[0-9][\w.-]*$", image), f"{name}: pin the image version, got {image!r}"
        if name != "simulators":
            assert "healthcheck" in service, name
            assert service.get("restart") == "unless-stopped", name


def test_dependencies_wait_for_healthy_services_that_exist():
    for name, service in SERVICES.items():
        for dependency, condition in service.get("depends_on", {}).items():
            assert dependency in SERVICES, (name, dependency)
            assert condition == {"condition": "service_healthy"} and "healthcheck" in SERVICES[dependency]


def test_volumes_are_named_or_files_of_this_repository():
    named = set(COMPOSE["volumes"])
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name}: {source} is not in the repository"
            else:
                assert source in named, f"{name}: named volume {source} is not declared"
    used = {v.split(":")[0] for s in SERVICES.values() for v in s.get("volumes", []) if not v.startswith("./")}
    assert used == named


def test_ports_and_secrets_come_from_the_environment_file():
    assert SERVICES["mosquitto"]["ports"] == ["1883:1883"]
    assert SERVICES["liaowang"]["ports"] == ["8000:8000"]
    assert SERVICES["grafana"]["ports"] == ["3000:3000"]
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    required = set(re.findall(r"\$\{([A-Z_]+):\?", text))
    example = {line.split("=")[0] for line in (ROOT / "deploy" / "env.example").read_text().splitlines()
               if line and not line.startswith("#")}
    assert required and required <= example
    assert "INFLUXDB_ADMIN_TOKEN" in SERVICES["influxdb"]["environment"]["DOCKER_INFLUXDB_INIT_ADMIN_TOKEN"]


def test_the_liaowang_service_configuration_loads_with_its_environment(tmp_path, monkeypatch):
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    for volume in SERVICES["liaowang"]["volumes"]:
        source, target = volume.split(":")[:2]
        if target.startswith("/config/"):
            shutil.copy(ROOT / source, config_dir / Path(target).name)
    for key, value in SERVICES["liaowang"]["environment"].items():
        secret = hash_token("metrics-from-env") if key.endswith("SHA256") else "secret-from-env"
        monkeypatch.setenv(key, secret if "${" in str(value) else str(value))
    config = load_config(config_dir)
    settings = config.settings
    assert (settings.mqtt.host, settings.mqtt.port, settings.mqtt.embedded_broker) == ("mosquitto", 1883, "none")
    assert settings.mqtt.password.get_secret_value() == "secret-from-env"
    assert settings.sinks.influx_v2.url == "http://influxdb:8086"
    assert settings.sinks.influx_v2.token.get_secret_value() == "secret-from-env"
    assert settings.sinks.influx_v2.org == SERVICES["influxdb"]["environment"]["DOCKER_INFLUXDB_INIT_ORG"]
    assert settings.sinks.influx_v2.bucket == SERVICES["influxdb"]["environment"]["DOCKER_INFLUXDB_INIT_BUCKET"]
    assert not settings.auth.holds_demo_tokens() and not settings.auth.public_read
    assert settings.http.port == 8000 and settings.storage.data_dir == "/data"
    assert settings.auth.metrics_token_sha256 == hash_token("metrics-from-env")


def test_mosquitto_acl_pins_gateways_to_their_own_site_and_lets_liaowang_in():
    acl = (ROOT / "deploy" / "mosquitto" / "acl").read_text()
    assert "pattern write liaowang/v1/readings/%u/#" in acl and "pattern write liaowang/v1/status/%u" in acl
    users = set(re.findall(r"^user (\S+)", acl, re.M))
    command = " ".join(SERVICES["mosquitto"]["command"])
    for user in ("liaowang", "healthcheck", "simulator"):
        assert user in users and f"passwd {user} " in command
    assert yaml.safe_load((ROOT / "deploy" / "config" / "liaowang.yaml").read_text())["mqtt"]["username"] == "liaowang"
    conf = (ROOT / "deploy" / "mosquitto" / "mosquitto.conf").read_text()
    assert "password_file /mosquitto/config/passwd" in conf and "acl_file /mosquitto/config/acl" in conf
    assert "allow_anonymous false" in conf


def test_prometheus_scrapes_the_liaowang_service():
    prometheus = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    [job] = prometheus["scrape_configs"]
    assert job["static_configs"][0]["targets"] == ["liaowang:8000"] and job["metrics_path"] == "/metrics"
    # Reads need a token in production: Prometheus sends the metrics token from a compose secret.
    secret_file = job["authorization"]["credentials_file"]
    assert job["authorization"]["type"] == "Bearer" and secret_file == "/run/secrets/metrics_token"
    assert "metrics_token" in SERVICES["prometheus"]["secrets"]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    variable = compose["secrets"]["metrics_token"]["environment"]
    example = (ROOT / "deploy" / "env.example").read_text()
    assert f"{variable}=" in example and "METRICS_TOKEN_SHA256=" in example


def test_the_dockerfile_copies_every_package_and_runs_without_simulators():
    dockerfile = (ROOT / "Dockerfile").read_text()
    for package in ("liaowang", "ingest", "rules", "alerting", "simulators", "dashboards"):
        assert f"COPY {package} ./{package}" in dockerfile
    assert re.search(r"^FROM python:3\.11\.\d+-slim", dockerfile, re.M)
    assert '"--no-simulators"' in dockerfile and "HEALTHCHECK" in dockerfile


@pytest.fixture(scope="module")
def metric_names(tmp_path_factory):
    pipeline = Pipeline(load_config(ROOT / "config"), tmp_path_factory.mktemp("data"))
    names = {m.name for m in pipeline.registry.collect()}
    pipeline.stop()
    # prometheus_client drops _total from counter names in collect(); histograms expose _bucket
    return names | {f"{n}_total" for n in names} | {f"{n}_bucket" for n in names}


def test_grafana_provisioning_and_dashboards_refer_to_what_exists(metric_names):
    datasources = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "liaowang.yaml").read_text())
    uids = {d["uid"]: d for d in datasources["datasources"]}
    assert uids["influx-liaowang"]["url"] == "http://influxdb:8086"
    assert uids["influx-liaowang"]["jsonData"]["organization"] == SERVICES["influxdb"]["environment"]["DOCKER_INFLUXDB_INIT_ORG"]
    assert uids["influx-liaowang"]["secureJsonData"]["token"] == "$INFLUXDB_TOKEN"
    assert "INFLUXDB_TOKEN" in SERVICES["grafana"]["environment"]
    assert uids["prometheus-liaowang"]["url"] == "http://prometheus:9090"
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "liaowang.yaml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    boards = {p.name: json.loads(p.read_text(encoding="utf-8")) for p in (GRAFANA / "dashboards").glob("*.json")}
    assert set(boards) == {"plant-live.json", "alerts-by-tier.json", "pipeline-health.json"}
    for name, board in boards.items():
        assert board["uid"] and board["title"] and board["panels"], name
        for panel in board["panels"]:
            assert panel["datasource"]["uid"] in uids, (name, panel["title"])
            for target in panel["targets"]:
                if "expr" in target:
                    for metric in re.findall(r"liaowang_[a-z_]+", target["expr"]):
                        assert metric in metric_names, (name, metric)
                else:
                    assert 'r._measurement == "reading"' in target["query"] and 'bucket: "liaowang"' in target["query"]
    variables = {v["name"] for v in boards["plant-live.json"]["templating"]["list"]}
    assert variables == {"site", "family"}
