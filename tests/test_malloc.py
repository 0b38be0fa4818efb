"""foundation/malloc.py applies glibc settings once, hands them to children, and yields to the operator's."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc settings")

PROBE = ("import os; from foundation.malloc import tune_malloc; "
         "print(tune_malloc(), tune_malloc(), os.environ.get('MALLOC_ARENA_MAX'), os.environ.get('MALLOC_MMAP_THRESHOLD_'))")


def _probe(env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]  # after the log lines


def test_settings_are_applied_once_and_passed_to_children():
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    assert _probe(env) == "True True 2 1048576"


def test_the_operators_own_malloc_settings_win():
    # only the operator's one setting: a Pipeline built earlier in this test process set ours in os.environ
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    env["MALLOC_ARENA_MAX"] = "4"
    assert _probe(env) == "False False 4 None"
