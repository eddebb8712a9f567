"""Every table of Fieldline in one metadata, for migrations and schema checks.

The migrations live under gis/ for history's sake, but they own the whole database; the tables
of server domains are registered here rather than imported by the geographic core.
"""

from __future__ import annotations

import fieldline.server.crews.models
import fieldline.server.telemetry.models  # noqa: F401
from fieldline.gis.models import Base

metadata = Base.metadata
