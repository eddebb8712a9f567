"""What each kind of MQTT login may do on the broker, as dynamic security roles.

One rule per login: a crew's handheld publishes only its own crew's topics and reads only its
crew's inbox; an OwnTracks phone publishes only the topic of its binding; a SCADA station only
its own topic; a Sparkplug edge node only its group's node and device topics under its own name
and reads only its own commands. Everything else is denied by the broker's default access
(`DEFAULT_ACCESS`), so a login that names another crew is refused at the broker.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SEND = "publishClientSend"
RECEIVE = "publishClientReceive"
SUBSCRIBE = "subscribeLiteral"
# The broker's answer to what no role allows: nothing, in either direction.
DEFAULT_ACCESS = {
    SEND: False,
    RECEIVE: False,
    "subscribe": False,
    "unsubscribe": True,
}
LOGIN_KINDS = ("device", "station", "edge")


@dataclass(frozen=True)
class Grant:
    acltype: str
    topic: str

    def as_acl(self) -> dict[str, Any]:
        return {"acltype": self.acltype, "topic": self.topic, "priority": 0, "allow": True}


def _reads(topic: str) -> list[Grant]:
    return [Grant(SUBSCRIBE, topic), Grant(RECEIVE, topic)]


def crew_device_grants(crew_id: str) -> list[Grant]:
    """A crew's handheld: its fixes, its tasks' status, its field reports; its inbox."""
    base = f"fieldline/crews/{crew_id}"
    return [
        Grant(SEND, f"{base}/position"),
        Grant(SEND, f"{base}/tasks/+/status"),
        Grant(SEND, f"{base}/reports"),
        *_reads(f"{base}/inbox"),
    ]


def owntracks_grants(identifier: str) -> list[Grant]:
    """An OwnTracks phone bound as `user/device`: its own location topic only."""
    return [Grant(SEND, f"owntracks/{identifier}")]


def station_grants(station: str) -> list[Grant]:
    return [Grant(SEND, f"fieldline/scada/{station}")]


def edge_grants(group: str, edge: str) -> list[Grant]:
    """A Sparkplug B edge node: its birth, data and death, those of the devices behind it,
    its own commands, and the primary host's state (an edge waits for it to be online)."""
    base = f"spBv1.0/{group}"
    node = [Grant(SEND, f"{base}/{verb}/{edge}") for verb in ("NBIRTH", "NDATA", "NDEATH")]
    devices = [Grant(SEND, f"{base}/{verb}/{edge}/+") for verb in ("DBIRTH", "DDATA", "DDEATH")]
    return [
        *node,
        *devices,
        *_reads(f"{base}/NCMD/{edge}"),
        *_reads(f"{base}/DCMD/{edge}/+"),
        *_reads("spBv1.0/STATE/+"),
        *_reads("STATE/+"),
    ]


def device_grants(kind: str, crew_id: str, identifier: str) -> list[Grant]:
    if kind == "owntracks":
        return owntracks_grants(identifier)
    return crew_device_grants(crew_id)


def role_name(username: str) -> str:
    return f"fieldline:{username}"


def create_commands(username: str, password: str, grants: list[Grant]) -> list[dict[str, Any]]:
    """Dynamic security commands that make the login with exactly these rights; an existing
    one of the same name is replaced (its connection is closed by the broker)."""
    role = role_name(username)
    return [
        *delete_commands(username),
        {"command": "createRole", "rolename": role, "acls": [g.as_acl() for g in grants]},
        {
            "command": "createClient",
            "username": username,
            "password": password,
            "roles": [{"rolename": role}],
        },
    ]


def delete_commands(username: str) -> list[dict[str, Any]]:
    """Deleting a client also disconnects it, so a revoked device stops at once."""
    return [
        {"command": "deleteClient", "username": username},
        {"command": "deleteRole", "rolename": role_name(username)},
    ]


def password_commands(username: str, password: str) -> list[dict[str, Any]]:
    return [{"command": "setClientPassword", "username": username, "password": password}]


def default_access_command() -> dict[str, Any]:
    return {
        "command": "setDefaultACLAccess",
        "acls": [{"acltype": name, "allow": allow} for name, allow in DEFAULT_ACCESS.items()],
    }
