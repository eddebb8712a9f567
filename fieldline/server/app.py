"""The application factory; nothing is built at import time."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from flask import Flask

from fieldline.server.auth.cookies import configure_sessions
from fieldline.server.errors import register_error_handlers
from fieldline.server.limits import register as register_limits
from fieldline.server.resources import Resources, close_db
from fieldline.settings import Settings, get_settings


def create_app(
    settings: Settings | None = None, *, bind: sa.Engine | sa.Connection | None = None
) -> Flask:
    settings = settings or get_settings()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    app = Flask(__name__)
    app.config.update(
        FIELDLINE_SETTINGS=settings,
        MAX_CONTENT_LENGTH=settings.max_request_bytes,
        JSON_SORT_KEYS=False,
    )
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["fieldline"] = Resources.from_settings(settings, bind)
    app.teardown_appcontext(close_db)
    configure_sessions(app, settings)
    register_error_handlers(app)
    register_limits(app, settings)

    from fieldline.server.alarms.views import blueprint as alarms
    from fieldline.server.api_docs.views import blueprint as api_docs
    from fieldline.server.assets.views import blueprint as assets
    from fieldline.server.auth.views import blueprint as auth
    from fieldline.server.crew_app.views import blueprint as crew_app
    from fieldline.server.crews.views import blueprint as crews
    from fieldline.server.dispatch.views import blueprint as dispatch
    from fieldline.server.exports.views import blueprint as exports
    from fieldline.server.health.views import blueprint as health
    from fieldline.server.home.views import blueprint as home
    from fieldline.server.imports.views import blueprint as imports
    from fieldline.server.incidents.views import blueprint as incidents
    from fieldline.server.kpis.views import blueprint as kpis
    from fieldline.server.live.views import blueprint as live
    from fieldline.server.map.views import blueprint as web_map
    from fieldline.server.meters.views import blueprint as meters
    from fieldline.server.network.views import blueprint as network
    from fieldline.server.notices.views import blueprint as notices
    from fieldline.server.ogc.views import blueprint as ogc
    from fieldline.server.reports.views import blueprint as reports
    from fieldline.server.service_levels.views import blueprint as warnings
    from fieldline.server.tasks.views import blueprint as tasks
    from fieldline.server.telemetry.views import blueprint as telemetry
    from fieldline.server.uploads.views import blueprint as uploads
    from fieldline.server.verification.views import blueprint as verification

    app.register_blueprint(home)
    app.register_blueprint(health)
    app.register_blueprint(web_map)
    app.register_blueprint(crew_app)
    app.register_blueprint(auth)
    app.register_blueprint(assets, url_prefix="/api/v1/assets")
    app.register_blueprint(imports, url_prefix="/api/v1/imports")
    app.register_blueprint(exports, url_prefix="/api/v1/exports")
    app.register_blueprint(ogc, url_prefix="/ogc")
    app.register_blueprint(network, url_prefix="/api/v1/network")
    app.register_blueprint(crews, url_prefix="/api/v1/crews")
    app.register_blueprint(tasks, url_prefix="/api/v1/tasks")
    app.register_blueprint(dispatch, url_prefix="/api/v1")
    app.register_blueprint(telemetry, url_prefix="/api/v1")
    app.register_blueprint(alarms, url_prefix="/api/v1")
    app.register_blueprint(incidents, url_prefix="/api/v1")
    app.register_blueprint(meters, url_prefix="/api/v1/meters")
    app.register_blueprint(live, url_prefix="/api/v1")
    app.register_blueprint(warnings, url_prefix="/api/v1")
    app.register_blueprint(notices, url_prefix="/api/v1")
    app.register_blueprint(kpis, url_prefix="/api/v1")
    app.register_blueprint(verification, url_prefix="/api/v1")
    app.register_blueprint(reports, url_prefix="/api/v1/reports")
    app.register_blueprint(uploads, url_prefix="/api/v1/uploads")
    app.register_blueprint(api_docs, url_prefix="/api/v1")
    return app
