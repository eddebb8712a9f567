"""Every table of Fieldline in one metadata, for migrations and schema checks.

The migrations (fieldline/migrations/) own the whole database; they read this metadata, so the
geographic core never has to import the server's models.
"""

from __future__ import annotations

import fieldline.server.alarms.models
import fieldline.server.auth.models
import fieldline.server.crews.models
import fieldline.server.incidents.models
import fieldline.server.mqtt_access.models
import fieldline.server.notices.models
import fieldline.server.service_levels.models
import fieldline.server.tasks.models
import fieldline.server.telemetry.models
import fieldline.server.uploads.models
import fieldline.server.verification.models  # noqa: F401
from fieldline.gis.models import Base

metadata = Base.metadata
