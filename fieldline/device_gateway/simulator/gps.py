"""A handheld's GPS receiver and battery: what it reports for a true position.

The position error is not white noise: a receiver's error drifts slowly (multipath and
atmosphere change over tens of seconds), so it is a first-order Gauss-Markov process whose
size follows the accuracy the device reports. The reported accuracy is the radius of 68 %
confidence, as Android and iOS report it; for a circular 2-D Gaussian that radius is
1.515 sigma per axis. Rarely a fix jumps far away while still claiming good accuracy: the
outliers a gateway's filters must catch.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime

from fieldline.device_gateway.simulator.motion import Pose

SIGMA_PER_ACCURACY = 1 / 1.515
ERROR_CORRELATION_S = 30.0
ACCURACY_RANGE_M = (3.0, 15.0)
OUTLIER_PROBABILITY = 0.003
OUTLIER_JUMP_M = (60.0, 300.0)
SPEED_NOISE_MPS = 0.2
STANDING_SPEED_MPS = 0.3  # below this a receiver reports no course


@dataclass(frozen=True)
class GpsFix:
    """One measured fix, with the truth kept beside it for tests and checks."""

    ts: datetime
    x: float  # projected, metres
    y: float
    acc_m: float
    speed_mps: float
    heading_deg: float | None
    alt_m: float
    batt_pct: int
    true_x: float
    true_y: float
    outlier: bool


class GpsReceiver:
    def __init__(self, rng: random.Random, drain_pct_per_h: float) -> None:
        self.rng = rng
        self.acc_m = rng.uniform(4.0, 8.0)
        self.error_x = 0.0
        self.error_y = 0.0
        self.battery_pct = rng.uniform(55.0, 100.0)
        self.drain_pct_per_h = drain_pct_per_h
        self.last_ts: datetime | None = None

    def measure(self, pose: Pose, ts: datetime, ground_alt_m: float) -> GpsFix:
        dt = (ts - self.last_ts).total_seconds() if self.last_ts else ERROR_CORRELATION_S
        self.last_ts = ts
        previous_acc_m = self.acc_m
        self._drift(dt)
        sigma = self.acc_m * SIGMA_PER_ACCURACY
        # The reported accuracy is the receiver's estimate of its own error: they move together.
        self.error_x *= self.acc_m / previous_acc_m
        self.error_y *= self.acc_m / previous_acc_m
        keep = math.exp(-dt / ERROR_CORRELATION_S)
        fresh = sigma * math.sqrt(1 - keep * keep)
        self.error_x = keep * self.error_x + self.rng.gauss(0.0, fresh)
        self.error_y = keep * self.error_y + self.rng.gauss(0.0, fresh)
        x, y = pose.x + self.error_x, pose.y + self.error_y
        outlier = self.rng.random() < OUTLIER_PROBABILITY
        if outlier:
            angle = self.rng.uniform(0.0, 2 * math.pi)
            jump = self.rng.uniform(*OUTLIER_JUMP_M)
            x, y = x + jump * math.sin(angle), y + jump * math.cos(angle)
        speed = max(0.0, pose.speed_mps + self.rng.gauss(0.0, SPEED_NOISE_MPS))
        heading = None
        if pose.heading_deg is not None and speed >= STANDING_SPEED_MPS:
            heading = round(pose.heading_deg + self.rng.gauss(0.0, 3.0), 1) % 360.0
        else:
            speed = 0.0 if pose.speed_mps == 0 else speed
        return GpsFix(
            ts=ts,
            x=x,
            y=y,
            acc_m=round(self.acc_m, 1),
            speed_mps=round(speed, 2),
            heading_deg=heading,
            # Vertical error is about one and a half times the horizontal one.
            alt_m=round(ground_alt_m + self.rng.gauss(0.0, 1.5 * sigma), 1),
            batt_pct=max(1, math.ceil(self.battery_pct)),
            true_x=pose.x,
            true_y=pose.y,
            outlier=outlier,
        )

    def _drift(self, dt: float) -> None:
        """Accuracy wanders within its range (sky view changes street by street)."""
        low, high = ACCURACY_RANGE_M
        step = self.rng.gauss(0.0, 0.4 * math.sqrt(dt / 5.0))
        self.acc_m = min(high, max(low, self.acc_m + step))
        self.battery_pct = max(1.0, self.battery_pct - self.drain_pct_per_h * dt / 3600.0)
