"""What every test may ask for, unit or integration."""

from __future__ import annotations

import os

import pytest


@pytest.fixture
def no_riskd_environment(monkeypatch):
    """No `RISKD_` variable from the developer's shell or the CI runner reaches the test.

    pydantic-settings reads the environment case-insensitively, so `riskd_live` counts too.
    """
    for name in list(os.environ):
        if name.upper().startswith("RISKD_"):
            monkeypatch.delenv(name)
