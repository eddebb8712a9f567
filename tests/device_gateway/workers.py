"""A private Mosquitto and `fieldline gateway` workers as processes of their own, for the tests
that break or remove workers (test_faults.py, test_horizontal.py, test_retire.py)."""

from __future__ import annotations

import getpass
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis

from fieldline.settings import Settings
from tests.processes import accepts, free_port, wait_until

# -- a private Mosquitto ----------------------------------------------------------------------


class Broker:
    """Mosquitto on a free loopback port, persisting its sessions in a folder of its own."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.folder = folder
        (folder / "store").mkdir(parents=True)
        self.conf = folder / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            # Running as root, Mosquitto would switch to its own user, who cannot write here.
            f"user {getpass.getuser()}\n"
            "persistence true\n"
            f"persistence_location {folder / 'store'}/\n"
            # SIGTERM saves everything; a save each second covers a harder stop too (a save
            # on every change would make the broker the bottleneck).
            "autosave_interval 1\n"
            "max_queued_messages 1000000\n"
            "max_inflight_messages 0\n"
            f"log_dest file {folder / 'mosquitto.log'}\n"
        )
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        with (self.folder / "mosquitto.out").open("ab") as out:
            self.process = subprocess.Popen(
                ["mosquitto", "-c", str(self.conf)], stdout=out, stderr=subprocess.STDOUT
            )
        wait_until(lambda: accepts(self.port), 10, "Mosquitto to listen")

    def stop(self) -> None:
        # SIGTERM: Mosquitto writes its persistence file on the way out.
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=15)
        self.process = None


# -- the gateway as a process -----------------------------------------------------------------


@dataclass
class GatewayProcess:
    env: dict[str, str]
    logs: Path
    runs: int = 0
    process: subprocess.Popen[bytes] | None = None

    def log_text(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')}"
            for path in sorted(self.logs.glob("gateway-*.log"))
        )

    def start(self, *options: str) -> None:
        self.runs += 1
        log = self.logs / f"gateway-{self.runs}.log"
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "fieldline.cli", "gateway", *options],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        wait_until(lambda: "connected (session present" in log.read_text(), 30, "the gateway")
        time.sleep(0.3)  # the subscription is made on connecting: let its SUBACK come back

    def receiver_pid(self) -> int:
        """The worker's receiving process (receiver.py), as its log names it."""
        log = (self.logs / f"gateway-{self.runs}.log").read_text(errors="replace")
        return int(re.findall(r"receiving in process (\d+)", log)[-1])

    def pause(self) -> None:
        assert self.process is not None
        for pid in (self.process.pid, self.receiver_pid()):
            os.kill(pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        for pid in (self.process.pid, self.receiver_pid()):
            os.kill(pid, signal.SIGCONT)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.alive():
            assert self.process is not None
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has ended: only its exit status is left


@contextmanager
def worker_group(
    settings: Settings, broker: Broker, folder: Path, names: tuple[str, ...] = ("a", "b")
) -> Iterator[list[GatewayProcess]]:
    """Workers of one share group (not started), each with its own fixed client id (and so its
    own session) and one deployment's Redis keys; stopped, and the keys removed, at the end."""
    tag = uuid.uuid4().hex[:10]
    prefix = f"fieldline_test_{tag}"
    workers = []
    for name in names:
        logs = folder / f"worker-{name}"
        logs.mkdir()
        env = {
            **os.environ,
            "FIELDLINE_DATABASE_URL": settings.database_url,
            "FIELDLINE_REDIS_URL": settings.redis_url,
            "FIELDLINE_MQTT_URL": broker.url,
            "FIELDLINE_REDIS_PREFIX": prefix,
            "FIELDLINE_GATEWAY_SHARE_GROUP": f"test_{tag}",
            "FIELDLINE_GATEWAY_CLIENT_ID": f"fieldline-worker-{tag}-{name}",
            "FIELDLINE_MQTT_SESSION_EXPIRY_S": "600",
            "FIELDLINE_GATEWAY_METRICS_PORT": "0",
            "FIELDLINE_GATEWAY_SPARKPLUG": "false",
        }
        workers.append(GatewayProcess(env, logs))
    try:
        yield workers
    finally:
        for worker in workers:
            worker.stop()
        for worker in workers:
            print(worker.log_text())  # shown by pytest when the test fails
        client = redis.Redis.from_url(settings.redis_url)
        keys = list(client.scan_iter(f"{prefix}:*"))
        if keys:
            client.delete(*keys)
        client.close()


def wait_for_stall(count: Callable[[], int], quiet_s: float = 3.0) -> int:
    """The count once it has not changed for `quiet_s`: the running workers have nothing more
    to do."""
    last, since = count(), time.monotonic()
    while time.monotonic() - since < quiet_s:
        time.sleep(0.5)
        now = count()
        if now != last:
            last, since = now, time.monotonic()
    return last
