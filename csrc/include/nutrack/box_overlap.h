// Overlap geometry of two rotated boxes, shared by the C++ loops, the CUDA kernels and (line
// for line, helper for helper) the numba twin in nutrack/ops/_numba_affinity.py.
//
// Only + - * / and comparisons (plus one correctly rounded sqrt for the centre distance): with
// FMA contraction off, every backend rounds every operation identically, so the affinities are
// bit-identical across backends. Keep the order of every operation when editing; the twin
// must change with it.
//
// A pair is ordered canonically before any geometry (frame_precedes: the lexicographically
// smaller frame goes first), so that affinity(a, b) == affinity(b, a) bit for bit. All BEV
// geometry is then done relative to the first box's centre: the second sits at d = centre_2 -
// centre_1 (and d of the swapped pair is exactly -d). Coordinates then have the size of the
// boxes (not of the global frame, where nuScenes centres reach 2 km and a float32 ulp is
// 1e-4 m), so areas keep full precision.
//
// BEV footprints are convex counter-clockwise quads. The intersection is P (first box) clipped
// by the four edge half-planes of Q (second box), Sutherland-Hodgman; the enclosing area for
// GIoU is the convex hull of the eight corners, the smallest convex set holding both boxes and
// what shapely's union(...).convex_hull gives, as Python trackers (SimpleTrack, Poly-MOT style)
// compute it. For boxes apart (most pairs of a scene) the hull comes from its two bridges;
// otherwise from Andrew's monotone chain over the sorted corners. Containment (every corner of
// one quad inside the other, edges inclusive) short-cuts both to the closed-form rectangle
// areas, so identical boxes give exactly 1 and a box inside another exactly the area ratio.
//
// Range: IoU in [0, 1] and GIoU in [-1, IoU] for every pair of valid boxes (sizes and centres
// within the bounds of nutrack/ops/_boxes.py, which keep every area, volume and hull a finite,
// nonzero float32), whatever rounding does to the corners: the intersection is clamped to
// [0, min(area_1, area_2)] (a box far below the float32 resolution at its offset collapses to a
// point or segment, whose clipped "area" means nothing), the z overlap to the lower height,
// and the enclosing area is at least the union. With x >= y > 0 and 0 <= o <= y in float32,
// fl(fl(x + y) - o) >= y >= o > 0, so o / union <= 1; and 0 <= fl(C - U) <= C gives the GIoU
// bound.
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

// A box's BEV footprint relative to the reference point (the first box's centre): its corners,
// counter-clockwise.
struct Footprint {
  float x[4], y[4];
};

NT_HD void footprint_of(const float* f, float ox, float oy, Footprint& q) {
  box_corners(f, ox, oy, q.x, q.y);
}

// A box's footprint about its own centre, as box_affinity takes it for the row box.
NT_HD void row_footprint(const float* f, Footprint& p) { footprint_of(f, 0.0f, 0.0f, p); }

// The corners of q in lexicographic (x, y) order, into (sx, sy): a 5-comparator sorting
// network. Lexicographic, so that the ties in x of axis-aligned boxes are ordered by y, as the
// monotone chain needs.
NT_HD void sort_corners(const Footprint& q, float* sx, float* sy) {
  for (int i = 0; i < 4; ++i) {
    sx[i] = q.x[i];
    sy[i] = q.y[i];
  }
  order_pair(sx, sy, 0, 1);
  order_pair(sx, sy, 2, 3);
  order_pair(sx, sy, 0, 2);
  order_pair(sx, sy, 1, 3);
  order_pair(sx, sy, 1, 2);
}

// Both sorted quads (psx, psy) and (qsx, qsy) as one sorted list of 8 points in (x, y): boxes
// apart along x (most pairs) just concatenate; otherwise Batcher's odd-even merge of the two
// sorted halves (9 comparators).
NT_HD void merge_corners(const float* psx, const float* psy, const float* qsx, const float* qsy,
                         float* x, float* y) {
  const bool q_first = qsx[3] < psx[0];
  for (int i = 0; i < 4; ++i) {
    x[i] = q_first ? qsx[i] : psx[i];
    y[i] = q_first ? qsy[i] : psy[i];
    x[4 + i] = q_first ? psx[i] : qsx[i];
    y[4 + i] = q_first ? psy[i] : qsy[i];
  }
  if (!q_first && !(psx[3] < qsx[0])) {  // x ranges overlap: merge
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
}

// Area of the convex hull of the corners of P and Q: the 8 points in lexicographic order, then
// Andrew's monotone chain. The top two chain entries stay in registers; collinear and repeated
// points are popped (side <= 0), so the chain holds distinct hull vertices.
NT_HD float hull_area(const Footprint& p, const Footprint& q) {
  float psx[4], psy[4], qsx[4], qsy[4], x[8], y[8];
  sort_corners(p, psx, psy);
  sort_corners(q, qsx, qsy);
  merge_corners(psx, psy, qsx, qsy, x, y);
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

// The corners (i, j) of the bridge P -> Q: extreme along the outward normal (nx, ny) (the
// caller's first guess), else along the normal of that first guess. False when neither is a
// hull edge.
NT_HD bool find_bridge(const HalfVectors& vp, const Footprint& p, const HalfVectors& vq,
                       const Footprint& q, float nx, float ny, int& i, int& j) {
  i = extreme_corner(vp.ax, vp.ay, vp.bx, vp.by, nx, ny);
  j = extreme_corner(vq.ax, vq.ay, vq.bx, vq.by, nx, ny);
  if (is_bridge(p.x, p.y, i, q.x, q.y, j)) return true;
  nx = q.y[j] - p.y[i];
  ny = -(q.x[j] - p.x[i]);
  i = extreme_corner(vp.ax, vp.ay, vp.bx, vp.by, nx, ny);
  j = extreme_corner(vq.ax, vq.ay, vq.bx, vq.by, nx, ny);
  return is_bridge(p.x, p.y, i, q.x, q.y, j);
}

// The hull area of boxes apart (Q at (dx, dy) from P) by their bridges, or -1 when a bridge is
// not found in two tries (then the caller takes hull_area). The bridge P -> Q has its outward
// normal to the right of its direction, first guessed as the right of d; Q -> P along -d.
NT_HD float apart_hull_area(const HalfVectors& va, const Footprint& p, const HalfVectors& vb,
                            const Footprint& q, float dx, float dy) {
  int i, j, k, l;
  if (!find_bridge(va, p, vb, q, dy, -dx, i, j)) return -1.0f;
  if (!find_bridge(vb, q, va, p, -dy, dx, k, l)) return -1.0f;
  float sum = chain_area2(p.x, p.y, l, i);
  sum = sum + (p.x[i] * q.y[j] - p.y[i] * q.x[j]);
  sum = sum + chain_area2(q.x, q.y, j, k);
  sum = sum + (q.x[k] * p.y[l] - q.y[k] * p.x[l]);
  return 0.5f * sum;
}

// ---- One pair, ordered canonically.

// True when frame f comes before frame g in lexicographic order of the columns cx .. s (rx and
// ry follow from them). Equal frames are the same box, for which the order does not matter.
NT_HD bool frame_precedes(const float* f, const float* g) {
  for (int k = 0; k < frame::rx; ++k) {
    if (f[k] < g[k]) return true;
    if (g[k] < f[k]) return false;
  }
  return false;
}

// The z overlap (clamped to the lower height, so that the volume overlap never exceeds either
// volume) and the enclosing z extent of two boxes, relative to the first one's centre.
struct ZExtents {
  float overlap, enclose;
};

NT_HD ZExtents z_extents(const float* f1, const float* f2) {
  const float dz = f2[frame::cz] - f1[frame::cz];
  const float top = dz + f2[frame::hz], bottom = dz - f2[frame::hz];
  const float overlap = min_f32(f1[frame::hz], top) - max_f32(-f1[frame::hz], bottom);
  const float lower = min_f32(f1[frame::hz] + f1[frame::hz], f2[frame::hz] + f2[frame::hz]);
  return ZExtents{min_f32(overlap, lower),
                  max_f32(f1[frame::hz], top) - min_f32(-f1[frame::hz], bottom)};
}

// 1: Q inside P, 2: P inside Q, 0: neither. Only the smaller footprint can be held: a box far
// below the float32 resolution at its offset collapses to a point or a segment, whose
// zero-length edges would otherwise "hold" anything.
NT_HD int containment(const Footprint& p, const Footprint& q, float area_p, float area_q) {
  if (area_q <= area_p && quad_holds(p.x, p.y, q.x, q.y)) return 1;
  if (area_p <= area_q && quad_holds(q.x, q.y, p.x, p.y)) return 2;
  return 0;
}

// Area of P ∩ Q, in [0, min(area_p, area_q)] whatever the rounding of the corners.
NT_HD float bev_intersection(const Footprint& p, const Footprint& q, int held, float area_p,
                             float area_q) {
  if (held == 1) return area_q;
  if (held == 2) return area_p;
  return max_f32(0.0f, min_f32(clip_area(p.x, p.y, q.x, q.y), min_f32(area_p, area_q)));
}

// Area of the convex hull of P and Q (Q at (dx, dy) from P's centre): the holder's area when
// one holds the other, the bridges when the boxes are apart, else the monotone chain.
NT_HD float enclosing_area(const float* f1, const Footprint& p, const float* f2,
                           const Footprint& q, int held, float area_p, float area_q,
                           bool bev_apart, float dx, float dy) {
  if (held == 1) return area_p;
  if (held == 2) return area_q;
  const float hull =
      bev_apart ? apart_hull_area(half_vectors(f1), p, half_vectors(f2), q, dx, dy) : -1.0f;
  return hull < 0.0f ? hull_area(p, q) : hull;  // overlapping bounds, or no bridge found
}

// The affinity of an ordered pair: box frame f2 sits at (dx, dy) = centre_2 - centre_1 from
// f1, whose footprint about its own centre is p1. `bev_apart`: the conservative BEV bounds
// are disjoint (then IoU metrics never get here).
template <int Metric>
NT_HD float ordered_affinity(const float* f1, const Footprint& p1, const float* f2, float dx,
                             float dy, bool bev_apart) {
  constexpr bool three_d = Metric == metric::iou_3d || Metric == metric::giou_3d;
  constexpr bool generalized = Metric == metric::giou_bev || Metric == metric::giou_3d;
  const ZExtents z = three_d ? z_extents(f1, f2) : ZExtents{1.0f, 1.0f};
  const bool apart = bev_apart || !(z.overlap > 0.0f);
  if (apart && !generalized) return 0.0f;

  const float area_1 = (f1[frame::hx] + f1[frame::hx]) * (f1[frame::hy] + f1[frame::hy]);
  const float area_2 = (f2[frame::hx] + f2[frame::hx]) * (f2[frame::hy] + f2[frame::hy]);
  Footprint q2;
  footprint_of(f2, dx, dy, q2);
  const int held = bev_apart ? 0 : containment(p1, q2, area_1, area_2);
  const float inter = apart ? 0.0f : bev_intersection(p1, q2, held, area_1, area_2);
  float overlap, total;  // intersection and union: areas (BEV) or volumes (3D)
  if (three_d) {
    const float vol_1 = area_1 * (f1[frame::hz] + f1[frame::hz]);
    const float vol_2 = area_2 * (f2[frame::hz] + f2[frame::hz]);
    overlap = apart ? 0.0f : inter * z.overlap;
    total = vol_1 + vol_2 - overlap;
  } else {
    overlap = inter;
    total = area_1 + area_2 - overlap;
  }
  const float iou = overlap / total;
  if (!generalized) return iou;

  const float hull = enclosing_area(f1, p1, f2, q2, held, area_1, area_2, bev_apart, dx, dy);
  // The union first: a hull lost to rounding never makes the enclosing region smaller.
  const float enclose = max_f32(total, three_d ? hull * z.enclose : hull);
  return iou - (enclose - total) / enclose;
}

// The pair in canonical order (frame_precedes), then ordered_affinity: the same operands,
// whichever box the caller names first. (dx, dy) = centre_b - centre_a; the swapped pair's is
// exactly its negation.
template <int Metric>
NT_HD float pair_affinity(const float* fa, const Footprint& pa, const float* fb, float dx,
                          float dy, bool bev_apart) {
  const bool swap = frame_precedes(fb, fa);
  Footprint pb;
  if (swap) row_footprint(fb, pb);
  // One call site, so that the compiler inlines one copy of the geometry.
  return ordered_affinity<Metric>(swap ? fb : fa, swap ? pb : pa, swap ? fa : fb,
                                  swap ? -dx : dx, swap ? -dy : dy, bev_apart);
}

// The affinity of box frames fa and fb under metric `Metric` (see nutrack/ops/affinity.py for
// the definitions), symmetric bit for bit. `pa` is row_footprint(fa) (the loops make it once
// per row). center_distance: BEV distance of the centres. bev_iou / iou_3d: the intersection
// over the union of BEV areas / volumes, in [0, 1]. giou_bev / giou_3d: IoU - (C - U) / C with
// C the hull area (times the enclosing z extent for 3D), in [-1, IoU].
template <int Metric>
NT_HD float box_affinity(const float* fa, const Footprint& pa, const float* fb) {
  const float dx = fb[frame::cx] - fa[frame::cx];
  const float dy = fb[frame::cy] - fa[frame::cy];
  if (Metric == metric::center_distance) return sqrtf(dx * dx + dy * dy);
  constexpr bool generalized = Metric == metric::giou_bev || Metric == metric::giou_3d;
  // Conservative BEV reject on the (inflated) axis-aligned bounds in the frames; symmetric.
  const bool bev_apart = abs_f32(dx) > fa[frame::rx] + fb[frame::rx] ||
                         abs_f32(dy) > fa[frame::ry] + fb[frame::ry];
  if (bev_apart && !generalized) return 0.0f;
  return pair_affinity<Metric>(fa, pa, fb, dx, dy, bev_apart);
}

}  // namespace nutrack
