"""`fieldline services up`: make the local PostgreSQL+PostGIS, Redis and Mosquitto ready.

Idempotent: it installs only missing Debian packages, starts only servers that do not answer,
creates only missing databases and extensions, and never drops or rewrites existing data.
Where it may not act (not root, not Debian, a remote server) it stops and names the commands.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

from fieldline import broker_security
from fieldline.broker_security import DeviceListeners
from fieldline.redis_client import SENTINEL_SCHEME, sentinel_target
from fieldline.settings import Settings

DEBIAN_PACKAGES = (
    "postgresql-15-postgis-3",
    "postgresql-15-pgrouting",
    "redis-server",
    "mosquitto",
    "mosquitto-clients",
    "gdal-bin",  # ogrinfo/ogr2ogr: how GIS users read Fieldline, and how tests check it
    # The browser tests of the map drive Debian's Chromium headless (Playwright never downloads
    # one); without recommended packages it comes with no font, so one is named.
    "chromium",
    "fonts-dejavu-core",
)
EXTENSIONS = ("postgis", "pgrouting")
MOSQUITTO_CONF = Path("/etc/mosquitto/mosquitto.conf")
# Mosquitto drops QoS 1 messages beyond 1,000 queued per client by default, silently; a
# gateway catching up after a restart or a burst of offline backlogs must not lose them.
BROKER_SETTINGS = {"max_queued_messages": "1000000"}
BLOCK_START = "# BEGIN fieldline (written by `fieldline services up`)"
BLOCK_END = "# END fieldline"
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", ""}


class ServicesError(Exception):
    """A step could not be done here; the message names what to run instead."""


@dataclass(frozen=True)
class Server:
    name: str
    host: str
    port: int
    start_command: Sequence[str]


def _report(line: str) -> None:
    print(line, flush=True)


def missing_packages(packages: Sequence[str] = DEBIAN_PACKAGES) -> list[str]:
    if shutil.which("dpkg-query") is None:
        return list(packages)
    missing = []
    for package in packages:
        result = subprocess.run(
            ["dpkg-query", "-W", "-f=${Status}", package],
            capture_output=True,
            text=True,
            check=False,
        )
        if "install ok installed" not in result.stdout:
            missing.append(package)
    return missing


def install_packages(packages: Sequence[str], report: Callable[[str], None] = _report) -> None:
    if not packages:
        return
    command = "apt-get update && apt-get install -y --no-install-recommends " + " ".join(packages)
    if not Path("/etc/debian_version").exists():
        raise ServicesError(
            "missing packages and this is not Debian; install the equivalents of: "
            + ", ".join(packages)
        )
    if os.geteuid() != 0:
        raise ServicesError(f"missing Debian packages; run as root:\n  sudo sh -c '{command}'")
    report("installing " + " ".join(packages))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for step in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages],
    ):
        # apt is chatty; its output matters only when it fails.
        result = subprocess.run(step, capture_output=True, text=True, env=env, check=False)
        if result.returncode != 0:
            raise ServicesError(f"{' '.join(step)} failed:\n{result.stdout}{result.stderr}")


def answers(host: str, port: int, timeout_s: float = 1.0) -> bool:
    try:
        with socket.create_connection((host or "127.0.0.1", port), timeout=timeout_s):
            return True
    except OSError:
        return False


def _postgres_start_command() -> list[str]:
    versions = sorted(p.name for p in Path("/etc/postgresql").glob("*") if p.is_dir())
    version = versions[-1] if versions else "15"
    return ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"]


def _redis_server(url: str) -> Server:
    if url.startswith(f"{SENTINEL_SCHEME}://"):
        # Sentinels and the master they keep are run by their operators, never started here:
        # only checked, by the first sentinel named.
        host, port = sentinel_target(url).sentinels[0]
        return Server("redis sentinel", host, port, ())
    redis = urlsplit(url)
    redis_port = redis.port or 6379
    return Server(
        "redis",
        redis.hostname or "",
        redis_port,
        [
            "redis-server",
            "--daemonize",
            "yes",
            "--bind",
            "127.0.0.1",
            "-::1",
            "--port",
            str(redis_port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            "/var/lib/redis",
            "--logfile",
            "/var/log/redis/fieldline.log",
        ],
    )


def servers(settings: Settings) -> list[Server]:
    db = urlsplit(settings.sqlalchemy_url)
    mqtt = urlsplit(settings.mqtt_url)
    return [
        Server("postgresql", db.hostname or "", db.port or 5432, _postgres_start_command()),
        _redis_server(settings.redis_url),
        Server(
            "mosquitto",
            mqtt.hostname or "",
            mqtt.port or 1883,
            ["mosquitto", "-d", "-c", "/etc/mosquitto/mosquitto.conf"],
        ),
    ]


def ensure_running(server: Server, report: Callable[[str], None] = _report) -> None:
    if answers(server.host, server.port):
        report(f"{server.name}: running on {server.host or 'localhost'}:{server.port}")
        return
    if server.host not in LOCAL_HOSTS or not server.start_command:
        raise ServicesError(f"{server.name} at {server.host}:{server.port} does not answer")
    if os.geteuid() != 0:
        command = " ".join(server.start_command)
        raise ServicesError(f"{server.name} is not running; start it as root:\n  sudo {command}")
    report(f"{server.name}: starting")
    subprocess.run(list(server.start_command), check=True)
    deadline = time.monotonic() + 30
    while not answers(server.host, server.port):
        if time.monotonic() > deadline:
            raise ServicesError(f"{server.name} did not start within 30 s")
        time.sleep(0.2)
    report(f"{server.name}: running on {server.host or 'localhost'}:{server.port}")


def mqtt_bind_address(text: str, port: int) -> str | None:
    """The address of the configuration's own `listener PORT [ADDRESS]` line ("" when it
    listens everywhere); None when it has no listener on that port."""
    outside_block = re.sub(
        re.escape(BLOCK_START) + ".*?" + re.escape(BLOCK_END), "", text, flags=re.DOTALL
    )
    match = re.search(rf"^\s*listener\s+{port}(?:\s+(\S+))?\s*$", outside_block, re.MULTILINE)
    if match is None:
        return None
    return match.group(1) or ""


def websockets_listener(ws_port: int, bind: str) -> list[str]:
    """The lines of the handheld app's WebSocket listener, bound like the MQTT one.

    Mosquitto 2.0 hands a WebSocket listener's address to libwebsockets, which listens on
    every interface unless the socket domain is named too (checked: `ss -ltn`)."""
    lines = [f"listener {ws_port} {bind}".rstrip(), "protocol websockets"]
    if ":" in bind:
        lines.insert(1, "socket_domain ipv6")
    elif bind and bind.replace(".", "").isdigit():
        lines.insert(1, "socket_domain ipv4")
    return lines


def broker_block(
    ws_port: int | None = None, bind: str = "", listeners: DeviceListeners | None = None
) -> str:
    lines = [f"{name} {value}" for name, value in BROKER_SETTINGS.items()]
    # Last in the block: the options after a `listener` line belong to that listener.
    if listeners is not None:
        lines += broker_security.listener_lines(listeners, bind)
    elif ws_port is not None:
        lines += websockets_listener(ws_port, bind)
    return "\n".join([BLOCK_START, *lines, BLOCK_END]) + "\n"


def configure_broker(
    conf: Path = MOSQUITTO_CONF,
    report: Callable[[str], None] = _report,
    ws_port: int | None = None,
    mqtt_port: int = 1883,
    listeners: DeviceListeners | None = None,
) -> bool:
    """Put Fieldline's broker settings, and the WebSocket listener on `ws_port` bound like
    the `mqtt_port` one, into the local Mosquitto configuration (a marked block, replaced
    whole on later runs) and have a running broker reload it. True if it changed.

    With `listeners`, the device-facing listeners (TLS and WebSocket, each requiring a
    device's login) replace the anonymous WebSocket one, and a head block makes access
    rules per listener, so that the `mqtt_port` listener stays as it is."""
    if not conf.exists():
        report(f"mosquitto: no {conf}; set {', '.join(BROKER_SETTINGS)} in its configuration")
        return False
    text = conf.read_text()
    bind = mqtt_bind_address(text, mqtt_port) or ""
    block = broker_block(ws_port, bind, listeners)
    if BLOCK_START in text:
        before, _, rest = text.partition(BLOCK_START)
        _, _, after = rest.partition(BLOCK_END + "\n")
        new_text = before + block + after
    else:
        new_text = text.rstrip("\n") + "\n\n" + block
    if listeners is not None:
        new_text = broker_security.with_head(new_text)
    if new_text == text:
        return False
    if os.geteuid() != 0:
        head = broker_security.head_block() if listeners is not None else ""
        raise ServicesError(
            f"add these lines to {conf} as root, then reload Mosquitto:\n{head}{block}"
        )
    conf.write_text(new_text)
    # These settings are reloaded on SIGHUP: no restart, no dropped connections. A new
    # listener is not (the broker logs so and keeps its old configuration; ensure_websockets
    # restarts it then).
    subprocess.run(["pkill", "-HUP", "-x", "mosquitto"], check=False)
    report(f"mosquitto: configured ({', '.join(f'{k} {v}' for k, v in BROKER_SETTINGS.items())})")
    return True


def _pid_file(conf: Path) -> Path:
    match = re.search(r"^\s*pid_file\s+(\S+)", conf.read_text(), re.MULTILINE)
    return Path(match.group(1) if match else "/run/mosquitto/mosquitto.pid")


def _gone(pid: int) -> bool:
    # The daemonized broker is not our child; a zombie left for init to reap counts as gone.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state in {"Z", "X"}


def restart_broker(server: Server, conf: Path, report: Callable[[str], None] = _report) -> None:
    """Stop the broker named by its pid file and start it again: listeners are read only at
    start. Clients reconnect; persistent sessions and retained messages are kept on disk."""
    pid_file = _pid_file(conf)
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        raise ServicesError(f"mosquitto: no pid in {pid_file}; restart it by hand") from None
    report(f"mosquitto: restarting (pid {pid}) for its new listeners")
    with contextlib.suppress(ProcessLookupError):  # gone already: start it
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while not _gone(pid) or answers(server.host, server.port):
        if time.monotonic() > deadline:
            raise ServicesError(f"mosquitto (pid {pid}) did not stop within 30 s")
        time.sleep(0.1)
    ensure_running(server, report)


def ensure_websockets(
    settings: Settings,
    conf: Path = MOSQUITTO_CONF,
    report: Callable[[str], None] = _report,
    tls: bool = False,
) -> None:
    """Restart the local broker when its WebSocket listener (and with `tls` its TLS one) is
    configured but not open yet; a broker already listening there is left alone."""
    broker = next(server for server in servers(settings) if server.name == "mosquitto")
    port = settings.mqtt_ws_port
    bind = mqtt_bind_address(conf.read_text(), broker.port) if conf.exists() else None
    host = bind or broker.host or "127.0.0.1"
    tls_open = not tls or answers(host, settings.mqtt_tls_port)
    if answers(host, port) and tls_open:
        report(f"mosquitto: WebSocket listener on {host}:{port}")
        if tls:
            report(f"mosquitto: TLS listener on {host}:{settings.mqtt_tls_port}")
        return
    if broker.host not in LOCAL_HOSTS or not conf.exists():
        raise ServicesError(
            f"the broker has no WebSocket listener on port {port}; add to its configuration:\n"
            + "\n".join(websockets_listener(port, bind or ""))
        )
    if os.geteuid() != 0:
        raise ServicesError(
            f"mosquitto must be restarted for its WebSocket listener on port {port}; as root:\n"
            f"  sudo kill $(cat {_pid_file(conf)}) && sudo {' '.join(broker.start_command)}"
        )
    restart_broker(broker, conf, report)
    deadline = time.monotonic() + 10
    while not answers(host, port):
        if time.monotonic() > deadline:
            raise ServicesError(
                f"mosquitto runs but does not listen on {host}:{port}: its build may lack "
                "WebSocket support (see /var/log/mosquitto/mosquitto.log)"
            )
        time.sleep(0.1)
    report(f"mosquitto: WebSocket listener on {host}:{port}")
    if tls:
        while not answers(host, settings.mqtt_tls_port):
            if time.monotonic() > deadline:
                raise ServicesError(f"mosquitto does not listen on {host}:{settings.mqtt_tls_port}")
            time.sleep(0.1)
        report(f"mosquitto: TLS listener on {host}:{settings.mqtt_tls_port}")


def device_listeners(settings: Settings) -> DeviceListeners:
    return DeviceListeners(
        tls_port=settings.mqtt_tls_port,
        ws_port=settings.mqtt_ws_port,
        folder=Path(settings.mqtt_ca_file).parent,
    )


def secure_device_listeners(
    settings: Settings, conf: Path = MOSQUITTO_CONF, report: Callable[[str], None] = _report
) -> DeviceListeners | None:
    """Make the CA, the server certificate and the dynamic security state the device-facing
    listeners need (once); None when the broker is not this machine's."""
    mqtt_host = urlsplit(settings.mqtt_url).hostname or ""
    if mqtt_host not in LOCAL_HOSTS or not conf.exists():
        return None
    listeners = device_listeners(settings)
    password_file = Path(settings.mqtt_admin_password_file)
    ready = listeners.ca_file.exists() and listeners.state_file.exists() and password_file.exists()
    if not ready and os.geteuid() != 0:
        raise ServicesError(
            f"the broker's CA ({listeners.ca_file}) and device logins are made as root: "
            "sudo fieldline services up"
        )
    broker_security.ensure_certificates(listeners, report)
    broker_security.ensure_state(listeners, settings.mqtt_admin_user, password_file, report)
    report(f"mosquitto: devices trust the CA {listeners.ca_file}")
    return listeners


def libpq_url(url: str, database: str | None = None) -> str:
    parts = urlsplit(url.replace("postgresql+psycopg://", "postgresql://", 1))
    if database is not None:
        parts = parts._replace(path="/" + database)
    return parts.geturl()


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def ensure_database(url: str, report: Callable[[str], None] = _report) -> None:
    """Create the database and its extensions when missing; existing ones are left alone."""
    name = database_name(url)
    with psycopg.connect(libpq_url(url, "postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            report(f"database {name}: created")
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        for extension in EXTENSIONS:
            conn.execute(
                sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(sql.Identifier(extension))
            )
        versions = conn.execute(
            "SELECT extname, extversion FROM pg_extension WHERE extname = ANY(%s) ORDER BY 1",
            (list(EXTENSIONS),),
        ).fetchall()
    report(f"database {name}: ready (" + ", ".join(f"{n} {v}" for n, v in versions) + ")")


def services_up(settings: Settings, report: Callable[[str], None] = _report) -> None:
    install_packages(missing_packages(), report)
    mqtt_port = urlsplit(settings.mqtt_url).port or 1883
    listeners = secure_device_listeners(settings, report=report)
    configure_broker(
        report=report, ws_port=settings.mqtt_ws_port, mqtt_port=mqtt_port, listeners=listeners
    )
    for server in servers(settings):
        ensure_running(server, report)
    ensure_websockets(settings, report=report, tls=listeners is not None)
    for url in (settings.sqlalchemy_url, settings.test_database_url):
        ensure_database(url, report)
