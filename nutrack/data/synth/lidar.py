"""The LIDAR_TOP sensor model: one sweep's point cloud from the rays of :mod:`.raycast`
(dropouts, thinning of ground and clutter, range and intensity noise, spurious returns)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .constants import ELEVATION_RANGE_DEG, INTENSITY, PHYSICAL_INSET, RANGE_NOISE

__all__ = ["Lidar", "Sweep", "physical_boxes"]


def physical_boxes(boxes7: np.ndarray) -> np.ndarray:
    """Surfaces the lidar sees: the annotated boxes shrunk by the inset on every side, so
    that every return of an object lies strictly inside its annotation."""
    phys = boxes7.copy()
    for k in (3, 4, 5):
        phys[:, k] = np.maximum(boxes7[:, k] - 2 * PHYSICAL_INSET, 0.6 * boxes7[:, k])
    return phys


@dataclass
class Sweep:
    """One sweep's returns in the global frame, and what its rays hit.

    hit: per ray, the index of the box it hit first (objects, then clutter), -1 the ground,
    -2 nothing; total: per box, the rays that cross it at all (for visibility)."""

    points: np.ndarray     # (P, 3) global frame
    intensity: np.ndarray  # (P,)
    beam: np.ndarray       # (P,) beam index of each point
    hit: np.ndarray        # (n_rays,)
    total: np.ndarray      # (n_boxes,)


class Lidar:
    """A spinning multi-beam lidar (the configuration's beams, azimuth steps and range)."""

    def __init__(self, cfg):
        elev = np.deg2rad(np.linspace(ELEVATION_RANGE_DEG[0], ELEVATION_RANGE_DEG[1], cfg.beams))
        self.sin_e, self.cos_e = np.sin(elev), np.cos(elev)
        self.beams = cfg.beams
        self.n_cols = cfg.azimuth_steps
        self.n_rays = self.n_cols * cfg.beams
        self.max_range = cfg.max_range
        self.ground_keep = cfg.ground_keep
        self.clutter_keep = cfg.clutter_keep

    def scan(self, rng, origin: np.ndarray, sensor_yaw: float, boxes: np.ndarray, n_obj: int,
             intensity_obj: np.ndarray) -> Sweep:
        """Cast one sweep from ``origin`` against ``boxes`` (the ``n_obj`` objects' physical
        boxes, then the clutter) and the ground plane z = 0; the random draws (azimuth phase,
        dropouts, thinning, noise, spurious returns) come from ``rng`` in a fixed order."""
        from .raycast import raycast  # numba: imported on the first sweep, not with the package

        n_cols, sin_e, cos_e = self.n_cols, self.sin_e, self.cos_e
        depth = np.full(self.n_rays, self.max_range)
        hit = np.full(self.n_rays, -2, dtype=np.int64)
        total = np.zeros(len(boxes), dtype=np.int64)
        az0 = rng.uniform(0.0, 2 * math.pi / n_cols)
        raycast(origin, sensor_yaw, az0, n_cols, sin_e, cos_e, boxes, self.max_range, 0.0, depth, hit, total)

        keep = hit != -2
        keep &= rng.random(self.n_rays) > 0.03  # dropouts
        ground = hit == -1
        u = rng.random(self.n_rays)
        keep &= ~ground | (u < self.ground_keep)
        keep &= (hit < n_obj) | (u < self.clutter_keep)
        idx = np.flatnonzero(keep)
        col = idx // self.beams
        beam = idx % self.beams
        phi = sensor_yaw + az0 + col * (2 * math.pi / n_cols)
        rr = depth[idx] + np.clip(rng.normal(0, RANGE_NOISE, size=len(idx)), -2.5 * RANGE_NOISE, 2.5 * RANGE_NOISE)
        dirs = np.stack([cos_e[beam] * np.cos(phi), cos_e[beam] * np.sin(phi), sin_e[beam]], axis=1)
        points = origin + dirs * rr[:, None]
        h_ids = hit[idx]
        inten = np.where(h_ids == -1, 3.0,
                         np.where(h_ids >= n_obj, INTENSITY["clutter"],
                                  intensity_obj[np.clip(h_ids, 0, max(n_obj - 1, 0))]))
        inten = np.clip(inten + rng.normal(0, 4.0, size=len(idx)), 0, 255)
        # a few spurious returns (dust, rain): random directions and ranges
        n_spur = int(rng.poisson(0.002 * self.n_rays))
        if n_spur:
            sp_phi = rng.uniform(-math.pi, math.pi, n_spur)
            sp_b = rng.integers(0, self.beams, n_spur)
            sp_r = rng.uniform(2.0, self.max_range * 0.8, n_spur)
            sp_dirs = np.stack([cos_e[sp_b] * np.cos(sp_phi), cos_e[sp_b] * np.sin(sp_phi), sin_e[sp_b]], axis=1)
            sp = origin + sp_dirs * sp_r[:, None]
            ok = sp[:, 2] > 0.05
            points = np.concatenate([points, sp[ok]])
            inten = np.concatenate([inten, rng.uniform(0, 10, ok.sum())])
            beam = np.concatenate([beam, sp_b[ok]])
        return Sweep(points, inten, beam, hit, total)
