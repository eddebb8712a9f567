"""The recorded payload samples under fixtures/payloads/<decoder>/."""

from __future__ import annotations

from pathlib import Path

PAYLOADS = Path(__file__).resolve().parents[3] / "fixtures" / "payloads"


def sample(decoder: str, name: str) -> bytes:
    return (PAYLOADS / decoder / name).read_bytes()
