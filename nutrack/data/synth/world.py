"""One scene's world: a road with curves and cross streets, the ego's motion along it, the
annotated objects (parked and moving vehicles, turning traffic, trucks with trailers,
pedestrians, cyclists, construction zones with rows of cones and barriers and their
construction vehicles, barrier rows along the kerbs) as per-frame poses, and unannotated clutter
(buildings, poles, trees) as static boxes.

Every random draw comes from the scene's generator in a fixed order: the order of the steps
in :func:`build_world` and of the draws inside them IS the dataset, so reordering them
changes every generated file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Tuple

import numpy as np

from .constants import SIZE_WLH

__all__ = ["World", "WorldObject", "build_world"]

_DS = 0.5  # road sampling step, metres


class _Road:
    """Centreline with curvature; (s, l) road coordinates -> world."""

    def __init__(self, rng, origin_xy, heading0, s_min, s_max):
        n = int(math.ceil((s_max - s_min) / _DS)) + 1
        s = s_min + _DS * np.arange(n)
        kappa = np.zeros(n)
        pos = s_min
        while pos < s_max:
            if rng.random() < 0.55:
                length = rng.uniform(40, 110)
            else:
                length = rng.uniform(18, 40)
                k = rng.uniform(1 / 70, 1 / 28) * rng.choice([-1.0, 1.0])
                kappa[(s >= pos) & (s < pos + length)] = k
            pos += length
        # keep the first stretch around the ego start gentle
        heading = np.cumsum(kappa) * _DS
        i0 = int(np.argmin(np.abs(s)))
        heading = heading - heading[i0] + heading0
        x = np.cumsum(np.cos(heading)) * _DS
        y = np.cumsum(np.sin(heading)) * _DS
        self.s = s
        self.x = x - x[i0] + origin_xy[0]
        self.y = y - y[i0] + origin_xy[1]
        self.heading = heading

    def world(self, s, l):
        s = np.asarray(s, dtype=np.float64)
        l = np.asarray(l, dtype=np.float64)
        x = np.interp(s, self.s, self.x)
        y = np.interp(s, self.s, self.y)
        h = np.interp(s, self.s, self.heading)
        return x - l * np.sin(h), y + l * np.cos(h), h


class _Path:
    """A polyline in the world with arc-length parametrisation."""

    def __init__(self, x, y):
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        seg = np.hypot(np.diff(x), np.diff(y))
        keep = np.concatenate([[True], seg > 1e-6])
        self.x, self.y = x[keep], y[keep]
        seg = np.hypot(np.diff(self.x), np.diff(self.y))
        self.arc = np.concatenate([[0.0], np.cumsum(seg)])
        self.length = float(self.arc[-1])
        if len(self.x) >= 2:
            hx = np.gradient(self.x)
            hy = np.gradient(self.y)
            self.heading = np.unwrap(np.arctan2(hy, hx))
        else:
            self.heading = np.zeros(len(self.x))

    def at(self, sigma):
        sigma = np.clip(sigma, 0.0, self.length)
        x = np.interp(sigma, self.arc, self.x)
        y = np.interp(sigma, self.arc, self.y)
        h = np.interp(sigma, self.arc, self.heading)
        return x, y, h


def _road_path(road: _Road, s0, s1, l_of_s):
    """Path along the road from s0 to s1 (either direction) at lateral offset l(s)."""
    n = max(2, int(abs(s1 - s0) / _DS) + 1)
    s = np.linspace(s0, s1, n)
    l = l_of_s(s) if callable(l_of_s) else np.full(n, float(l_of_s))
    x, y, _ = road.world(s, l)
    return _Path(x, y)


def _sl_path(road: _Road, s, l):
    x, y, _ = road.world(np.asarray(s), np.asarray(l))
    return _Path(x, y)


def _speed_profile(rng, t_fine, v_lo, v_hi, p_stop=0.0, stop_dur=(2.0, 6.0), knot_dt=(3.0, 8.0), v0=None):
    """Piecewise-linear speed with occasional stops; returns speeds at t_fine."""
    knots_t = [t_fine[0] - 1.0]
    knots_v = [rng.uniform(v_lo, v_hi) if v0 is None else v0]
    t = knots_t[0]
    while t < t_fine[-1] + 1.0:
        if rng.random() < p_stop:
            decel = rng.uniform(1.5, 3.0)
            t += max(1.0, knots_v[-1] / decel)
            knots_t.append(t)
            knots_v.append(0.0)
            t += rng.uniform(*stop_dur)
            knots_t.append(t)
            knots_v.append(0.0)
            t += rng.uniform(2.0, 4.0)
            knots_t.append(t)
            knots_v.append(rng.uniform(v_lo, v_hi))
        else:
            t += rng.uniform(*knot_dt)
            knots_t.append(t)
            knots_v.append(rng.uniform(v_lo, v_hi))
    v = np.interp(t_fine, knots_t, knots_v)
    return np.maximum(v, 0.0)


def _integrate(t_fine, v):
    return np.concatenate([[0.0], np.cumsum(0.5 * (v[1:] + v[:-1]) * np.diff(t_fine))])


@dataclass
class WorldObject:
    """An annotated object's category, size and pose at every lidar frame."""

    category: str
    size: Tuple[float, float, float]  # w, l, h
    x: np.ndarray  # (T,) per lidar frame
    y: np.ndarray
    yaw: np.ndarray
    speed: np.ndarray
    parked: bool = False
    rider: bool = True
    sitting: bool = False  # a pedestrian sitting or lying down


@dataclass
class World:
    """One scene: the ego pose (x, y, yaw) and the objects at every lidar frame, and the
    static unannotated clutter boxes (buildings, poles, trees)."""

    ego: np.ndarray                # (T, 3)
    objects: List[WorldObject]
    clutter: np.ndarray            # (K, 7)


def _jitter_size(rng, category, scale=0.08):
    w, l, h = SIZE_WLH[category]
    f = np.exp(rng.normal(0.0, scale, size=3))
    return (float(w * f[0]), float(l * f[1]), float(h * f[2]))


def _pick(rng, options):
    names = [o[0] for o in options]
    p = np.array([o[1] for o in options], dtype=np.float64)
    return names[int(rng.choice(len(names), p=p / p.sum()))]


_VEHICLE_MIX = [("vehicle.car", 0.76), ("vehicle.truck", 0.13), ("vehicle.motorcycle", 0.05),
                ("vehicle.bus.rigid", 0.05), ("vehicle.bus.bendy", 0.01)]
_PED_MIX = [("human.pedestrian.adult", 0.88), ("human.pedestrian.child", 0.06),
            ("human.pedestrian.construction_worker", 0.06)]




def build_world(rng, cfg, t_frames: np.ndarray) -> World:
    """Ego poses, objects and clutter for one scene, evaluated at the lidar frame times."""
    b = _WorldBuilder(rng, cfg, t_frames)
    b.drive_ego()
    b.lay_out_cross_streets()
    b.park_vehicles()
    b.drive_lane_traffic()
    b.add_cyclists()
    b.add_turning_vehicles()
    b.add_pavement_pedestrians()
    b.add_crossing_pedestrians()
    b.lay_out_construction_zones()
    b.line_kerbs_with_barriers()
    b.drop_objects_never_in_range()
    return World(b.ego, b.objects, b.build_clutter())


class _WorldBuilder:
    """The steps of :func:`build_world`, sharing the scene's random generator, time axes,
    road and object list. ``t_frames`` are the lidar frame times; motion is integrated on
    the finer ``t_fine`` (20 Hz, a second beyond either end)."""

    MARGIN = 420.0  # metres of road before the ego's start and beyond its end

    def __init__(self, rng, cfg, t_frames: np.ndarray):
        self.rng = rng
        self.cfg = cfg
        self.t_frames = t_frames
        self.t_fine = np.arange(t_frames[0] - 1.0, t_frames[-1] + 1.05, 0.05)
        self.objects: List[WorldObject] = []

    # ---- helpers -------------------------------------------------------------------------

    def add(self, category, path: _Path, sigma_frames, speed, parked=False, rider=True, flip=False):
        """An object moving along ``path`` at arc length ``sigma_frames`` per frame."""
        x, y, h = path.at(sigma_frames)
        if flip:
            h = h + math.pi
        self.objects.append(WorldObject(category, _jitter_size(self.rng, category), x, y,
                                        np.asarray(h, dtype=np.float64), np.asarray(speed, dtype=np.float64),
                                        parked, rider))

    def add_static(self, category, path: _Path, **kw):
        """An object standing at the start of ``path`` (heading along it)."""
        n = len(self.t_frames)
        self.add(category, path, np.zeros(n), np.zeros(n), **kw)

    def along(self, v):
        """sigma(t) at the frames for a speed profile on t_fine, starting at 0, and the speeds."""
        sig = _integrate(self.t_fine, v)
        return np.interp(self.t_frames, self.t_fine, sig), np.interp(self.t_frames, self.t_fine, v)

    def count(self, rate_per_100m, length):
        """A Poisson number of objects for a rate per 100 m of road, scaled by the density."""
        return int(self.rng.poisson(rate_per_100m * self.cfg.density * length / 100.0))

    def road_path(self, lateral, forward=True):
        """The whole road, in or against the driving direction, at a lateral offset."""
        m, far = self.MARGIN, self.travel + self.MARGIN
        s0, s1 = (-m + 1, far - 1) if forward else (far - 1, -m + 1)
        return _road_path(self.road, s0, s1, lateral)

    # ---- the steps, in draw order ----------------------------------------------------------

    def drive_ego(self):
        """The ego's speed profile (one of four driving styles), the road it drives and its poses."""
        rng, t_fine, t_frames = self.rng, self.t_fine, self.t_frames
        style = rng.choice(["cruise", "urban", "stopgo", "slow"], p=[0.35, 0.35, 0.2, 0.1])
        if style == "cruise":
            v_ego = _speed_profile(rng, t_fine, 7.0, 12.0)
        elif style == "urban":
            v_ego = _speed_profile(rng, t_fine, 3.0, 9.0, p_stop=0.15)
        elif style == "stopgo":
            v_ego = _speed_profile(rng, t_fine, 2.0, 7.0, p_stop=0.5, stop_dur=(2.0, 5.0))
        else:
            v_ego = _speed_profile(rng, t_fine, 0.0, 3.0)
        s_ego_fine = _integrate(t_fine, v_ego)
        s_ego_fine -= np.interp(t_frames[0], t_fine, s_ego_fine)
        self.travel = travel = float(s_ego_fine[-1])
        origin = rng.uniform(300.0, 1800.0, size=2)
        self.road = _Road(rng, origin, rng.uniform(-math.pi, math.pi), -self.MARGIN, travel + self.MARGIN)
        self.v_ego = v_ego
        self.s_ego = np.interp(t_frames, t_fine, s_ego_fine)
        ex, ey, eh = self.road.world(self.s_ego, np.zeros_like(self.s_ego))
        self.ego = np.stack([ex, ey, eh], axis=1)
        self.lo_s, self.hi_s = -90.0, travel + 90.0  # the stretch the ego can see

    def lay_out_cross_streets(self):
        """Road positions of the cross streets (gaps in buildings, where turns and crossings happen)."""
        self.crosses = []
        pos = self.lo_s + self.rng.uniform(10, 60)
        while pos < self.hi_s:
            self.crosses.append(pos)
            pos += self.rng.uniform(70, 140)

    def park_vehicles(self):
        """Parked vehicles on both kerbs, clear of the cross streets."""
        rng, n_frames = self.rng, len(self.t_frames)
        for side_l, heading_flip in ((-6.6, False), (10.1, True)):
            n = self.count(6.0, self.hi_s - self.lo_s)
            slots = np.sort(rng.uniform(self.lo_s, self.hi_s, size=n))
            last = -1e9
            for s in slots:
                if any(abs(s - c) < 9 for c in self.crosses) or s - last < 7.0:
                    continue
                cat = _pick(rng, [("vehicle.car", 0.83), ("vehicle.truck", 0.09), ("vehicle.trailer", 0.05),
                                  ("vehicle.motorcycle", 0.03)])
                last = s + (6.0 if cat == "vehicle.trailer" else 0.0)
                l_off = side_l + rng.normal(0, 0.15) + (0.9 if cat == "vehicle.motorcycle" and side_l < 0 else 0)
                path = _sl_path(self.road, [s - 1.0, s + 1.0], [l_off, l_off])
                sig = np.full(n_frames, 1.0) + rng.normal(0, 0.01)
                self.add(cat, path, sig, np.zeros(n_frames), parked=True, rider=False,
                         flip=heading_flip ^ (rng.random() < 0.1))
                self.objects[-1].yaw = self.objects[-1].yaw + rng.normal(0, 0.04)

    def drive_lane_traffic(self):
        """Moving traffic in four lanes: platoons sharing a speed profile per lane; in the
        ego's lane a lead vehicle and a follower keeping their gap."""
        rng = self.rng
        for l_lane, direction in ((-3.5, +1), (0.0, +1), (3.5, -1), (7.0, -1)):
            if l_lane == 0.0:
                self._ego_lane_neighbours()
                continue
            v_lane = _speed_profile(rng, self.t_fine, 4.0, 13.0, p_stop=0.1)
            sig_rel, spd = self.along(v_lane)
            path = self.road_path(l_lane, forward=direction > 0)
            reach = float(sig_rel[-1])
            # start positions (arc along the path) such that the vehicle is near the ego at some time
            span_lo, span_hi = 0.0, path.length - reach
            n = self.count(2.0, span_hi - span_lo)
            starts = np.sort(rng.uniform(span_lo, span_hi, size=n))
            last = -1e9
            for st in starts:
                if st - last < 14.0:
                    continue
                last = st
                sig = st + sig_rel
                x, y, _ = path.at(sig)
                d = np.hypot(x - self.ego[:, 0], y - self.ego[:, 1])
                if d.min() > self.cfg.annotation_range + 10:
                    continue
                if rng.random() < 0.08:  # a truck towing a trailer
                    self.add("vehicle.truck", path, sig, spd)
                    tl = self.objects[-1].size[1]
                    self.add("vehicle.trailer", path, sig - (tl / 2 + SIZE_WLH["vehicle.trailer"][1] / 2 + 1.0), spd)
                    last = st + 12.0
                    continue
                self.add(_pick(rng, _VEHICLE_MIX), path, sig, spd)

    def _ego_lane_neighbours(self):
        rng = self.rng
        for gap, p in ((rng.uniform(12, 30), 0.7), (-rng.uniform(12, 25), 0.5)):
            if rng.random() < p:
                cat = _pick(rng, _VEHICLE_MIX)
                path = self.road_path(0.0)
                sig = np.interp(self.s_ego, self.road.s, self.road.s) + gap + self.MARGIN - 1
                self.add(cat, path, sig, np.interp(self.t_frames, self.t_fine, self.v_ego))

    def add_cyclists(self):
        """Cyclists at the right kerb; parked bicycles on the pavement."""
        rng, lo_s, hi_s = self.rng, self.lo_s, self.hi_s
        path_bike = self.road_path(-5.0)
        for _ in range(self.count(0.5, hi_s - lo_s)):
            v = _speed_profile(rng, self.t_fine, 2.5, 6.0, p_stop=0.1)
            sig_rel, spd = self.along(v)
            sig = rng.uniform(self.MARGIN + lo_s - 60, self.MARGIN + hi_s) + sig_rel
            self.add("vehicle.bicycle", path_bike, sig, spd)
        for _ in range(self.count(0.4, hi_s - lo_s)):
            s = rng.uniform(lo_s, hi_s)
            path = _sl_path(self.road, [s, s + 0.5], [-7.7, -7.7])
            self.add_static("vehicle.bicycle", path, parked=True, rider=False, flip=rng.random() < 0.5)
            self.objects[-1].yaw = self.objects[-1].yaw + rng.choice([0.0, math.pi / 2])

    def add_turning_vehicles(self):
        """Vehicles turning in from, or out to, the cross streets while the scene runs."""
        rng, t_frames = self.rng, self.t_frames
        for c in self.crosses:
            for _ in range(rng.poisson(1.4 * self.cfg.density)):
                path, leaving = self._turn_path(c)
                v = _speed_profile(rng, self.t_fine, 3.0, 8.0, p_stop=0.15)
                sig_rel, spd = self.along(v)
                # time it so that the turn happens while the scene runs
                t_turn = rng.uniform(t_frames[0], t_frames[-1])
                turn_arc = path.length - 300.0 if not leaving else 300.0
                sig = sig_rel - np.interp(t_turn, t_frames, sig_rel) + turn_arc
                self.add(_pick(rng, _VEHICLE_MIX[:3]), path, sig, spd)

    def _turn_path(self, c):
        """A path down the cross street at road position ``c``, a quarter circle, then 300 m
        along a lane; reversed (leaving the road) with probability 0.4."""
        rng = self.rng
        from_right = rng.random() < 0.5
        l_lane = -3.5 if from_right else rng.choice([3.5, 7.0])
        direction = 1 if from_right else -1
        l_far = -70.0 if from_right else 75.0
        R = rng.uniform(6.0, 10.0)
        sgn = 1.0 if l_lane > l_far else -1.0
        l_knee = l_lane - sgn * R
        seg1_l = np.linspace(l_far, l_knee, 60)
        seg1_s = np.full_like(seg1_l, c)
        th = np.linspace(0, math.pi / 2, 20)
        arc_s = c + direction * R * (1 - np.cos(th))
        arc_l = l_knee + sgn * R * np.sin(th)
        seg2_s = np.linspace(c + direction * R, c + direction * (R + 300.0), 200)
        seg2_l = np.full_like(seg2_s, l_lane)
        s_all = np.concatenate([seg1_s, arc_s[1:], seg2_s[1:]])
        l_all = np.concatenate([seg1_l, arc_l[1:], seg2_l[1:]])
        leaving = rng.random() < 0.4
        if leaving:  # drive the other way: from the road into the cross street
            return _sl_path(self.road, s_all[::-1], l_all[::-1]), True
        return _sl_path(self.road, s_all, l_all), False

    def add_pavement_pedestrians(self):
        """Pedestrians walking both pavements (with stops), and standing groups."""
        rng, lo_s, hi_s, travel, margin = self.rng, self.lo_s, self.hi_s, self.travel, self.MARGIN
        for side_l in (-8.8, 12.8):
            for _ in range(self.count(1.5, hi_s - lo_s + 120)):
                d = rng.choice([-1, 1])
                l_off = side_l + rng.uniform(-0.8, 0.8)
                s0, s1 = (-margin + 1, travel + margin - 1) if d > 0 else (travel + margin - 1, -margin + 1)
                path = _road_path(self.road, s0, s1,
                                  lambda s, l0=l_off, ph=rng.uniform(0, 6.28): l0 + 0.3 * np.sin(s / 7.0 + ph))
                v = _speed_profile(rng, self.t_fine, 0.8, 1.7, p_stop=0.12, stop_dur=(1.5, 6.0), knot_dt=(2.0, 5.0))
                sig_rel, spd = self.along(v)
                start_s = rng.uniform(lo_s - 60, hi_s + 60)
                sig = (start_s + margin - 1 if d > 0 else travel + margin - 1 - start_s) + sig_rel
                self.add(_pick(rng, _PED_MIX), path, sig, spd)
            for _ in range(self.count(0.35, hi_s - lo_s)):
                s = rng.uniform(lo_s, hi_s)
                for _k in range(rng.integers(2, 5)):
                    ds, dl = rng.normal(0, 0.8), rng.normal(0, 0.6)
                    path = _sl_path(self.road, [s + ds, s + ds + 0.3], [side_l + dl, side_l + dl])
                    self.add_static(_pick(rng, _PED_MIX), path)
                    o = self.objects[-1]
                    o.yaw = o.yaw + rng.uniform(-math.pi, math.pi)
                    if rng.random() < 0.2:  # on a bench or the kerb: lower, as nuScenes' sitting_lying_down
                        o.sitting = True
                        o.size = (o.size[0], o.size[1] * 1.3, o.size[2] * 0.7)

    def add_crossing_pedestrians(self):
        """Pedestrians crossing the road near the cross streets and turning onto the far pavement."""
        rng, t_frames = self.rng, self.t_frames
        for c in self.crosses:
            for _ in range(rng.poisson(1.2 * self.cfg.density)):
                sw = c + rng.choice([-6.0, 6.0]) + rng.normal(0, 0.7)
                start_right = rng.random() < 0.5
                l0, l1 = (-8.8, 12.8) if start_right else (12.8, -8.8)
                turn_dir = rng.choice([-1.0, 1.0])
                l_cross = np.linspace(l0, l1, 60)
                s_cross = np.full_like(l_cross, sw) + rng.normal(0, 0.02, size=60).cumsum()
                tail_s = sw + turn_dir * np.linspace(0.5, 80.0, 100)
                tail_l = np.full_like(tail_s, l1)
                path = _sl_path(self.road, np.concatenate([s_cross, tail_s]), np.concatenate([l_cross, tail_l]))
                v = _speed_profile(rng, self.t_fine, 1.0, 1.8, p_stop=0.25, stop_dur=(2.0, 8.0), knot_dt=(2.0, 4.0))
                sig_rel, spd = self.along(v)
                t_mid = rng.uniform(t_frames[0] - 5, t_frames[-1] + 5)
                sig = sig_rel - np.interp(t_mid, t_frames, sig_rel) + 0.5 * abs(l1 - l0)
                self.add(_pick(rng, _PED_MIX), path, sig, spd)

    def lay_out_construction_zones(self):
        """Road works: a taper of cones into the lane, a row of barriers behind it along the
        kerb, and the zone's construction vehicles (parked, or creeping along the kerb).
        nuScenes val holds about one barrier or cone for every three cars."""
        rng = self.rng
        for _ in range(self.count(0.45, self.hi_s - self.lo_s)):
            s0 = rng.uniform(self.lo_s, self.hi_s)
            side = -1.0 if rng.random() < 0.7 else 1.0  # mostly on the ego's side
            kerb = -5.4 if side < 0 else 9.0
            n_cones = int(rng.integers(6, 20))
            spacing = rng.uniform(2.0, 4.0)
            taper = rng.uniform(0.0, 2.5)  # how far the cones reach into the lane
            for k in range(n_cones):
                s = s0 + spacing * k
                l_off = kerb - side * taper * min(1.0, k / 4.0) + rng.normal(0, 0.08)
                self.add_static("movable_object.trafficcone", _sl_path(self.road, [s, s + 0.5], [l_off, l_off]))
            n_bar = int(rng.integers(0, 12))
            for k in range(n_bar):
                s = s0 + 2.6 * k + rng.normal(0, 0.05)
                l_off = kerb + side * 0.7
                self.add_static("movable_object.barrier", _sl_path(self.road, [s, s + 0.5], [l_off, l_off]))
                self.objects[-1].yaw = self.objects[-1].yaw + math.pi / 2  # the long side (w) along the kerb
            self._construction_vehicles(s0, s0 + spacing * n_cones, kerb - side * 0.6)

    def _construction_vehicles(self, s_lo, s_hi, lateral):
        """The zone's construction vehicles: usually one parked inside it, sometimes one
        creeping along it (under 2 m/s), sometimes none."""
        rng = self.rng
        if rng.random() < 0.6:
            s = rng.uniform(s_lo, max(s_hi, s_lo + 1.0))
            self.add_static("vehicle.construction", _sl_path(self.road, [s, s + 0.5], [lateral, lateral]),
                            parked=True, rider=False, flip=rng.random() < 0.5)
            self.objects[-1].yaw = self.objects[-1].yaw + rng.normal(0, 0.2)
        if rng.random() < 0.25:
            v = _speed_profile(self.rng, self.t_fine, 0.0, 2.0, p_stop=0.3, stop_dur=(3.0, 8.0))
            sig_rel, spd = self.along(v)
            path = _road_path(self.road, s_lo - 20.0, s_hi + 200.0, lateral)
            self.add("vehicle.construction", path, sig_rel + rng.uniform(0, 20.0), spd)

    def line_kerbs_with_barriers(self):
        """Rows of barriers along the pavement edges, apart from the road works."""
        rng = self.rng
        for side_l in (-7.0, 11.0):
            for _ in range(self.count(0.25, self.hi_s - self.lo_s)):
                s0 = rng.uniform(self.lo_s, self.hi_s)
                for k in range(int(rng.integers(3, 14))):
                    path = _sl_path(self.road, [s0 + 2.6 * k, s0 + 2.6 * k + 0.5], [side_l, side_l])
                    self.add_static("movable_object.barrier", path)
                    self.objects[-1].yaw = self.objects[-1].yaw + math.pi / 2

    def drop_objects_never_in_range(self):
        """Keep the objects that come within range of the ego at some frame (draws nothing)."""
        ego = self.ego
        self.objects = [o for o in self.objects
                        if np.hypot(o.x - ego[:, 0], o.y - ego[:, 1]).min() <= self.cfg.annotation_range + 5]

    def build_clutter(self) -> np.ndarray:
        """Unannotated static boxes along both sides: buildings (with gaps at the cross
        streets), poles and trees."""
        rng, road, lo_s, hi_s = self.rng, self.road, self.lo_s, self.hi_s
        clutter = []
        for side, (l_in, depth) in ((-1, (-13.0, 7.0)), (1, (17.0, 7.0))):
            pos = lo_s - 80
            while pos < hi_s + 80:
                length = rng.uniform(15, 60)
                if not any(pos - 6 < c < pos + length + 6 for c in self.crosses):
                    s_mid = pos + length / 2
                    l_mid = l_in + side * depth / 2
                    x, y, h = road.world(s_mid, l_mid)
                    height = rng.uniform(5, 22)
                    clutter.append([x, y, height / 2, length, depth, height, h])
                pos += length + rng.uniform(2, 10)
            for kind, step, l_off, size in (("pole", 22.0, -7.6 if side < 0 else 11.6, (0.3, 0.3, 5.0)),
                                            ("tree", 27.0, -10.6 if side < 0 else 14.6, (1.4, 1.4, 5.5))):
                s = lo_s - 80 + rng.uniform(0, step)
                while s < hi_s + 80:
                    x, y, h = road.world(s, l_off)
                    clutter.append([x, y, size[2] / 2, size[0], size[1], size[2], h])
                    s += step * rng.uniform(0.7, 1.3)
        return np.asarray(clutter, dtype=np.float64).reshape(-1, 7)
