"""The alarms' periodic job for `fieldline scheduler` (registered on import; the scheduler
imports this module through JOB_MODULES), every FIELDLINE_ALARM_EVALUATE_S.

Why a scheduler job rather than the gateway after its commit: the gateway's workers split the
traffic between them, so no worker sees all readings of a station in order, and two workers
would race to open the same alarm; a stale alarm needs a clock that ticks when nothing
arrives at all, which only a periodic job has; and the gateway's hot path stays one batched
write per batch. The job is cheap: per station and metric it reads only the readings measured
since it last judged them (an index range on the telemetry's key), and one scheduler acts at a
time (leader election). Its state is in the database, written in the transaction that raises
or clears the alarms, so a restart loses nothing and raises nothing twice; the cost is up to
FIELDLINE_ALARM_EVALUATE_S of delay after a reading is stored.
"""

from __future__ import annotations

from fieldline.scheduler import JobContext, register
from fieldline.server.alarms.services import Run, announce, evaluate_rules

DEFAULT_EVALUATE_S = 5.0


def alarms_job(context: JobContext) -> Run:
    with context.sessions() as session:
        run = evaluate_rules(session, context.now(), context.settings)
        session.commit()
        # After the commit: the live stream never shows an alarm that is not stored.
        announce(session, context.live, context.now())
        session.commit()
    return run


register("alarms", DEFAULT_EVALUATE_S, alarms_job, interval_setting="alarm_evaluate_s")
