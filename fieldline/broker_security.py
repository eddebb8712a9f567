"""The broker's device-facing listeners: MQTT over TLS and MQTT over WebSocket, both with a
login per device checked by Mosquitto's dynamic security plugin, next to the trusted loopback
listener Fieldline's own processes use (the gateway, the server's inbox, the simulator).

`fieldline services up` writes these lines into the broker's configuration and makes, once,
what they point at: a self-signed CA and the server's certificate, and the plugin's state file
with Fieldline's admin login and a default of "nothing allowed". Logins are added later through
the plugin's API (fieldline.server.mqtt_access), which needs no broker restart.

Mosquitto 2.0.11 keeps the plugin's state in one place for the whole process, but loads it once
per listener that names the plugin: two listeners loading the same file hold every login twice,
and deleting one copy (revoking a device) leaves the other working. So only the last device
listener reads the real state file, which is then also the one the plugin saves to; the others
load an empty one. The plugin answers on both listeners from the one state.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fieldline.server.mqtt_access.acl import DEFAULT_ACCESS

DYNSEC_PLUGIN = Path("/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so")
SECURITY_DIR = Path("/etc/mosquitto/fieldline")
# The plugin saves its state as the broker's user: a folder it owns.
STATE_FILE = Path("/var/lib/mosquitto/fieldline-dynsec.json")
CERT_DAYS = 3650
HEAD_START = "# BEGIN fieldline head (written by `fieldline services up`)"
HEAD_END = "# END fieldline head"
# Authentication and access rules per listener: the loopback one stays anonymous while the
# device-facing ones require a login. It must come before any listener.
HEAD_LINES = ("per_listener_settings true",)


@dataclass(frozen=True)
class DeviceListeners:
    tls_port: int
    ws_port: int
    folder: Path = SECURITY_DIR
    state_file: Path = STATE_FILE
    plugin: Path = DYNSEC_PLUGIN

    @property
    def ca_file(self) -> Path:
        return self.folder / "ca.crt"

    @property
    def cert_file(self) -> Path:
        return self.folder / "server.crt"

    @property
    def key_file(self) -> Path:
        return self.folder / "server.key"

    @property
    def empty_state_file(self) -> Path:
        return self.folder / "dynsec-empty.json"


def _plugin_lines(state_file: Path, plugin: Path) -> list[str]:
    return [f"plugin {plugin}", f"plugin_opt_config_file {state_file}", "allow_anonymous false"]


def _domain(bind: str) -> list[str]:
    # Mosquitto 2.0 hands a WebSocket listener's address to libwebsockets, which listens on
    # every interface unless the socket domain is named too (checked: `ss -ltn`).
    if ":" in bind:
        return ["socket_domain ipv6"]
    if bind and bind.replace(".", "").isdigit():
        return ["socket_domain ipv4"]
    return []


def listener_lines(listeners: DeviceListeners, bind: str) -> list[str]:
    """The TLS listener, then the WebSocket one (the last reads the real state file)."""
    tls = [
        f"listener {listeners.tls_port} {bind}".rstrip(),
        f"cafile {listeners.ca_file}",
        f"certfile {listeners.cert_file}",
        f"keyfile {listeners.key_file}",
        *_plugin_lines(listeners.empty_state_file, listeners.plugin),
    ]
    ws = [
        f"listener {listeners.ws_port} {bind}".rstrip(),
        *_domain(bind),
        "protocol websockets",
        *_plugin_lines(listeners.state_file, listeners.plugin),
    ]
    return tls + ws


def head_block() -> str:
    return "\n".join([HEAD_START, *HEAD_LINES, HEAD_END]) + "\n"


def with_head(text: str) -> str:
    """The configuration with Fieldline's head block first (replaced whole when present)."""
    if HEAD_START in text:
        before, _, rest = text.partition(HEAD_START)
        _, _, after = rest.partition(HEAD_END + "\n")
        text = before + after
    return head_block() + text


def _openssl(*args: str) -> None:
    result = subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {result.stderr.strip()}")


def _give_to_broker(path: Path, mode: int) -> None:
    """Readable (and for the state, writable) by the broker's user when it exists."""
    os.chmod(path, mode)
    if shutil.which("mosquitto") and os.geteuid() == 0:
        try:
            shutil.chown(path, group="mosquitto")
            if path.suffix == ".json":
                shutil.chown(path, user="mosquitto")
        except LookupError:  # no such user here: the broker runs as root
            pass


def ensure_certificates(
    listeners: DeviceListeners, report: Callable[[str], None], hosts: tuple[str, ...] = ()
) -> bool:
    """A CA and a server certificate signed by it for localhost, 127.0.0.1, ::1, this
    machine's name and `hosts`; made once and then kept (devices trust the CA). True if made."""
    folder = listeners.folder
    if listeners.ca_file.exists() and listeners.cert_file.exists() and listeners.key_file.exists():
        return False
    folder.mkdir(parents=True, exist_ok=True)
    ca_key = folder / "ca.key"
    names = ["localhost", socket.gethostname(), *hosts]
    san = ",".join(
        [*(f"DNS:{n}" for n in dict.fromkeys(names)), "IP:127.0.0.1", "IP:0:0:0:0:0:0:0:1"]
    )
    days = str(CERT_DAYS)
    _openssl("req", "-x509", "-newkey", "rsa:3072", "-nodes", "-days", days,
             "-subj", "/CN=Fieldline broker CA", "-keyout", str(ca_key),
             "-out", str(listeners.ca_file))  # fmt: skip
    csr = folder / "server.csr"
    _openssl("req", "-newkey", "rsa:3072", "-nodes", "-subj", f"/CN={names[1]}",
             "-keyout", str(listeners.key_file), "-out", str(csr))  # fmt: skip
    extensions = folder / "server.ext"
    extensions.write_text(f"subjectAltName={san}\nextendedKeyUsage=serverAuth\n")
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(listeners.ca_file),
             "-CAkey", str(ca_key), "-CAcreateserial", "-days", days,
             "-extfile", str(extensions), "-out", str(listeners.cert_file))  # fmt: skip
    csr.unlink()
    extensions.unlink()
    os.chmod(ca_key, 0o600)
    os.chmod(listeners.ca_file, 0o644)
    os.chmod(listeners.cert_file, 0o644)
    _give_to_broker(listeners.key_file, 0o640)
    report(f"mosquitto: made a CA for devices: {listeners.ca_file}")
    return True


def ensure_state(
    listeners: DeviceListeners,
    admin_user: str,
    password_file: Path,
    report: Callable[[str], None],
) -> bool:
    """The plugin's state with Fieldline's admin login (its password in `password_file`, for
    the server and the command line) and nothing allowed to anyone else; made once, since the
    broker then keeps it. True if made."""
    empty = listeners.empty_state_file
    if not empty.exists():
        empty.parent.mkdir(parents=True, exist_ok=True)
        empty.write_text("{}\n")
        _give_to_broker(empty, 0o644)
    if listeners.state_file.exists() and password_file.exists():
        return False
    password = secrets.token_urlsafe(24)
    listeners.state_file.parent.mkdir(parents=True, exist_ok=True)
    listeners.state_file.unlink(missing_ok=True)
    result = subprocess.run(
        ["mosquitto_ctrl", "dynsec", "init", str(listeners.state_file), admin_user, password],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"mosquitto_ctrl dynsec init failed: {result.stderr.strip()}")
    state = json.loads(listeners.state_file.read_text())
    state["defaultACLAccess"] = DEFAULT_ACCESS
    listeners.state_file.write_text(json.dumps(state, indent=1) + "\n")
    _give_to_broker(listeners.state_file, 0o600)
    password_file.parent.mkdir(parents=True, exist_ok=True)
    password_file.write_text(password + "\n")
    os.chmod(password_file, 0o600)
    report(f"mosquitto: device logins kept by the broker in {listeners.state_file}")
    return True
