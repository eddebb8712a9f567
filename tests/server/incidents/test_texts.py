"""The outage texts fit one SMS segment with the longest ids and clock times, and name the
incident, the cause and the times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fieldline.server.incidents.outages import CAUSE
from fieldline.server.notices import texts
from fieldline.server.notices.texts import sms_segments

INCIDENT = "IN-123456789"
START = datetime(2031, 3, 2, 21, 59, tzinfo=UTC)  # 23:59 in Helsinki
TZ = "Europe/Helsinki"


def test_outage_texts_fit_one_segment() -> None:
    later = START + timedelta(hours=30)
    for text in (
        texts.water_off(INCIDENT, CAUSE, START, later, TZ),
        texts.water_off(INCIDENT, CAUSE, START, None, TZ),
        texts.water_update(INCIDENT, later, START, TZ),
        texts.water_restored(INCIDENT),
    ):
        assert sms_segments(text) == 1, text
        assert INCIDENT in text


def test_water_off_says_cause_start_and_restoration_with_the_day_when_not_today() -> None:
    early = START - timedelta(hours=2)  # 21:59 local
    same_day = texts.water_off(INCIDENT, CAUSE, early, START, TZ)
    assert CAUSE in same_day and "from 21:59" in same_day and "back by 23:59." in same_day
    next_day = texts.water_off(INCIDENT, CAUSE, START, START + timedelta(hours=2), TZ)
    assert "back by 03.03. 01:59" in next_day
