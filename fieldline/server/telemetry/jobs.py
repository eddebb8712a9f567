"""The position history's periodic job for `fieldline scheduler`: every day of positions older
than FIELDLINE_POSITIONS_DETAIL_DAYS is rolled up into the history (registered on import; the
scheduler imports this module through JOB_MODULES)."""

from __future__ import annotations

from fieldline.scheduler import JobContext, register
from fieldline.server.telemetry.history import (
    Rollup,
    detail_cutoff,
    month_partition,
    pending_days,
    roll_up_day,
)

# A new day comes due once a day; hourly, it is rolled up within an hour of midnight (UTC).
ROLLUP_EVERY_S = 3600.0


def position_rollup(context: JobContext) -> list[Rollup]:
    """Each day commits on its own, oldest first: a failure keeps the days before it, and the
    history stays one unbroken run of days (its end is where crews' tracks turn detailed)."""
    before = detail_cutoff(context.settings.positions_detail_days, context.now().date())
    with context.engine.connect() as connection:
        days = pending_days(connection, before)
    rolled = []
    for day in days:
        # A new month's partition first, on its own: making it locks the whole history, which
        # must not last as long as the roll-up of a day.
        with context.engine.begin() as connection:
            month_partition(connection, day)
        with context.engine.begin() as connection:
            rolled.append(roll_up_day(connection, day))
    return rolled


register("position_rollup", ROLLUP_EVERY_S, position_rollup)
