"""The texts of notices, each fitting one SMS segment.

One segment is 160 characters of the GSM 7-bit alphabet (the extension characters such as
`€` or `[` count twice), or 70 characters when any character is outside it (UCS-2). Texts are
built from ids, kinds and clock times, which always fit; free text (a task's title in an
escalation) is shortened to what is left.
"""

from __future__ import annotations

import math
from datetime import datetime
from zoneinfo import ZoneInfo

GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = frozenset("^{}\\[~]|€\f")
GSM_SEGMENT, UCS2_SEGMENT = 160, 70
GSM_PART, UCS2_PART = 153, 67  # per part of a concatenated message (the rest is its header)


def sms_length(text: str) -> tuple[int, bool]:
    """Length in septets and whether the text is GSM 7-bit (else UCS-2, in characters)."""
    if all(c in GSM_BASIC or c in GSM_EXTENSION for c in text):
        return sum(2 if c in GSM_EXTENSION else 1 for c in text), True
    return len(text), False


def sms_segments(text: str) -> int:
    length, gsm = sms_length(text)
    single, part = (GSM_SEGMENT, GSM_PART) if gsm else (UCS2_SEGMENT, UCS2_PART)
    return 1 if length <= single else math.ceil(length / part)


def fit_segment(text: str, free: str = "") -> str:
    """`text` followed by as much of `free` as keeps the whole in one segment."""
    free = " ".join(free.split())
    if not free:
        return text
    for end in range(min(len(free), GSM_SEGMENT), 0, -1):
        shortened = free[:end] if end == len(free) else free[:end].rstrip() + "..."
        candidate = f"{text} {shortened}"
        if sms_segments(candidate) == 1:
            return candidate
    return text


def clock(at: datetime, timezone: str) -> str:
    return at.astimezone(ZoneInfo(timezone)).strftime("%H:%M")


def crew_assigned(task: str, eta: datetime | None, timezone: str) -> str:
    if eta is None:
        return (
            f"A crew has been assigned to your report {task}. "
            "We will let you know when it is on its way."
        )
    return (
        f"A crew has been assigned to your report {task} and is expected on site "
        f"around {clock(eta, timezone)}."
    )


def crew_arriving(task: str, minutes: int) -> str:
    return f"The crew for your report {task} is about {minutes} min away."


def job_done(task: str) -> str:
    return f"The work on your report {task} is done. Thank you for your patience."


def follow_up(task: str) -> str:
    return (
        f"How did we do with your report {task}? Reply to this message or call us: "
        "we would like to hear from you."
    )


def escalation(
    task: str, timer: str, priority: str, due_at: datetime, crew: str | None, title: str, tz: str
) -> str:
    head = (
        f"OVERDUE {timer} {task} {priority}, promised {clock(due_at, tz)}, crew {crew or 'none'}:"
    )
    return fit_segment(head, title)


def verification_failed(task: str, run: int, crew: str | None, reasons: list[str]) -> str:
    """To the supervisor: the check of a crew's trace sent the task back; the first reason
    as far as it fits."""
    more = f" (+{len(reasons) - 1} more)" if len(reasons) > 1 else ""
    head = f"CHECK FAILED {task} run {run}, crew {crew or 'none'}, sent back{more}:"
    return fit_segment(head, reasons[0] if reasons else "")


def when(at: datetime, timezone: str, now: datetime) -> str:
    """A clock time, with the day when it is not the day of `now` (local time)."""
    zone = ZoneInfo(timezone)
    if at.astimezone(zone).date() == now.astimezone(zone).date():
        return clock(at, timezone)
    return at.astimezone(zone).strftime("%d.%m. %H:%M")


def water_off(incident: str, cause: str, start: datetime, restore: datetime | None, tz: str) -> str:
    back = "" if restore is None else f" We expect it back by {when(restore, tz, start)}."
    return f"Water is off in your area from {clock(start, tz)} ({incident}): {cause}.{back}"


def water_update(incident: str, restore: datetime, now: datetime, tz: str) -> str:
    return (
        f"Update on the water outage {incident}: we now expect water back by "
        f"{when(restore, tz, now)}."
    )


def water_restored(incident: str) -> str:
    return (
        f"Water is back on after the outage {incident}. If it runs cloudy, let the cold tap "
        "run for a few minutes. Thank you for your patience."
    )
