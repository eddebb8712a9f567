"""The incidents' periodic job for `fieldline scheduler` (registered on import; the scheduler
imports this module through JOB_MODULES), every FIELDLINE_INCIDENT_INTAKE_S.

It takes in the SCADA pressure alarms and the crews' leak and damage reports that are in no
incident yet, and announces the steps not announced yet (among them those taken inside other
transactions: a task verified by the proof-of-work check moves its incident on there).
Why a job rather than a hook in the alarm evaluation or the gateway: those write in batches
on hot paths and know nothing of incidents; the job reads what they committed, and the
unique (kind, ref) of a source makes a second run link nothing twice. The cost is up to
FIELDLINE_INCIDENT_INTAKE_S of delay.
"""

from __future__ import annotations

from fieldline.scheduler import JobContext, register
from fieldline.server.incidents.services import Intake, announce, intake

DEFAULT_INTAKE_S = 10.0


def incidents_job(context: JobContext) -> Intake:
    with context.sessions() as session:
        run = intake(session, context.now(), context.settings)
        session.commit()
        # After the commit: the live stream never shows a step that is not stored.
        announce(session, context.live, context.now())
        session.commit()
    return run


register("incidents", DEFAULT_INTAKE_S, incidents_job, interval_setting="incident_intake_s")
