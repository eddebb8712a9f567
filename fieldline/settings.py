"""Every FIELDLINE_* environment variable, typed and validated in one place.

Each package reads its settings from here through `get_settings()`; nothing else looks at
`os.environ` for configuration, so the README table and this class cannot drift apart.
"""

from __future__ import annotations

import math
from datetime import timedelta
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class SettingsError(Exception):
    """A FIELDLINE_* variable has a value Fieldline cannot use."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FIELDLINE_", extra="ignore", frozen=True)

    database_url: str = "postgresql+psycopg://localhost/fieldline"
    # A streaming replica the web server's heavy reads that tolerate replication lag go to
    # (tracks, telemetry, map tiles, OGC items, exports, KPIs; server/resources.py `replica`);
    # empty: everything on `database_url`.
    database_read_url: str = ""
    test_database_url: str = "postgresql+psycopg://localhost/fieldline_test"
    # A server (redis://, rediss://, unix://) or a Sentinel-kept master
    # (redis+sentinel://host:port[,host:port...]/service_name; fieldline/redis_client.py).
    redis_url: str = "redis://localhost:6379/0"
    mqtt_url: str = "mqtt://localhost:1883"
    # The broker's MQTT-over-WebSocket listener for the crew's handheld app (`fieldline
    # services up` opens it on the local Mosquitto, bound like the MQTT one), and the URL the
    # app is told at sign-in; empty: ws://<the host name the app signed in at>:<port>.
    mqtt_ws_port: Annotated[int, Field(ge=1, le=65535)] = 9001
    mqtt_ws_url: str = ""
    # Devices connect with their own credentials (`fieldline devices add`) to the broker's TLS
    # listener and to the WebSocket one; Fieldline changes those credentials through the broker's
    # dynamic security API as `mqtt_admin_user`, whose password `fieldline services up` keeps in
    # `mqtt_admin_password_file`, over TLS checked against `mqtt_ca_file`.
    mqtt_tls_port: Annotated[int, Field(ge=1, le=65535)] = 8883
    mqtt_ca_file: str = "/etc/mosquitto/fieldline/ca.crt"
    mqtt_admin_user: str = "fieldline-admin"
    mqtt_admin_password_file: str = "/etc/mosquitto/fieldline/admin.password"

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8080
    web_workers: Annotated[int, Field(ge=1, le=64)] = 2
    web_threads: Annotated[int, Field(ge=1, le=64)] = 4
    # `asgi`: uvicorn's gunicorn worker; the live stream is served on its event loop, the rest by
    # Flask on `web_threads` threads (server/asgi.py). `gthread`: gunicorn's threads only, each
    # open live stream holding one of them.
    web_server: Literal["asgi", "gthread"] = "asgi"
    # Events an open live stream may fall behind before it is ended (the client reconnects).
    live_client_queue: Annotated[int, Field(ge=10, le=100_000)] = 1000

    # The utility's own projected CRS, offered next to WGS 84 and Web Mercator.
    local_crs: str = "EPSG:3067"
    page_size: Annotated[int, Field(ge=1, le=10_000)] = 100
    max_page_size: Annotated[int, Field(ge=1, le=100_000)] = 10_000
    max_radius_m: Annotated[float, Field(gt=0)] = 50_000.0
    max_nearest_k: Annotated[int, Field(ge=1)] = 1_000
    max_request_bytes: Annotated[int, Field(ge=1024)] = 10 * 1024 * 1024
    # Files uploaded to /api/v1/imports (a utility's GeoPackage is larger than any API body).
    max_upload_bytes: Annotated[int, Field(ge=1024)] = 200 * 1024 * 1024

    # Photos the crews' handhelds upload (PUT /api/v1/uploads/{uuid}), each at most this big.
    photo_max_bytes: Annotated[int, Field(ge=1024)] = 10 * 1024 * 1024
    # How often the crew's handheld sends a fix, told at sign-in: per task kind ("patrol=5"),
    # `idle` without an open task, `default` for the kinds not named ("kind=seconds,...").
    gps_intervals_s: str = "patrol=5,default=15,idle=60"

    # Redis keys and channels start with this prefix (`fieldline:crews:geo`, `fieldline:live`).
    redis_prefix: str = "fieldline"

    # The dispatcher's map (server/map/): an XYZ raster tile URL drawn under the network
    # (`https://tiles.example.org/{z}/{x}/{y}.png`) and the credit its provider asks for.
    # Empty: no base map, the roads table is the only context (nothing is fetched elsewhere).
    map_base_tiles_url: str = ""
    map_base_tiles_attribution: str = ""

    # Device gateway (`fieldline gateway`).
    # Empty: fieldline-gw-<hostname>. A second worker on the same host needs its own id. The id
    # must stay the same across restarts: the broker keeps queueing a worker's share of the
    # messages in its session while it is away, and hands them only to the same client id.
    gateway_client_id: str = ""
    gateway_share_group: str = "fieldline"  # workers of one group split the load
    # Whether this worker takes the Sparkplug B topics (`spBv1.0/#`), subscribed without the
    # share group because a host must see all of an edge node's messages: on in exactly one
    # worker of a deployment, false in the others.
    gateway_sparkplug: bool = True
    mqtt_session_expiry_s: Annotated[int, Field(ge=0)] = 3600
    # Seconds between MQTT keep-alive pings: how soon a silently dead connection is noticed.
    mqtt_keepalive_s: Annotated[int, Field(ge=1, le=65535)] = 30
    gateway_max_payload_bytes: Annotated[int, Field(ge=64)] = 64 * 1024
    gateway_batch_size: Annotated[int, Field(ge=1, le=100_000)] = 1000
    # Requests a minute per principal (its API token's or user's name, else the client's
    # address), and messages a minute per device in the gateway (over it: dead letter
    # `rate_limited`); both counted in Redis, generous so that normal use never meets them.
    rate_limit_api: Annotated[int, Field(ge=1)] = 6000
    rate_limit_device: Annotated[int, Field(ge=1)] = 1200
    gateway_flush_ms: Annotated[int, Field(ge=1, le=60_000)] = 100
    gateway_metrics_port: Annotated[int, Field(ge=0, le=65535)] = 9108  # 0: no /metrics
    deadletter_payload_bytes: Annotated[int, Field(ge=0)] = 4096  # raw payload kept
    deadletter_stream_maxlen: Annotated[int, Field(ge=1)] = 10_000
    # Days of positions and telemetry kept; `fieldline db prune` drops older partitions.
    retention_days: Annotated[int, Field(ge=1)] = 90
    # Days of positions a crew's track is drawn from in full: each older UTC day is thinned to
    # a fix a minute into the position history (the scheduler's `position_rollup`) before
    # prune may drop it; at most FIELDLINE_RETENTION_DAYS, and longer than
    # FIELDLINE_GPS_MAX_AGE_S so that offline backlogs are in before their day is thinned.
    # The history is kept for `position_history_retention_days`.
    positions_detail_days: Annotated[int, Field(ge=1)] = 30
    position_history_retention_days: Annotated[int, Field(ge=1)] = 5 * 366

    # GPS filters: each named filter is switched on by being listed.
    gps_filters: str = "invalid,zero,future,too_old,accuracy,duplicate,jump,too_frequent"
    gps_max_accuracy_m: Annotated[float, Field(gt=0)] = 100.0
    gps_max_future_s: Annotated[float, Field(ge=0)] = 300.0
    gps_max_age_s: Annotated[float, Field(gt=0)] = 7 * 86400.0  # offline backlogs are older
    gps_max_speed_vehicle_mps: Annotated[float, Field(gt=0)] = 50.0
    gps_max_speed_foot_mps: Annotated[float, Field(gt=0)] = 7.0
    gps_min_period_s: Annotated[float, Field(ge=0)] = 1.0

    # A crew on shift whose latest fix is older than this shows as `no_signal`.
    crew_stale_after_s: Annotated[float, Field(gt=0)] = 300.0

    # Road routing (gis/routing.py).
    # Share of the speed limit a vehicle makes in town traffic (junctions, lights, parking).
    routing_vehicle_speed_factor: Annotated[float, Field(gt=0, le=1.5)] = 0.7
    # Walking crews, and the straight walk between a point and its road for every crew.
    routing_walk_speed_mps: Annotated[float, Field(gt=0, le=10)] = 1.3
    # A point farther than this from every road is not routed: straight-line estimate instead.
    routing_max_snap_m: Annotated[float, Field(gt=0)] = 2000.0
    # Straight-line estimates: distance times this factor, at the mode's speed.
    routing_detour_factor: Annotated[float, Field(ge=1)] = 1.3
    routing_fallback_vehicle_kph: Annotated[float, Field(gt=0, le=200)] = 30.0

    # Dispatch (server/dispatch/): tasks of these priorities (comma-separated; empty: none)
    # go to the best candidate crew on creation and when an offer times out.
    auto_dispatch_priorities: str = "P1"

    # Service levels promised per priority (server/tasks/): minutes from a task's creation to
    # the crew on site and to the work done, every priority named once ("P1=45,P2=120,...").
    sla_arrival_minutes: str = "P1=45,P2=120,P3=1440,P4=4320"
    sla_completion_minutes: str = "P1=480,P2=1440,P3=4320,P4=10080"
    # An offer to a crew not accepted within this long is taken back and offered again.
    offer_timeout_s: Annotated[float, Field(gt=0, le=86400)] = 300.0
    # How long a message to a crew's inbox topic waits for the broker's PUBACK.
    inbox_timeout_s: Annotated[float, Field(gt=0, le=60)] = 5.0

    # Service levels (server/service_levels/): a `due_soon` warning this long before a
    # promised time, `overdue` past it; overdue ones are escalated to the supervisor contact
    # (an e-mail address or a phone number; empty: escalations only on the live stream).
    sla_due_soon_minutes: Annotated[int, Field(ge=1, le=24 * 60)] = 15
    supervisor_contact: str = ""

    # Customer notices (server/notices/): the backends every notice goes out through.
    notice_backends: str = "recording"
    notice_webhook_url: Annotated[str, Field(validate_default=True)] = ""
    notice_timeout_s: Annotated[float, Field(gt=0, le=120)] = 10.0
    # A failed delivery is tried again after base, 2x base, 4x base ... (at most an hour),
    # and given up (status `failed`) after this many attempts.
    notice_max_attempts: Annotated[int, Field(ge=1, le=50)] = 5
    notice_retry_base_s: Annotated[float, Field(gt=0)] = 30.0
    sms_gateway_url: Annotated[str, Field(validate_default=True)] = ""
    sms_gateway_token: str = ""
    sms_sender: str = "Fieldline"  # an alphanumeric sender name: at most 11 characters
    # The customer is told again when the crew on its way is this close.
    notice_arriving_minutes: Annotated[int, Field(ge=1, le=24 * 60)] = 30
    # Every job gets a follow-up this long after completion (practice: within 3 days).
    notice_follow_up_hours: Annotated[float, Field(ge=0, le=72)] = 24.0
    # The utility's time zone: clock times in notices, the days, weeks and months of KPIs.
    timezone: str = "Europe/Helsinki"

    # Proof of work from the crew's GPS trace (server/verification/).
    # Wait this long after a completion before checking: late fixes and offline backlogs.
    verification_grace_s: Annotated[float, Field(ge=0, le=86400)] = 120.0
    # How far from a fix the crew may have been: its accuracy times the factor, between the
    # floor and the cap (arrival and dwell at a site); pipe coverage on patrols uses its own,
    # tighter cap, so that walking one street does not cover the next.
    verification_radius_floor_m: Annotated[float, Field(gt=0)] = 15.0
    verification_radius_cap_m: Annotated[float, Field(gt=0)] = 50.0
    verification_accuracy_factor: Annotated[float, Field(gt=0, le=10)] = 2.0
    verification_coverage_radius_cap_m: Annotated[float, Field(gt=0)] = 30.0
    # A silence longer than this is a gap; a leap faster than this is a jump (teleport).
    verification_gap_s: Annotated[float, Field(gt=0)] = 60.0
    verification_jump_speed_mps: Annotated[float, Field(gt=0)] = 60.0
    # A patrol's pipes count only where passed no faster than its mode allows.
    verification_patrol_speed_foot_mps: Annotated[float, Field(gt=0)] = 2.5
    verification_patrol_speed_vehicle_mps: Annotated[float, Field(gt=0)] = 14.0
    # Share of each patrolled pipe's length the trace must cover.
    verification_min_coverage: Annotated[float, Field(gt=0, le=1)] = 0.9
    # Least time on site per kind of work, and at each patrol checkpoint ("kind=seconds,...").
    verification_min_dwell_s: str = (
        "repair=900,inspection=300,valve_operation=120,meter_reading=30,checkpoint=30"
    )
    # Jumps tolerated in a trace, and share of the fixes the gateway may have quarantined.
    verification_max_jumps: Annotated[int, Field(ge=0)] = 0
    verification_max_quarantined_share: Annotated[float, Field(ge=0, le=1)] = 0.2

    # SCADA alarms (server/alarms/): rules every deployment starts with, in the syntax of
    # server/alarms/rules.py (`[SCOPE/]TEST:SEVERITY[:OPTION...]`, comma-separated; empty:
    # none), and how often the scheduler judges the readings that came in.
    alarm_rules_default: str = (
        "pressure_kpa<250:high:deadband=20:delay=60s,"
        "pressure_kpa>700:medium:deadband=20:delay=60s,"
        "chlorine_mgl<0.2:high:deadband=0.05:delay=5m"
    )
    alarm_evaluate_s: Annotated[float, Field(ge=1, le=300)] = 5.0

    # Meter anomalies (server/meters/): each meter's latest days (by default the last
    # `recent_days` whole local days) against the `baseline_days` before them; fewer than
    # `min_history_days` known days is "not enough history". Thresholds are robust z-scores
    # (distance from the median in spreads, 1.4826 x MAD, at least the floor) or counts.
    meter_recent_days: Annotated[int, Field(ge=1, le=31)] = 3
    meter_baseline_days: Annotated[int, Field(ge=7, le=180)] = 28
    meter_min_history_days: Annotated[int, Field(ge=3, le=180)] = 7
    meter_spread_floor_m3: Annotated[float, Field(gt=0)] = 0.05
    meter_spread_floor_share: Annotated[float, Field(ge=0, le=1)] = 0.1  # of the median
    meter_spike_z: Annotated[float, Field(gt=0)] = 5.0
    meter_drop_z: Annotated[float, Field(gt=0)] = 3.0
    meter_drop_ratio: Annotated[float, Field(gt=0, lt=1)] = 0.25  # of the baseline median
    meter_drop_days: Annotated[int, Field(ge=1, le=31)] = 2
    # At most this much a day is "zero" (a register's last digit, 1 litre).
    meter_zero_m3: Annotated[float, Field(ge=0)] = 0.001
    # "Used to be steady": spread at most this share of the median, few zero days.
    meter_steady_cv: Annotated[float, Field(gt=0)] = 0.5
    # Night flow: local hours [start, end), judged when readings come at most this far apart,
    # covering at least half of each night; a leak never drops below the rate, night after
    # night for `leak_nights`.
    meter_night_hours: str = "1-5"
    meter_night_max_interval_min: Annotated[int, Field(ge=1, le=240)] = 60
    meter_leak_lph: Annotated[float, Field(gt=0)] = 2.0
    meter_leak_nights: Annotated[int, Field(ge=1, le=31)] = 3
    # A register lower than the one before by more than this is a roll-back.
    meter_rollback_tolerance_m3: Annotated[float, Field(ge=0)] = 0.001
    # A roll-back to at most this is a register restarted: a replaced meter.
    meter_replaced_below_m3: Annotated[float, Field(ge=0)] = 1.0
    # No reading for longer than this; readings further apart are not interpolated across.
    meter_silent_days: Annotated[float, Field(gt=0, le=365)] = 3.0
    meter_max_interval_h: Annotated[float, Field(gt=0, le=24 * 31)] = 48.0

    # Incidents (server/incidents/): a report (SCADA pressure alarm, call, crew's leak or
    # damage report) within this distance of an active incident's reports and this long of
    # them joins it; in-service pipes this close to a report are suggested as the broken one;
    # how often the scheduler takes in new alarms and field reports. Restoration is
    # estimated per pipe diameter band ("UP_TO_MM=HOURS,...,*=HOURS"; empty: the repair
    # task's promised completion).
    incident_group_radius_m: Annotated[float, Field(gt=0, le=10_000)] = 300.0
    incident_group_window_min: Annotated[int, Field(ge=1, le=7 * 24 * 60)] = 180
    incident_pipe_radius_m: Annotated[float, Field(gt=0, le=2000)] = 100.0
    incident_intake_s: Annotated[float, Field(ge=1, le=300)] = 10.0
    incident_restoration_hours: str = "150=4,300=6,*=8"

    # `fieldline scheduler`: Prometheus /metrics on this port (0: none).
    scheduler_metrics_port: Annotated[int, Field(ge=0, le=65535)] = 9109

    log_level: str = "INFO"
    # Role of a request that carries no credentials; empty: none (such a request gets 401).
    anonymous_role: str = ""
    # Signs the web session cookie; empty: one is generated once and kept in the database, so
    # every web process agrees. Secure cookies: the session cookie is sent over HTTPS only.
    secret_key: str = ""
    secure_cookies: bool = False
    session_hours: Annotated[float, Field(gt=0, le=24 * 31)] = 12.0
    # Sign-ins refused for a while after this many failures for one user name in the window.
    login_max_failures: Annotated[int, Field(ge=1, le=1000)] = 5
    login_lockout_minutes: Annotated[float, Field(gt=0, le=24 * 60)] = 15.0
    # API tokens expire: at most this many days after they are made (the default for a new one).
    token_max_days: Annotated[int, Field(ge=1, le=3650)] = 365
    # OGC API - Features reads (GET under /ogc) without credentials; writes never.
    ogc_public_reads: bool = False
    # The API token `fieldline simulate` calls the server with (`fieldline demo` makes one).
    simulator_api_token: str = ""

    @field_validator("database_url", "database_read_url", "test_database_url")
    @classmethod
    def _postgres_only(cls, value: str, info: ValidationInfo) -> str:
        if info.field_name == "database_read_url" and not value:
            return value
        if not value.startswith(("postgresql://", "postgresql+psycopg://")):
            raise ValueError("must be a postgresql:// or postgresql+psycopg:// URL")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str) -> str:
        from fieldline.redis_client import check_url

        return check_url(value)

    @field_validator("mqtt_url")
    @classmethod
    def _mqtt_scheme(cls, value: str) -> str:
        if not value.startswith(("mqtt://", "mqtts://")):
            raise ValueError("must be an mqtt:// or mqtts:// URL")
        return value

    @field_validator("mqtt_ws_url")
    @classmethod
    def _mqtt_ws_scheme(cls, value: str) -> str:
        value = value.strip()
        if value and not value.startswith(("ws://", "wss://")):
            raise ValueError("must be a ws:// or wss:// URL")
        return value

    @field_validator("local_crs")
    @classmethod
    def _known_crs(cls, value: str) -> str:
        from pyproj import CRS
        from pyproj.exceptions import CRSError

        try:
            CRS.from_user_input(value)
        except CRSError as exc:
            raise ValueError(f"unknown coordinate reference system: {exc}") from exc
        return value

    @field_validator("gps_filters")
    @classmethod
    def _gps_filters(cls, value: str) -> str:
        from fieldline.device_gateway.filters import FILTERS

        names = [name.strip() for name in value.split(",") if name.strip()]
        unknown = [name for name in names if name not in FILTERS]
        if unknown:
            raise ValueError(f"unknown filter {unknown[0]!r}; known: " + ", ".join(FILTERS))
        return ",".join(names)

    @field_validator("auto_dispatch_priorities")
    @classmethod
    def _auto_dispatch_priorities(cls, value: str) -> str:
        from fieldline.server.tasks.models import PRIORITIES

        names = [name.strip().upper() for name in value.split(",") if name.strip()]
        unknown = [name for name in names if name not in PRIORITIES]
        if unknown:
            raise ValueError(f"unknown priority {unknown[0]!r}; known: " + ", ".join(PRIORITIES))
        return ",".join(dict.fromkeys(names))

    @field_validator("map_base_tiles_url")
    @classmethod
    def _map_base_tiles_url(cls, value: str) -> str:
        value = value.strip()
        if not value:
            return value
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        missing = [part for part in ("{z}", "{x}", "{y}") if part not in value]
        if missing:
            raise ValueError("must hold {z}, {x} and {y}; missing " + ", ".join(missing))
        return value

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        value = value.upper()
        if value not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
        return value

    @field_validator("anonymous_role")
    @classmethod
    def _role(cls, value: str) -> str:
        from fieldline.roles import ROLES

        if value and value not in ROLES:
            raise ValueError("must be empty (none) or one of " + ", ".join(ROLES))
        return value

    @field_validator("sla_arrival_minutes", "sla_completion_minutes")
    @classmethod
    def _service_levels(cls, value: str, info: ValidationInfo) -> str:
        minutes = priority_minutes(value)
        arrival = info.data.get("sla_arrival_minutes")
        if info.field_name == "sla_completion_minutes" and arrival:
            for priority, arrive in priority_minutes(arrival).items():
                if minutes[priority] < arrive:
                    raise ValueError(
                        f"{priority}: completion ({minutes[priority]} min) comes before "
                        f"arrival ({arrive} min)"
                    )
        return ",".join(f"{priority}={count}" for priority, count in minutes.items())

    @field_validator("alarm_rules_default")
    @classmethod
    def _alarm_rules(cls, value: str) -> str:
        from fieldline.server.alarms.rules import parse_rules

        return ",".join(term for term, _ in parse_rules(value))

    @field_validator("verification_min_dwell_s")
    @classmethod
    def _verification_min_dwell(cls, value: str) -> str:
        return ",".join(f"{name}={seconds}" for name, seconds in dwell_seconds(value).items())

    @field_validator("gps_intervals_s")
    @classmethod
    def _gps_intervals(cls, value: str) -> str:
        return ",".join(f"{name}={seconds:g}" for name, seconds in gps_intervals(value).items())

    @field_validator("positions_detail_days")
    @classmethod
    def _detail_within_retention(cls, value: int, info: ValidationInfo) -> int:
        retention = info.data.get("retention_days")
        if retention is not None and value > retention:
            raise ValueError(f"must not exceed FIELDLINE_RETENTION_DAYS ({retention})")
        return value

    @field_validator("verification_radius_cap_m", "verification_coverage_radius_cap_m")
    @classmethod
    def _verification_caps(cls, value: float, info: ValidationInfo) -> float:
        floor = info.data.get("verification_radius_floor_m")
        if floor is not None and value < floor:
            raise ValueError(f"must not be below FIELDLINE_VERIFICATION_RADIUS_FLOOR_M ({floor})")
        return value

    @field_validator("notice_backends")
    @classmethod
    def _notice_backends(cls, value: str) -> str:
        from fieldline.server.notices.models import CHANNELS

        names = [name.strip() for name in value.split(",") if name.strip()]
        unknown = [name for name in names if name not in CHANNELS]
        if unknown:
            raise ValueError(f"unknown backend {unknown[0]!r}; known: " + ", ".join(CHANNELS))
        return ",".join(dict.fromkeys(names))

    @field_validator("notice_webhook_url", "sms_gateway_url")
    @classmethod
    def _backend_url(cls, value: str, info: ValidationInfo) -> str:
        backend = "webhook" if info.field_name == "notice_webhook_url" else "sms"
        if not value and backend in info.data.get("notice_backends", "").split(","):
            raise ValueError(f"the {backend} backend of FIELDLINE_NOTICE_BACKENDS needs it")
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("sms_sender")
    @classmethod
    def _sms_sender(cls, value: str) -> str:
        if not (1 <= len(value) <= 11 and value.isascii() and value.isalnum()):
            raise ValueError("must be 1 to 11 letters or digits (an SMS sender name)")
        return value

    @field_validator("supervisor_contact")
    @classmethod
    def _supervisor_contact(cls, value: str) -> str:
        from fieldline.server.fields import is_email, phone_number

        value = value.strip()
        if value and not is_email(value) and phone_number(value) is None:
            raise ValueError("must be an e-mail address or a phone number")
        return value

    @field_validator("meter_min_history_days")
    @classmethod
    def _history_fits(cls, value: int, info: ValidationInfo) -> int:
        if value > info.data.get("meter_baseline_days", value):
            raise ValueError("must be at most FIELDLINE_METER_BASELINE_DAYS")
        return value

    @field_validator("meter_night_hours")
    @classmethod
    def _night_hours(cls, value: str) -> str:
        start, _, end = value.partition("-")
        if not (start.isdigit() and end.isdigit() and 0 <= int(start) < int(end) <= 24):
            raise ValueError("must be START-END local hours such as 1-5")
        return value

    @property
    def meter_night(self) -> tuple[int, int]:
        start, _, end = self.meter_night_hours.partition("-")
        return int(start), int(end)

    @field_validator("incident_restoration_hours")
    @classmethod
    def _restoration_hours(cls, value: str) -> str:
        restoration_bands(value)
        return value

    @property
    def incident_restoration_bands(self) -> list[tuple[float | None, float]]:
        """(diameter up to mm, or None for any other, hours) from the narrowest."""
        return restoration_bands(self.incident_restoration_hours)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("must be an IANA time zone such as Europe/Helsinki") from None
        return value

    @property
    def sla_arrival(self) -> dict[str, timedelta]:
        """The promised time to arrive on site, per priority."""
        return {
            p: timedelta(minutes=m) for p, m in priority_minutes(self.sla_arrival_minutes).items()
        }

    @property
    def sla_completion(self) -> dict[str, timedelta]:
        """The promised time to complete the work, per priority."""
        return {
            p: timedelta(minutes=m)
            for p, m in priority_minutes(self.sla_completion_minutes).items()
        }

    @property
    def verification_min_dwell(self) -> dict[str, int]:
        """Least seconds on site per kind of work, and at a patrol's checkpoint."""
        return dwell_seconds(self.verification_min_dwell_s)

    @property
    def gps_interval_s(self) -> dict[str, float]:
        """Seconds between a handheld's fixes: every task kind, `idle` and `default`."""
        return gps_intervals(self.gps_intervals_s)

    @property
    def alarm_default_rules(self) -> list[tuple[str, Any]]:
        """FIELDLINE_ALARM_RULES_DEFAULT as (term, RuleSpec) pairs."""
        from fieldline.server.alarms.rules import parse_rules

        return parse_rules(self.alarm_rules_default)

    @property
    def notice_backend_names(self) -> tuple[str, ...]:
        return tuple(name for name in self.notice_backends.split(",") if name)

    @property
    def auto_dispatch_priority_names(self) -> tuple[str, ...]:
        return tuple(name for name in self.auto_dispatch_priorities.split(",") if name)

    @property
    def gps_filter_names(self) -> tuple[str, ...]:
        return tuple(name for name in self.gps_filters.split(",") if name)

    @property
    def sqlalchemy_url(self) -> str:
        """The database URL with the psycopg 3 driver named, as SQLAlchemy needs it."""
        return to_sqlalchemy_url(self.database_url)


def restoration_bands(value: str) -> list[tuple[float | None, float]]:
    """ "150=4,300=6,*=8" as [(150, 4), (300, 6), (None, 8)]: hours to restore water per
    diameter band, narrowest first, `*` for any diameter beyond them or unknown."""
    bands: list[tuple[float | None, float]] = []
    for term in filter(None, (t.strip() for t in value.split(","))):
        size, _, hours = term.partition("=")
        try:
            hours_value = float(hours)
            limit = None if size.strip() == "*" else float(size)
        except ValueError:
            raise ValueError(f"{term!r} is not UP_TO_MM=HOURS or *=HOURS") from None
        if not (0 < hours_value <= 24 * 30) or (limit is not None and limit <= 0):
            raise ValueError(f"{term!r}: hours from 0 to 720, diameters above 0")
        bands.append((limit, hours_value))
    sized = [limit for limit, _ in bands if limit is not None]
    if sized != sorted(set(sized)) or sum(limit is None for limit, _ in bands) > 1:
        raise ValueError("bands go from the narrowest up, each once, with at most one *")
    return sorted(bands, key=lambda band: (band[0] is None, band[0] or 0))


def priority_minutes(value: str) -> dict[str, int]:
    """ "P1=45,P2=120,..." as {"P1": 45, ...} in priority order; every priority exactly once,
    each a whole number of minutes above 0. ValueError says what is wrong."""
    from fieldline.server.tasks.models import PRIORITIES

    found: dict[str, int] = {}
    for part in (part.strip() for part in value.split(",") if part.strip()):
        priority, sep, minutes = (piece.strip() for piece in part.partition("="))
        if not sep or priority not in PRIORITIES:
            raise ValueError(f"{part!r} is not PRIORITY=MINUTES with a priority of {PRIORITIES}")
        if priority in found:
            raise ValueError(f"{priority} is given twice")
        if not minutes.isdigit() or int(minutes) < 1:
            raise ValueError(f"{priority}: {minutes!r} is not a whole number of minutes above 0")
        found[priority] = int(minutes)
    missing = [priority for priority in PRIORITIES if priority not in found]
    if missing:
        raise ValueError("missing " + ", ".join(missing))
    return {priority: found[priority] for priority in PRIORITIES}


# What FIELDLINE_VERIFICATION_MIN_DWELL_S names: the kinds of work done at one place, and a
# patrol's checkpoints.
DWELL_NAMES = ("repair", "inspection", "valve_operation", "meter_reading", "checkpoint")


def dwell_seconds(value: str) -> dict[str, int]:
    """ "repair=900,inspection=300,..." as {"repair": 900, ...} in DWELL_NAMES order; every
    name exactly once, each a whole number of seconds (0: no least time). ValueError says
    what is wrong."""
    found: dict[str, int] = {}
    for part in (part.strip() for part in value.split(",") if part.strip()):
        name, sep, seconds = (piece.strip() for piece in part.partition("="))
        if not sep or name not in DWELL_NAMES:
            raise ValueError(f"{part!r} is not NAME=SECONDS with a name of {DWELL_NAMES}")
        if name in found:
            raise ValueError(f"{name} is given twice")
        if not seconds.isdigit():
            raise ValueError(f"{name}: {seconds!r} is not a whole number of seconds")
        found[name] = int(seconds)
    missing = [name for name in DWELL_NAMES if name not in found]
    if missing:
        raise ValueError("missing " + ", ".join(missing))
    return {name: found[name] for name in DWELL_NAMES}


def gps_intervals(value: str) -> dict[str, float]:
    """ "patrol=5,default=15,idle=60" as seconds for every task kind (in the tasks' order),
    then `idle` and `default`; `default` is required, `idle` defaults to it. ValueError says
    what is wrong."""
    from fieldline.server.tasks.models import TASK_KINDS

    names = (*TASK_KINDS, "idle", "default")
    found: dict[str, float] = {}
    for part in (part.strip() for part in value.split(",") if part.strip()):
        name, sep, seconds = (piece.strip() for piece in part.partition("="))
        if not sep or name not in names:
            raise ValueError(f"{part!r} is not NAME=SECONDS with a name of {names}")
        if name in found:
            raise ValueError(f"{name} is given twice")
        try:
            number = float(seconds)
        except ValueError:
            number = math.nan
        if not (1 <= number <= 3600):
            raise ValueError(f"{name}: {seconds!r} is not a number of seconds from 1 to 3600")
        found[name] = number
    if "default" not in found:
        raise ValueError("missing default")
    return {name: found.get(name, found["default"]) for name in names}


def to_sqlalchemy_url(url: str) -> str:
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


def load_settings(**overrides: object) -> Settings:
    """Read the environment; a bad value raises SettingsError naming the variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"])
            problems.append(f"FIELDLINE_{field.upper()}: {error['msg']}")
        raise SettingsError("invalid settings:\n  " + "\n  ".join(problems)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
