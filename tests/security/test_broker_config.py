"""The broker configuration and access rules Fieldline generates (no broker needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fieldline import broker_security, local_services
from fieldline.broker_security import DeviceListeners
from fieldline.server.mqtt_access import acl


def _listeners(tmp_path: Path) -> DeviceListeners:
    return DeviceListeners(8883, 9001, folder=tmp_path / "sec", state_file=tmp_path / "ds.json")


def test_device_listeners_require_a_login_and_only_the_last_loads_the_state(
    tmp_path: Path,
) -> None:
    listeners = _listeners(tmp_path)
    lines = broker_security.listener_lines(listeners, "127.0.0.1")
    tls, ws = (
        lines[: lines.index("listener 9001 127.0.0.1")],
        lines[lines.index("listener 9001 127.0.0.1") :],
    )
    assert tls[0] == "listener 8883 127.0.0.1"
    assert f"cafile {listeners.ca_file}" in tls and f"keyfile {listeners.key_file}" in tls
    assert "protocol websockets" in ws and "socket_domain ipv4" in ws
    for listener in (tls, ws):
        assert listener[-1] == "allow_anonymous false"
        assert f"plugin {listeners.plugin}" in listener
    assert f"plugin_opt_config_file {listeners.empty_state_file}" in tls
    assert f"plugin_opt_config_file {listeners.state_file}" in ws
    assert sum(str(listeners.state_file) in line for line in lines) == 1


def test_the_head_goes_first_once_and_the_loopback_listener_stays_anonymous(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hups: list[object] = []
    monkeypatch.setattr(local_services.subprocess, "run", lambda *a, **k: hups.append(a))
    conf = tmp_path / "mosquitto.conf"
    original = "pid_file /run/m.pid\nlistener 1883 127.0.0.1\nallow_anonymous true\n"
    conf.write_text(original)
    listeners = _listeners(tmp_path)
    assert local_services.configure_broker(
        conf, lambda line: None, ws_port=9001, listeners=listeners
    )
    assert not local_services.configure_broker(
        conf, lambda line: None, ws_port=9001, listeners=listeners
    )
    text = conf.read_text()
    assert text.startswith(broker_security.head_block() + original)
    assert text.count("per_listener_settings true") == 1
    assert text.count("listener 9001") == 1 and text.count("listener 8883") == 1
    assert len(hups) == 1


def test_a_crews_handheld_may_use_only_its_crews_topics() -> None:
    grants = {(g.acltype, g.topic) for g in acl.device_grants("own", "C-000001", "tablet-1")}
    assert grants == {
        (acl.SEND, "fieldline/crews/C-000001/position"),
        (acl.SEND, "fieldline/crews/C-000001/tasks/+/status"),
        (acl.SEND, "fieldline/crews/C-000001/reports"),
        (acl.SUBSCRIBE, "fieldline/crews/C-000001/inbox"),
        (acl.RECEIVE, "fieldline/crews/C-000001/inbox"),
    }
    owntracks = acl.device_grants("owntracks", "C-000001", "anna/phone")
    assert [(g.acltype, g.topic) for g in owntracks] == [(acl.SEND, "owntracks/anna/phone")]


def test_an_edge_node_publishes_under_its_own_name_and_reads_its_own_commands() -> None:
    grants = {(g.acltype, g.topic) for g in acl.edge_grants("plant", "edge-1")}
    sends = {topic for kind, topic in grants if kind == acl.SEND}
    assert sends == {
        "spBv1.0/plant/NBIRTH/edge-1",
        "spBv1.0/plant/NDATA/edge-1",
        "spBv1.0/plant/NDEATH/edge-1",
        "spBv1.0/plant/DBIRTH/edge-1/+",
        "spBv1.0/plant/DDATA/edge-1/+",
        "spBv1.0/plant/DDEATH/edge-1/+",
    }
    reads = {topic for kind, topic in grants if kind == acl.SUBSCRIBE}
    assert "spBv1.0/plant/NCMD/edge-1" in reads and "spBv1.0/plant/DCMD/edge-1/+" in reads
    assert not any("edge-2" in topic or "#" in topic for _, topic in grants)
    assert acl.station_grants("PS-KAMPPI-1")[0].topic == "fieldline/scada/PS-KAMPPI-1"


def test_a_login_is_replaced_whole_and_nothing_is_allowed_by_default() -> None:
    commands = acl.create_commands("tablet-1", "secret", acl.crew_device_grants("C-000001"))
    assert [c["command"] for c in commands] == [
        "deleteClient",
        "deleteRole",
        "createRole",
        "createClient",
    ]
    assert commands[-1]["roles"] == [{"rolename": acl.role_name("tablet-1")}]
    assert not any(acl.DEFAULT_ACCESS[name] for name in (acl.SEND, acl.RECEIVE, "subscribe"))
