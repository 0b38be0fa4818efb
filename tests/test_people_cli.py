"""`liaowang users …` on a data dir as the bureau's admin runs it, and `liaowang run` refusing to put the demo
passwords on a public address."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
import yaml

from alerting.audit import AuditLog
from alerting.db import AlertDB
from foundation.config import load_config
from liaowang.users import People, SignInRefused

from .conftest import CONFIG_DIR, free_port


def users(data_dir, *args: str, password: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "liaowang.cli", "users", *args, "--config", str(CONFIG_DIR),
                           "--data-dir", str(data_dir), *(["--password-stdin"] if password is not None else [])],
                          input=(password or "") + "\n", capture_output=True, text=True, timeout=60)


def people_of(data_dir) -> People:
    db = AlertDB(data_dir / "alerts.db")
    return People(db, AuditLog(db), load_config(CONFIG_DIR).settings.auth, lambda: 1_900_000_000.0)


def test_the_admin_adds_resets_disables_and_lists_users_on_the_data_dir(tmp_path):
    data = tmp_path / "data"
    added = users(data, "add", "wang", "--role", "operator", "--sites", "LC-XFHG", "--display-name", "王工",
                  password="wang-first-pass")
    assert added.returncode == 0, added.stderr
    assert users(data, "add", "li", "--role", "viewer", "--sites", "LC-NOPE", password="li-first-pass").returncode != 0
    assert users(data, "passwd", "wang", password="short").returncode == 1  # refused: too short
    assert users(data, "passwd", "wang", password="wang-second-pass").returncode == 0
    listed = users(data, "list").stdout.splitlines()
    assert "wang\t王工\toperator\tLC-XFHG\tenabled" in listed
    assert any(line.startswith("luxi-operator\t") for line in listed)  # the configured users are seeded too
    store = people_of(data)
    with pytest.raises(SignInRefused):
        store.sign_in("wang", "wang-first-pass", None)
    store.sign_in("wang", "wang-second-pass", None)
    assert users(data, "disable", "wang").returncode == 0
    with pytest.raises(SignInRefused):
        store.sign_in("wang", "wang-second-pass", None)
    refused = users(data, "disable", "admin")
    assert refused.returncode == 1 and "last enabled admin" in refused.stderr
    actions = [(r["actor"].split(":")[0], r["action"], r["subject"]) for r in store._audit.records()]
    assert ("cli", "user_created", "wang") in actions and ("cli", "password_reset", "wang") in actions


def test_hash_password_prints_an_argon2_hash_the_configuration_accepts(tmp_path):
    out = users(tmp_path, "hash-password", password="a-new-secret-pass")
    assert out.returncode == 0 and out.stdout.startswith("$argon2id$")
    from foundation.passwords import verify

    assert verify("a-new-secret-pass", out.stdout.strip())


def test_run_refuses_a_public_address_while_a_demo_password_is_configured(tmp_path):
    config = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, config)
    settings = yaml.safe_load((config / "liaowang.yaml").read_text(encoding="utf-8"))
    settings["auth"]["tokens"] = []  # no demo tokens: the demo passwords alone must keep it on loopback
    settings["http"]["host"] = "0.0.0.0"
    (config / "liaowang.yaml").write_text(yaml.safe_dump(settings, allow_unicode=True), encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "liaowang.cli", "run", "--config", str(config), "--data-dir",
                             str(tmp_path / "data"), "--http-port", str(free_port()), "--mqtt-port", str(free_port()),
                             "--no-simulators"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "demo_passwords_off_loopback" in result.stderr + result.stdout

