"""The dispatch's periodic jobs for `fieldline scheduler`: offers that ran out go to the next
crew, and tasks that wait for a crew go to one that has become free (registered on import;
the scheduler imports this module through JOB_MODULES)."""

from __future__ import annotations

from collections.abc import Callable

from fieldline.scheduler import JobContext, register
from fieldline.server.dispatch.services import dispatch_waiting, expire_offers
from fieldline.server.tasks import events
from fieldline.server.tasks.inbox import process_inbox
from fieldline.server.tasks.services import announce

# How often offers are checked: an offer runs at most this much past its expiry.
EXPIRE_OFFERS_EVERY_S = 15.0


def _offer_job(offer: Callable[..., list[str]]) -> Callable[[JobContext], list[str]]:
    def job(context: JobContext) -> list[str]:
        settings = context.settings
        with context.sessions() as session:
            offered = offer(session, context.now(), settings=settings, live=context.live)
            session.commit()
            # After the commit: crews hear of withdrawn and new offers only once stored.
            inbox = process_inbox(settings.mqtt_url, settings.inbox_timeout_s)
            announce(session, events.take(session), context.live, inbox)
        return offered

    return job


expire_offers_job = _offer_job(expire_offers)
dispatch_waiting_job = _offer_job(dispatch_waiting)
register("expire_offers", EXPIRE_OFFERS_EVERY_S, expire_offers_job)
register("dispatch_waiting", EXPIRE_OFFERS_EVERY_S, dispatch_waiting_job)
