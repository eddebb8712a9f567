"""The verification's periodic job for `fieldline scheduler`: the runs that came due are
checked, and the tasks verified or sent back (registered on import; the scheduler imports this
module through JOB_MODULES)."""

from __future__ import annotations

from fieldline.scheduler import JobContext, register
from fieldline.server.tasks.inbox import process_inbox
from fieldline.server.tasks.services import announce
from fieldline.server.verification.services import Checked, publish, run_due

# A run waits at most this long past its due time (the grace after completion).
VERIFY_EVERY_S = 15.0


def verification_job(context: JobContext) -> list[Checked]:
    settings = context.settings
    with context.sessions() as session:
        checked = run_due(session, context.now(), settings)
        session.commit()
        # After the commit: crews hear of reopened work, dispatchers of failed checks, only
        # once stored.
        inbox = process_inbox(settings.mqtt_url, settings.inbox_timeout_s)
        announce(session, [e for c in checked for e in c.events], context.live, inbox)
        publish(context.live, checked)
    return checked


register("verification", VERIFY_EVERY_S, verification_job)
