// Overlap geometry of two rotated boxes, shared by the C++ loops, the CUDA kernels and (line
// for line) the numba twin in nutrack/ops/_numba_affinity.py.
//
// Only + - * / and comparisons (plus one correctly rounded sqrt for the centre distance): with
// FMA contraction off, every backend rounds every operation identically, so the affinities are
// bit-identical across backends. Keep the order of every operation when editing; the twin
// must change with it.
//
// All BEV geometry of a pair is done relative to box a's centre: b sits at d = centre_b -
// centre_a. Coordinates then have the size of the boxes (not of the global frame, where
// nuScenes centres reach 2 km and a float32 ulp is 1e-4 m), so areas keep full precision.
//
// BEV footprints are convex counter-clockwise quads. The intersection is P (box a) clipped by
// the four edge half-planes of Q (box b), Sutherland-Hodgman; the enclosing area for GIoU is
// the convex hull of the eight corners, the smallest convex set holding both boxes and what
// shapely's union(...).convex_hull gives, as Python trackers (SimpleTrack, Poly-MOT style)
// compute it. For boxes apart (most pairs of a scene) the hull comes from its two bridges;
// otherwise from Andrew's monotone chain over the sorted corners. Containment (every corner of
// one quad inside the other, edges inclusive) short-cuts both to the closed-form rectangle
// areas, so identical boxes give exactly 1 and a box inside another exactly the area ratio.
#pragma once

#include <math.h>

#include "nutrack/common.h"

namespace nutrack {

// Metric codes, in the order of nutrack.ops.affinity.METRICS.
namespace metric {
constexpr int center_distance = 0, bev_iou = 1, iou_3d = 2, giou_bev = 3, giou_3d = 4;
}

// Sutherland-Hodgman of a quad by four half-planes gives at most 8 vertices in exact
// arithmetic; rounding near a shared edge can add a few near-duplicates, and a write past the
// capacity is dropped rather than overflowing.
constexpr int kClipCapacity = 16;
// The monotone chain over 8 sorted points holds at most 2 * 8 - 1 entries.
constexpr int kHullCapacity = 16;

NT_HD float min_f32(float a, float b) { return b < a ? b : a; }
NT_HD float max_f32(float a, float b) { return b > a ? b : a; }

// Side of (px, py) relative to the directed line (ox, oy) + t (ex, ey): > 0 on the left.
NT_HD float side_of(float ex, float ey, float ox, float oy, float px, float py) {
  return ex * (py - oy) - ey * (px - ox);
}

// The BEV corners of box frame f, counter-clockwise (front-left, rear-left, rear-right,
// front-right), translated by (ox, oy). With (ox, oy) = (0, 0) they are the exact offsets, and
// the opposite corners are exact negations of each other.
NT_HD void box_corners(const float* f, float ox, float oy, float* x, float* y) {
  const float ax = f[frame::c] * f[frame::hx], ay = f[frame::s] * f[frame::hx];
  const float bx = -(f[frame::s] * f[frame::hy]), by = f[frame::c] * f[frame::hy];
  const float u0 = ax + bx, v0 = ay + by;  // + heading + left
  const float u1 = bx - ax, v1 = by - ay;  // - heading + left
  x[0] = ox + u0;
  y[0] = oy + v0;
  x[1] = ox + u1;
  y[1] = oy + v1;
  x[2] = ox - u0;
  y[2] = oy - v0;
  x[3] = ox - u1;
  y[3] = oy - v1;
}

// True when every corner of P lies in the counter-clockwise quad Q, edges inclusive.
NT_HD bool quad_holds(const float* qx, const float* qy, const float* px, const float* py) {
  for (int k = 0; k < 4; ++k) {
    const int k1 = (k + 1) & 3;
    const float ex = qx[k1] - qx[k], ey = qy[k1] - qy[k];
    for (int i = 0; i < 4; ++i) {
      if (side_of(ex, ey, qx[k], qy[k], px[i], py[i]) < 0.0f) return false;
    }
  }
  return true;
}

// Twice the signed area of the polygon (x, y)[0..n), fanned from vertex 0.
NT_HD float fan_area2(const float* x, const float* y, int n) {
  float sum = 0.0f;
  for (int i = 1; i + 1 < n; ++i) {
    sum = sum + ((x[i] - x[0]) * (y[i + 1] - y[0]) - (y[i] - y[0]) * (x[i + 1] - x[0]));
  }
  return sum;
}

// Area of P ∩ Q for counter-clockwise quads P and Q: P clipped by each edge of Q in turn. A
// vertex is kept when it is on or left of the edge; a crossing point is added only where the
// side changes strictly (from > 0 to < 0 or back), so vertices on an edge are not doubled.
NT_HD float clip_area(const float* px, const float* py, const float* qx, const float* qy) {
  float xs[2][kClipCapacity], ys[2][kClipCapacity];
  for (int i = 0; i < 4; ++i) {
    xs[0][i] = px[i];
    ys[0][i] = py[i];
  }
  int n = 4, cur = 0;
  for (int k = 0; k < 4 && n > 0; ++k) {
    const int k1 = (k + 1) & 3;
    const float ex = qx[k1] - qx[k], ey = qy[k1] - qy[k];
    const float* sx = xs[cur];
    const float* sy = ys[cur];
    float* dx = xs[cur ^ 1];
    float* dy = ys[cur ^ 1];
    int m = 0;
    float x0 = sx[n - 1], y0 = sy[n - 1];
    float s0 = side_of(ex, ey, qx[k], qy[k], x0, y0);
    for (int i = 0; i < n; ++i) {
      const float x1 = sx[i], y1 = sy[i];
      const float s1 = side_of(ex, ey, qx[k], qy[k], x1, y1);
      if ((s0 > 0.0f && s1 < 0.0f) || (s0 < 0.0f && s1 > 0.0f)) {
        const float t = s0 / (s0 - s1);
        if (m < kClipCapacity) {
          dx[m] = x0 + t * (x1 - x0);
          dy[m] = y0 + t * (y1 - y0);
          ++m;
        }
      }
      if (s1 >= 0.0f && m < kClipCapacity) {
        dx[m] = x1;
        dy[m] = y1;
        ++m;
      }
      x0 = x1;
      y0 = y1;
      s0 = s1;
    }
    n = m;
    cur ^= 1;
  }
  if (n < 3) return 0.0f;
  return 0.5f * fan_area2(xs[cur], ys[cur], n);
}

// Orders points i and j lexicographically by (x, y).
NT_HD void order_pair(float* x, float* y, int i, int j) {
  if (x[j] < x[i] || (x[j] == x[i] && y[j] < y[i])) {
    const float tx = x[i], ty = y[i];
    x[i] = x[j];
    y[i] = y[j];
    x[j] = tx;
    y[j] = ty;
  }
}

// A box's BEV footprint relative to the reference point (box a's centre): the corners
// counter-clockwise, and the same corners in lexicographic (x, y) order (for the hull).
struct Footprint {
  float x[4], y[4];    // counter-clockwise
  float sx[4], sy[4];  // sorted; filled by sort_corners
};

NT_HD void footprint_of(const float* f, float ox, float oy, Footprint& q) {
  box_corners(f, ox, oy, q.x, q.y);
}

// Fills q.sx, q.sy: a 5-comparator sorting network. Lexicographic, so that the ties in x of
// axis-aligned boxes are ordered by y, as the monotone chain needs.
NT_HD void sort_corners(Footprint& q) {
  for (int i = 0; i < 4; ++i) {
    q.sx[i] = q.x[i];
    q.sy[i] = q.y[i];
  }
  order_pair(q.sx, q.sy, 0, 1);
  order_pair(q.sx, q.sy, 2, 3);
  order_pair(q.sx, q.sy, 0, 2);
  order_pair(q.sx, q.sy, 1, 3);
  order_pair(q.sx, q.sy, 1, 2);
}

// Area of the convex hull of the corners of P and Q (both sorted): the 8 points in
// lexicographic order, then Andrew's monotone chain. Boxes apart along x (most pairs) just
// concatenate; otherwise Batcher's odd-even merge of the two sorted halves (9 comparators).
// The top two chain entries stay in registers; collinear and repeated points are popped
// (side <= 0), so the chain holds distinct hull vertices.
NT_HD float hull_area(const Footprint& p, const Footprint& q) {
  float x[8], y[8];
  const bool q_first = q.sx[3] < p.sx[0];
  for (int i = 0; i < 4; ++i) {
    x[i] = q_first ? q.sx[i] : p.sx[i];
    y[i] = q_first ? q.sy[i] : p.sy[i];
    x[4 + i] = q_first ? p.sx[i] : q.sx[i];
    y[4 + i] = q_first ? p.sy[i] : q.sy[i];
  }
  if (!q_first && !(p.sx[3] < q.sx[0])) {  // x ranges overlap: merge
    order_pair(x, y, 0, 4);
    order_pair(x, y, 1, 5);
    order_pair(x, y, 2, 6);
    order_pair(x, y, 3, 7);
    order_pair(x, y, 2, 4);
    order_pair(x, y, 3, 5);
    order_pair(x, y, 1, 2);
    order_pair(x, y, 3, 4);
    order_pair(x, y, 5, 6);
  }
  float hx[kHullCapacity], hy[kHullCapacity];  // the chain; entry k - 1 is (bx, by)
  hx[0] = x[0];
  hy[0] = y[0];
  float ax = x[0], ay = y[0], bx = x[1], by = y[1];  // entries k - 2 and k - 1
  int k = 2;
  for (int i = 2; i < 8; ++i) {  // lower chain, left to right
    while (k >= 2 && side_of(bx - ax, by - ay, ax, ay, x[i], y[i]) <= 0.0f) {
      --k;
      bx = ax;
      by = ay;
      if (k >= 2) {
        ax = hx[k - 2];
        ay = hy[k - 2];
      }
    }
    hx[k - 1] = bx;
    hy[k - 1] = by;
    ax = bx;
    ay = by;
    bx = x[i];
    by = y[i];
    ++k;
  }
  const int lower = k + 1;
  for (int i = 6; i >= 0; --i) {  // upper chain, right to left
    while (k >= lower && side_of(bx - ax, by - ay, ax, ay, x[i], y[i]) <= 0.0f) {
      --k;
      bx = ax;
      by = ay;
      ax = hx[k - 2];
      ay = hy[k - 2];
    }
    hx[k - 1] = bx;
    hy[k - 1] = by;
    ax = bx;
    ay = by;
    bx = x[i];
    by = y[i];
    ++k;
  }
  // Entries 0 .. k - 2 are the hull, counter-clockwise; entry k - 1 repeats entry 0.
  return 0.5f * fan_area2(hx, hy, k - 1);
}

// ---- The hull of two boxes apart, through its two bridges (the fast path for most pairs).
//
// When the boxes are apart, the hull is: P's corners from p_l to p_i (counter-clockwise), the
// bridge p_i -> q_j, Q's corners from q_j to q_k, the bridge q_k -> p_l. A bridge's end points
// are the corners extreme along its outward normal; the normal of the centre line (d) is
// tried first, then the normal of that first guess. Each is accepted only when it is a hull
// edge (every corner on or left of it), so a wrong guess costs a fall back to the general
// path, never a wrong area. Branch-light and about twice as fast as sorting + the chain.

// Index of the corner of a box with half vectors (ax, ay) (heading) and (bx, by) (left) that is
// extreme in direction (nx, ny), in box_corners order (0 = +a+b, 1 = -a+b, 2 = -a-b,
// 3 = +a-b); a tie (an edge normal to n) takes the + side.
NT_HD int extreme_corner(float ax, float ay, float bx, float by, float nx, float ny) {
  const bool pa = nx * ax + ny * ay >= 0.0f;
  const bool pb = nx * bx + ny * by >= 0.0f;
  return pb ? (pa ? 0 : 1) : (pa ? 3 : 2);
}

// True when p_i -> q_j is a hull edge of the two counter-clockwise quads: for convex quads it
// suffices that the neighbours of p_i and of q_j lie on or left of it.
NT_HD bool is_bridge(const float* px, const float* py, int i, const float* qx, const float* qy,
                     int j) {
  const float ex = qx[j] - px[i], ey = qy[j] - py[i];
  return side_of(ex, ey, px[i], py[i], px[(i + 1) & 3], py[(i + 1) & 3]) >= 0.0f &&
         side_of(ex, ey, px[i], py[i], px[(i + 3) & 3], py[(i + 3) & 3]) >= 0.0f &&
         side_of(ex, ey, px[i], py[i], qx[(j + 1) & 3], qy[(j + 1) & 3]) >= 0.0f &&
         side_of(ex, ey, px[i], py[i], qx[(j + 3) & 3], qy[(j + 3) & 3]) >= 0.0f;
}

// Twice the shoelace terms (about the origin) of the counter-clockwise chain of quad corners
// from `from` to `to` (0 to 3 edges), without data-dependent branches.
NT_HD float chain_area2(const float* x, const float* y, int from, int to) {
  const int span = (to - from) & 3;
  float sum = 0.0f;
  for (int e = 0; e < 3; ++e) {
    const int k = (from + e) & 3, k1 = (k + 1) & 3;
    const float term = x[k] * y[k1] - y[k] * x[k1];
    sum = sum + (e < span ? term : 0.0f);
  }
  return sum;
}

// The half vectors of box_corners(): heading (ax, ay) and left (bx, by).
struct HalfVectors {
  float ax, ay, bx, by;
};

NT_HD HalfVectors half_vectors(const float* f) {
  return HalfVectors{f[frame::c] * f[frame::hx], f[frame::s] * f[frame::hx],
                     -(f[frame::s] * f[frame::hy]), f[frame::c] * f[frame::hy]};
}

// The hull area of boxes apart (b at (dx, dy) from a) by their bridges, or -1 when a bridge is
// not found in two tries (then the caller takes hull_area).
NT_HD float apart_hull_area(const HalfVectors& va, const Footprint& p, const HalfVectors& vb,
                            const Footprint& q, float dx, float dy) {
  // Bridge P -> Q: its outward normal is to the right of its direction, first guessed as d.
  float nx = dy, ny = -dx;
  int i = extreme_corner(va.ax, va.ay, va.bx, va.by, nx, ny);
  int j = extreme_corner(vb.ax, vb.ay, vb.bx, vb.by, nx, ny);
  if (!is_bridge(p.x, p.y, i, q.x, q.y, j)) {
    nx = q.y[j] - p.y[i];
    ny = -(q.x[j] - p.x[i]);
    i = extreme_corner(va.ax, va.ay, va.bx, va.by, nx, ny);
    j = extreme_corner(vb.ax, vb.ay, vb.bx, vb.by, nx, ny);
    if (!is_bridge(p.x, p.y, i, q.x, q.y, j)) return -1.0f;
  }
  // Bridge Q -> P, first guessed along -d.
  nx = -dy;
  ny = dx;
  int k = extreme_corner(vb.ax, vb.ay, vb.bx, vb.by, nx, ny);
  int l = extreme_corner(va.ax, va.ay, va.bx, va.by, nx, ny);
  if (!is_bridge(q.x, q.y, k, p.x, p.y, l)) {
    nx = p.y[l] - q.y[k];
    ny = -(p.x[l] - q.x[k]);
    k = extreme_corner(vb.ax, vb.ay, vb.bx, vb.by, nx, ny);
    l = extreme_corner(va.ax, va.ay, va.bx, va.by, nx, ny);
    if (!is_bridge(q.x, q.y, k, p.x, p.y, l)) return -1.0f;
  }
  float sum = chain_area2(p.x, p.y, l, i);
  sum = sum + (p.x[i] * q.y[j] - p.y[i] * q.x[j]);
  sum = sum + chain_area2(q.x, q.y, j, k);
  sum = sum + (q.x[k] * p.y[l] - q.y[k] * p.x[l]);
  return 0.5f * sum;
}

// The affinity of box frames fa and fb under metric `Metric` (see nutrack/ops/affinity.py for
// the definitions). `pa` is box a's footprint_of(fa, 0, 0) with sort_corners (the loops make it
// once per row). center_distance: BEV distance of the centres. bev_iou / iou_3d: the
// intersection over the union of BEV areas / volumes, in [0, 1]. giou_bev / giou_3d:
// IoU - (C - U) / C with C the hull area (times the enclosing z extent for 3D), in (-1, IoU].
template <int Metric>
NT_HD float box_affinity(const float* fa, const Footprint& pa, const float* fb) {
  const float dx = fb[frame::cx] - fa[frame::cx];
  const float dy = fb[frame::cy] - fa[frame::cy];
  if (Metric == metric::center_distance) return sqrtf(dx * dx + dy * dy);
  constexpr bool three_d = Metric == metric::iou_3d || Metric == metric::giou_3d;
  constexpr bool generalized = Metric == metric::giou_bev || Metric == metric::giou_3d;

  // z extents relative to a's centre: a spans [-hz_a, hz_a], b spans [bottom, top].
  float z_overlap = 1.0f, z_enclose = 1.0f;
  if (three_d) {
    const float dz = fb[frame::cz] - fa[frame::cz];
    const float top = dz + fb[frame::hz], bottom = dz - fb[frame::hz];
    z_overlap = min_f32(fa[frame::hz], top) - max_f32(-fa[frame::hz], bottom);
    z_enclose = max_f32(fa[frame::hz], top) - min_f32(-fa[frame::hz], bottom);
  }
  // Conservative BEV reject on the (inflated) axis-aligned bounds in the frames.
  const bool bev_apart = abs_f32(dx) > fa[frame::rx] + fb[frame::rx] ||
                         abs_f32(dy) > fa[frame::ry] + fb[frame::ry];
  const bool apart = bev_apart || !(z_overlap > 0.0f);
  if (apart && !generalized) return 0.0f;

  const float area_a = (fa[frame::hx] + fa[frame::hx]) * (fa[frame::hy] + fa[frame::hy]);
  const float area_b = (fb[frame::hx] + fb[frame::hx]) * (fb[frame::hy] + fb[frame::hy]);
  Footprint qb;
  footprint_of(fb, dx, dy, qb);
  // 1: b's footprint inside a's, 2: a's inside b's, 0: neither (or BEV apart).
  int held = 0;
  if (!bev_apart) {
    if (quad_holds(pa.x, pa.y, qb.x, qb.y)) {
      held = 1;
    } else if (quad_holds(qb.x, qb.y, pa.x, pa.y)) {
      held = 2;
    }
  }
  float inter = 0.0f;  // BEV intersection area
  if (!apart) {
    if (held == 1) {
      inter = area_b;
    } else if (held == 2) {
      inter = area_a;
    } else {
      inter = max_f32(0.0f, min_f32(clip_area(pa.x, pa.y, qb.x, qb.y), min_f32(area_a, area_b)));
    }
  }
  float overlap, total;  // intersection and union: areas (BEV) or volumes (3D)
  if (three_d) {
    const float vol_a = area_a * (fa[frame::hz] + fa[frame::hz]);
    const float vol_b = area_b * (fb[frame::hz] + fb[frame::hz]);
    overlap = apart ? 0.0f : inter * z_overlap;
    total = vol_a + vol_b - overlap;
  } else {
    overlap = inter;
    total = area_a + area_b - overlap;
  }
  const float iou = overlap / total;
  if (!generalized) return iou;

  float hull;
  if (held == 1) {
    hull = area_a;
  } else if (held == 2) {
    hull = area_b;
  } else {
    hull = bev_apart ? apart_hull_area(half_vectors(fa), pa, half_vectors(fb), qb, dx, dy) : -1.0f;
    if (hull < 0.0f) {  // overlapping bounds, or no bridge found
      sort_corners(qb);
      hull = hull_area(pa, qb);
    }
  }
  const float enclose = max_f32(three_d ? hull * z_enclose : hull, total);
  return iou - (enclose - total) / enclose;
}

// Box a's footprint for box_affinity: corners relative to its own centre, sorted.
NT_HD void row_footprint(const float* fa, Footprint& pa) {
  footprint_of(fa, 0.0f, 0.0f, pa);
  sort_corners(pa);
}

}  // namespace nutrack
