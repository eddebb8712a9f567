from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from fieldline import broker_security, local_services
from fieldline.local_services import ServicesError, services_up
from fieldline.settings import Settings


def test_services_up_is_idempotent_and_keeps_data(settings: Settings) -> None:
    lines: list[str] = []
    services_up(settings, lines.append)
    services_up(settings, lines.append)
    assert not [line for line in lines if "installing" in line or "created" in line]
    assert sum("postgresql: running" in line for line in lines) == 2
    url = settings.sqlalchemy_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as conn:
        extensions = {row[0] for row in conn.execute("SELECT extname FROM pg_extension")}
    assert {"postgis", "pgrouting"} <= extensions


def test_without_root_it_names_the_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local_services.os, "geteuid", lambda: 1000)
    with pytest.raises(
        ServicesError, match="apt-get install -y --no-install-recommends postgresql-15-postgis-3"
    ):
        local_services.install_packages(["postgresql-15-postgis-3"])


def test_a_stopped_local_server_without_root_names_the_start_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(local_services.os, "geteuid", lambda: 1000)
    server = local_services.Server("redis", "127.0.0.1", 1, ["redis-server", "--port", "1"])
    with pytest.raises(ServicesError, match="sudo redis-server --port 1"):
        local_services.ensure_running(server, lambda line: None)


def test_a_remote_server_is_never_started(monkeypatch: pytest.MonkeyPatch) -> None:
    # No connection is attempted: 192.0.2.0/24 is a documentation range.
    monkeypatch.setattr(local_services, "answers", lambda host, port, timeout_s=1.0: False)
    started: list[object] = []
    monkeypatch.setattr(local_services.subprocess, "run", lambda *a, **k: started.append(a))
    server = local_services.Server("postgresql", "192.0.2.1", 5432, ["pg_ctlcluster"])
    with pytest.raises(ServicesError, match="does not answer"):
        local_services.ensure_running(server, lambda line: None)
    assert started == []


def test_a_sentinel_url_is_checked_by_its_first_sentinel_and_never_started(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = Settings(redis_url="redis+sentinel://127.0.0.1:1,127.0.0.1:2/fieldline")
    redis = next(s for s in local_services.servers(settings) if s.name.startswith("redis"))
    assert (redis.name, redis.host, redis.port) == ("redis sentinel", "127.0.0.1", 1)
    started: list[object] = []
    monkeypatch.setattr(local_services.subprocess, "run", lambda *a, **k: started.append(a))
    with pytest.raises(ServicesError, match=r"redis sentinel at 127\.0\.0\.1:1 does not answer"):
        local_services.ensure_running(redis, lambda line: None)
    assert started == []


def test_broker_block_is_added_once_and_replaced_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(local_services.subprocess, "run", lambda *a, **k: None)
    conf = tmp_path / "mosquitto.conf"
    conf.write_text("listener 1883 127.0.0.1\nallow_anonymous true\n")
    assert local_services.configure_broker(conf, lambda line: None)
    assert not local_services.configure_broker(conf, lambda line: None)
    text = conf.read_text()
    assert text.startswith("listener 1883 127.0.0.1\nallow_anonymous true\n")
    assert text.count("max_queued_messages") == 1
    monkeypatch.setitem(local_services.BROKER_SETTINGS, "max_queued_messages", "5")
    assert local_services.configure_broker(conf, lambda line: None)
    assert conf.read_text().count("max_queued_messages 5") == 1
    assert conf.read_text().count(local_services.BLOCK_START) == 1


def test_the_machines_broker_keeps_a_large_queue_and_a_websocket_listener(
    settings: Settings,
) -> None:
    # After `services up`, the local broker's configuration carries the block, with the
    # device-facing listeners, and access rules per listener.
    text = local_services.MOSQUITTO_CONF.read_text()
    bind = local_services.mqtt_bind_address(text, 1883)
    assert bind is not None
    listeners = local_services.device_listeners(settings)
    assert local_services.broker_block(settings.mqtt_ws_port, bind, listeners) in text
    assert text.startswith(broker_security.head_block())


@pytest.mark.parametrize(
    ("mqtt_listener", "ws_lines"),
    [
        ("listener 1883 127.0.0.1", ["listener 9001 127.0.0.1", "socket_domain ipv4"]),
        ("listener 1883 ::1", ["listener 9001 ::1", "socket_domain ipv6"]),
        ("listener 1883", ["listener 9001"]),
    ],
)
def test_the_websocket_listener_is_bound_like_the_mqtt_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mqtt_listener: str, ws_lines: list[str]
) -> None:
    hups: list[object] = []
    monkeypatch.setattr(local_services.subprocess, "run", lambda *a, **k: hups.append(a))
    conf = tmp_path / "mosquitto.conf"
    original = f"pid_file /run/m.pid\n{mqtt_listener}\nallow_anonymous true\n"
    conf.write_text(original)
    assert local_services.configure_broker(conf, lambda line: None, ws_port=9001)
    assert not local_services.configure_broker(conf, lambda line: None, ws_port=9001)
    text = conf.read_text()
    assert text.startswith(original)  # the MQTT listener and anonymous access stay as they are
    block = text[text.index(local_services.BLOCK_START) :].splitlines()
    # The listener comes last in the block: options after it are that listener's.
    assert block[-2 - len(ws_lines) : -1] == [*ws_lines, "protocol websockets"]
    assert text.count("listener 9001") == 1
    assert len(hups) == 1


def test_an_open_websocket_port_means_no_restart(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        local_services, "restart_broker", lambda *a, **k: pytest.fail("restarted the broker")
    )
    lines: list[str] = []
    local_services.ensure_websockets(settings, report=lines.append)
    assert lines == [f"mosquitto: WebSocket listener on 127.0.0.1:{settings.mqtt_ws_port}"]


def test_a_closed_websocket_port_without_root_names_the_restart(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(local_services.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(local_services, "answers", lambda host, port, timeout_s=1.0: False)
    conf = tmp_path / "mosquitto.conf"
    conf.write_text("pid_file /tmp/m.pid\nlistener 1883 127.0.0.1\n")
    with pytest.raises(ServicesError, match=r"kill \$\(cat /tmp/m.pid\)"):
        local_services.ensure_websockets(settings, conf, lambda line: None)
