from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fieldline.server.notices import texts
from fieldline.server.notices.texts import fit_segment, sms_segments


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("a" * 160, 1),
        ("a" * 161, 2),  # 153 per part once concatenated
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("€" * 80, 1),  # an extension character counts twice
        ("€" * 81, 2),
        ("ä" * 160, 1),  # in the GSM alphabet
        ("ж" * 70, 1),  # outside it: UCS-2
        ("ж" * 71, 2),
    ],
)
def test_segments(text: str, segments: int) -> None:
    assert sms_segments(text) == segments


def test_every_text_fits_one_segment() -> None:
    task, at = "T-123456789", datetime(2031, 3, 2, 23, 59, tzinfo=UTC)
    for text in (
        texts.crew_assigned(task, at, "Europe/Helsinki"),
        texts.crew_assigned(task, None, "Europe/Helsinki"),
        texts.crew_arriving(task, 30),
        texts.job_done(task),
        texts.follow_up(task),
        texts.escalation(task, "completion", "P1", at, "C-123456789", "Ж" * 500, "UTC"),
        texts.escalation(task, "completion", "P1", at, None, "x" * 500, "UTC"),
    ):
        assert sms_segments(text) == 1, text


def test_free_text_is_shortened_only_as_needed() -> None:
    assert fit_segment("head", "short title") == "head short title"
    long = fit_segment("h" * 150, "a title that is too long")
    assert long == "h" * 150 + " a titl..."
    assert len(long) == 160
