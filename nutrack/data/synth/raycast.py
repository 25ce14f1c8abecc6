"""Ray casting for the synthetic lidar (numba, nopython): the nearest hit of every ray of a
sweep among oriented boxes and the ground plane.

Imported lazily by :mod:`.lidar` (numba's import and the first compilation cost about a
second; ``cache=True`` keeps the compiled code between runs).
"""

from __future__ import annotations

import math

from numba import njit

__all__ = ["raycast"]

_EPS_DIR = 1e-12  # a ray direction component below this is parallel to the slab


@njit(cache=True, nogil=True)
def _column_span(cx, cy, hx, hy, c, s, olx, oly, sensor_yaw, az0, daz, n_cols):
    """The azimuth columns ``col_lo..col_hi`` (possibly past ``n_cols``, taken modulo) whose
    rays can meet the box centred at (cx, cy) relative to the sensor; all columns when the
    sensor is inside the box's footprint or the box spans the whole circle."""
    if abs(olx) <= hx and abs(oly) <= hy:
        return 0, n_cols - 1
    ac = math.atan2(cy, cx)
    lo = 1e9
    hi = -1e9
    for sx in (-1.0, 1.0):
        for sy in (-1.0, 1.0):
            px = cx + sx * hx * c - sy * hy * s
            py = cy + sx * hx * s + sy * hy * c
            d = math.atan2(py, px) - ac
            d = (d + math.pi) % (2.0 * math.pi) - math.pi
            lo = min(lo, d)
            hi = max(hi, d)
    base = ac - sensor_yaw - az0
    col_lo = int(math.floor((base + lo) / daz))
    col_hi = int(math.ceil((base + hi) / daz))
    if col_hi - col_lo + 1 > n_cols:
        return 0, n_cols - 1
    return col_lo, col_hi


@njit(cache=True, nogil=True)
def _clip_slab(o, d, h, tmin, tmax):
    """Clip the ray interval [tmin, tmax] to the slab |o + t d| <= h; (missed, tmin, tmax)."""
    if abs(d) < _EPS_DIR:
        return abs(o) > h, tmin, tmax
    t1 = (-h - o) / d
    t2 = (h - o) / d
    if t1 > t2:
        t1, t2 = t2, t1
    return False, max(tmin, t1), min(tmax, t2)


@njit(cache=True, nogil=True)
def _entry_distance(olx, oly, olz, dx, dy, dz, hx, hy, hz):
    """Where the ray from (olx, oly, olz) along (dx, dy, dz), both in the box frame, enters
    the box of half extents (hx, hy, hz): (hits, distance). Slab test, axis by axis."""
    tmin = -1e30
    tmax = 1e30
    miss, tmin, tmax = _clip_slab(olx, dx, hx, tmin, tmax)
    if not miss:
        miss, tmin, tmax = _clip_slab(oly, dy, hy, tmin, tmax)
    if not miss:
        miss, tmin, tmax = _clip_slab(olz, dz, hz, tmin, tmax)
    return (not miss) and tmax >= tmin, tmin


@njit(cache=True, nogil=True)
def _cast_at_box(m, box, ox, oy, oz, sensor_yaw, az0, n_cols, sin_e, cos_e, max_range, depth, hit, total):
    """The rays that meet box ``m``: count them in ``total[m]``, and keep the box as the
    ray's hit where it is nearer than what the ray hit so far."""
    nb = sin_e.shape[0]
    daz = 2.0 * math.pi / n_cols
    cx = box[0] - ox
    cy = box[1] - oy
    cz = box[2] - oz
    hx = 0.5 * box[3]
    hy = 0.5 * box[4]
    hz = 0.5 * box[5]
    c = math.cos(box[6])
    s = math.sin(box[6])
    # ray origin in the box frame
    olx = -(cx * c + cy * s)
    oly = -(-cx * s + cy * c)
    olz = -cz
    col_lo, col_hi = _column_span(cx, cy, hx, hy, c, s, olx, oly, sensor_yaw, az0, daz, n_cols)
    for ck in range(col_lo, col_hi + 1):
        col = ck % n_cols
        phi = sensor_yaw + az0 + col * daz
        cphi = math.cos(phi)
        sphi = math.sin(phi)
        # horizontal direction in the box frame
        hdx = cphi * c + sphi * s
        hdy = -cphi * s + sphi * c
        for b in range(nb):
            hits, t = _entry_distance(olx, oly, olz, cos_e[b] * hdx, cos_e[b] * hdy, sin_e[b], hx, hy, hz)
            if not hits or t <= 0.0 or t >= max_range:
                continue
            total[m] += 1
            r = col * nb + b
            if t < depth[r]:
                depth[r] = t
                hit[r] = m


@njit(cache=True, nogil=True)
def raycast(origin, sensor_yaw, az0, n_cols, sin_e, cos_e, boxes, max_range, ground_z, depth, hit, total):
    """Cast n_cols x beams rays from ``origin`` against oriented boxes and the ground plane.

    Ray r = col * beams + beam has world azimuth ``sensor_yaw + az0 + col * 2pi / n_cols``
    and elevation ``asin(sin_e[beam])``. Fills ``depth`` (range of the nearest hit, or
    ``max_range``), ``hit`` (box index, -1 ground, -2 nothing) and ``total[m]`` (rays that
    cross box m at all, occluded or not; for visibility).
    """
    nb = sin_e.shape[0]
    ox, oy, oz = origin[0], origin[1], origin[2]
    for m in range(boxes.shape[0]):
        _cast_at_box(m, boxes[m], ox, oy, oz, sensor_yaw, az0, n_cols, sin_e, cos_e, max_range, depth, hit, total)
    # the ground plane, behind every box
    for col in range(n_cols):
        for b in range(nb):
            if sin_e[b] < -1e-9:
                t = (ground_z - oz) / sin_e[b]
                r = col * nb + b
                if 0.0 < t < depth[r]:
                    depth[r] = t
                    hit[r] = -1
