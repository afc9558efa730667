"""Fixtures of the server tests: the sample fleet file (the database snapshot fixture is in tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

HON_QUAN = Path(__file__).resolve().parents[2] / "bcast" / "data" / "hon-quan.csv"


@pytest.fixture
def hon_quan_csv() -> Path:
    return HON_QUAN
