"""The receiving half of a `fieldline gateway` worker: a process of its own holding the MQTT
connection.

paho's network loop (reading, parsing and acknowledging packets) costs about as much CPU as
decoding, filtering and storing what it receives; in one Python process the two would share one
core under the GIL. So a worker is two processes: this one receives and acknowledges, the
worker's main process (worker.py) processes, commits and fans out. One pipe joins them:

  to the worker   `messages`: a chunk of (topic, payload, received at), in arrival order;
                  `connected` / `disconnected`; `drained` (nothing more will come);
                  `retired` (unsubscribed, nothing held, nothing arrived for RETIRE_QUIET_S)
  from it         `done n`: the next n messages handed over are committed; `publish`;
                  `retire`: unsubscribe, receive on what the session still holds;
                  `drain`: hand over what is held and take no more; `stop`: disconnect,
                  ending the session if it was retired

Only a count crosses back: this process keeps each message's id, QoS and connection in arrival
order, and the worker commits in that order, so the n next are the n oldest held here. They are
acknowledged in that order (paho's manual acknowledgement), those of a connection that has been
replaced excepted: the broker delivers them again under new ids.

At most `inflight_max` messages are held (handed over, not done): past that the network loop
waits before it reads on, so a worker that falls behind slows the broker down rather than
filling memory (QoS 1 stays within the receive maximum anyway). If the worker's main process
dies (the pipe closes), this one exits at once, acknowledging nothing more: the broker delivers
again what was not acknowledged. Only paho and the standard library are imported here, so that
the process starts quickly.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import threading
import time
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

log = logging.getLogger(__name__)

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"  # as `fieldline gateway` logs
GC_YOUNG_THRESHOLD = 20_000  # allocations between collections of the youngest objects
SESSION_TAKEN_OVER = 0x8E  # MQTT 5 DISCONNECT reason: the same client id connected elsewhere
# A chunk is sent this long after its first message arrived (or at CHUNK_MAX): one pipe write
# per chunk rather than per message, for a delay well within the worker's flush time.
CHUNK_LINGER_S = 0.002
CHUNK_MAX = 500
# Retiring: once unsubscribed, the session has nothing more for this worker when nothing has
# arrived for this long with nothing left unacknowledged (the broker sends what it queued as
# soon as the receive maximum has room, so it is not holding anything back).
RETIRE_QUIET_S = 1.5

# The notes on the pipe.
MESSAGES, CONNECTED, DISCONNECTED, DRAINED = "messages", "connected", "disconnected", "drained"
RETIRED = "retired"
DONE, PUBLISH, RETIRE, DRAIN, STOP = "done", "publish", "retire", "drain", "stop"


@dataclass(frozen=True)
class Link:
    """What the receiving process needs (it reads no settings itself)."""

    client_id: str
    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None
    keepalive_s: int
    session_expiry_s: int
    receive_maximum: int
    topics: tuple[str, ...]
    inflight_max: int
    log_level: int
    retire: bool = False  # unsubscribe rather than subscribe: drain the session and end it


def main(link: Link, pipe: Connection) -> None:
    """The receiving process: run until told to stop, or exit when the worker is gone."""
    # Ctrl-C (or a SIGUSR1 sent to the whole group) reaches this process too: the main
    # process flushes, or retires, then stops this one.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    logging.basicConfig(level=link.log_level, format=LOG_FORMAT)
    # As in the main process (worker.run): what start-up made lives on, out of collections.
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD)
    Receiver(link, pipe).run()


class Receiver:
    def __init__(self, link: Link, pipe: Connection) -> None:
        self.link = link
        self.pipe = pipe
        self._send_lock = threading.Lock()  # the network loop and the forwarder both send
        self.outbox: deque[tuple[str, bytes, float]] = deque()  # not handed over yet
        self.held: deque[tuple[int, int, int]] = deque()  # (mid, qos, session), not done yet
        self.arrived = threading.Event()
        self.room = threading.Condition()
        self.draining = False
        self.stopping = False
        self.retiring = link.retire
        self.unsubscribed = False  # in this connection
        self.retired = False  # told the worker: nothing more comes, the session may end
        self.last_activity = time.monotonic()  # a message arrived or was acknowledged
        self.refused = 0  # arrived while draining: left to the session
        self.session = 0  # which connection delivered a message: its id means nothing on another
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=link.client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_unsubscribe = self._on_unsubscribe
        self.forwarder = threading.Thread(
            target=self._forward, name="gateway-forwarder", daemon=True
        )

    def _send(self, note: tuple[Any, ...]) -> None:
        try:
            with self._send_lock:
                self.pipe.send(note)
        except OSError:
            self._orphaned()

    def _orphaned(self) -> None:
        log.error("the worker's main process is gone: exiting, acknowledging nothing more")
        os._exit(1)

    # -- MQTT (paho's network thread) ---------------------------------------------------------

    def _on_connect(self, client: mqtt.Client, _u: Any, flags: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.warning("broker refused the connection: %s", reason)
            return
        self.session += 1
        self.unsubscribed = False
        if self.retiring:
            client.unsubscribe(list(self.link.topics))
        else:
            client.subscribe([(topic, 1) for topic in self.link.topics])
        log.info("connected (session present: %s)", flags.session_present)
        self._send((CONNECTED,))

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if getattr(reason, "value", None) == SESSION_TAKEN_OVER:
            log.error(
                "another worker connected as %s and took this session over: give each worker "
                "its own FIELDLINE_GATEWAY_CLIENT_ID",
                self.link.client_id,
            )
        self.unsubscribed = False
        if not self.stopping:
            log.warning("disconnected from the broker (%s); reconnecting", reason)
            self._send((DISCONNECTED,))

    def _on_unsubscribe(self, _c: mqtt.Client, _u: Any, _m: Any, _r: Any, _p: Any) -> None:
        topics = ", ".join(self.link.topics)
        log.info("unsubscribed from %s: receiving what the session still holds", topics)
        self.last_activity = time.monotonic()
        self.unsubscribed = True

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        self.last_activity = time.monotonic()
        if self.draining:
            self.refused += 1
            return  # not handed over, never acknowledged: the broker delivers it again
        if len(self.held) >= self.link.inflight_max:
            with self.room:
                while len(self.held) >= self.link.inflight_max and not self.stopping:
                    self.room.wait(1.0)
        self.held.append((message.mid, message.qos, self.session))
        self.outbox.append((message.topic, message.payload, time.time()))
        if not self.arrived.is_set():
            self.arrived.set()

    # -- to the worker ------------------------------------------------------------------------

    def _forward(self) -> None:
        outbox = self.outbox
        while True:
            self.arrived.wait()
            # Cleared before taking: an append after the take sets it again.
            self.arrived.clear()
            if len(outbox) < CHUNK_MAX and not self.draining:
                time.sleep(CHUNK_LINGER_S)
            while outbox:
                chunk = [outbox.popleft() for _ in range(min(CHUNK_MAX, len(outbox)))]
                self._send((MESSAGES, chunk))
            if self.draining:
                self._send((DRAINED,))
                return

    # -- from the worker (the main thread) ----------------------------------------------------

    def _acknowledge(self, count: int) -> None:
        held, session, ack = self.held, self.session, self.client.ack
        for _ in range(count):
            mid, qos, delivered_in = held.popleft()
            if qos > 0 and delivered_in == session:
                ack(mid, qos)
        self.last_activity = time.monotonic()
        with self.room:
            self.room.notify_all()

    def _retire(self) -> None:
        if not self.retiring:
            self.retiring = True
            self.client.unsubscribe(list(self.link.topics))  # or on connecting (_on_connect)

    def _check_retired(self) -> None:
        quiet = time.monotonic() - self.last_activity >= RETIRE_QUIET_S
        if not self.retired and self.unsubscribed and not self.held and quiet:
            self.retired = True
            log.info("nothing more in the session of %s: ending it", self.link.client_id)
            self._send((RETIRED,))

    def _disconnect(self) -> bool:
        """Disconnect; a retired session with Session Expiry Interval 0, so that the broker
        discards it (and stops handing it a share) rather than keep it for a restart. False
        when retiring but the session is kept."""
        if not self.retired or self.refused:
            if self.retiring:
                log.warning(
                    "stopped before the session of %s was drained (%d arrived while stopping): "
                    "the broker keeps it; `fieldline gateway --retire` ends it",
                    self.link.client_id,
                    self.refused,
                )
            self.client.disconnect()
            return not self.retiring
        properties = Properties(PacketTypes.DISCONNECT)
        properties.SessionExpiryInterval = 0
        self.client.disconnect(properties=properties)
        return True

    def run(self) -> None:
        link, client = self.link, self.client
        if link.tls:
            client.tls_set()
        if link.username:
            client.username_pw_set(link.username, link.password)
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = link.session_expiry_s
        properties.ReceiveMaximum = link.receive_maximum
        client.connect_async(
            link.host,
            link.port,
            keepalive=link.keepalive_s,
            clean_start=False,
            properties=properties,
        )
        log.info("receiving in process %d", os.getpid())
        client.loop_start()
        self.forwarder.start()
        try:
            while True:
                if self.retiring:
                    self._check_retired()
                    if not self.pipe.poll(0.1):
                        continue
                note = self.pipe.recv()
                if note[0] == DONE:
                    self._acknowledge(note[1])
                elif note[0] == PUBLISH:
                    client.publish(*note[1:])
                elif note[0] == RETIRE:
                    self._retire()
                elif note[0] == DRAIN:
                    self.draining = True
                    self.arrived.set()
                elif note[0] == STOP:
                    break
        except (EOFError, OSError):
            self._orphaned()
        # The acknowledgements queued above go out before the DISCONNECT.
        self.stopping = True
        with self.room:
            self.room.notify_all()
        ended = self._disconnect()
        client.loop_stop()
        if not ended:
            raise SystemExit(1)  # a retirement left undone: the worker exits non-zero
