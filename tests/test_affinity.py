"""pairwise_affinity: every metric against shapely (intersection, union, convex hull) and a
closed form for axis-aligned boxes, on random boxes and the known hard cases; the backends bit
for bit against each other; class masking, empty and odd inputs, errors; properties."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nutrack.ops
from nutrack.ops import _backend, pairwise_affinity
from nutrack.ops.affinity import DEFAULT_FILL, METRICS
from tests._helpers import HOST_BACKENDS, random_boxes, requires_cuda

IOU_METRICS = ("bev_iou", "iou_3d")
GIOU_METRICS = ("giou_bev", "giou_3d")
OVERLAP_METRICS = IOU_METRICS + GIOU_METRICS


# ----------------------------------------------------------------------------- references
def _polygons(boxes: np.ndarray):
    """shapely footprints of (M, 7) boxes, in float64."""
    import shapely

    b = np.asarray(boxes, dtype=np.float64)
    c, s = np.cos(b[:, 6:7]), np.sin(b[:, 6:7])
    lx = np.array([1.0, -1.0, -1.0, 1.0]) * b[:, 3:4] / 2
    ly = np.array([1.0, 1.0, -1.0, -1.0]) * b[:, 4:5] / 2
    x = b[:, 0:1] + c * lx - s * ly
    y = b[:, 1:2] + s * lx + c * ly
    return shapely.polygons(np.stack([x, y], axis=-1))


def shapely_reference(boxes_a: np.ndarray, boxes_b: np.ndarray, metric: str) -> np.ndarray:
    """(M, N) float64: the metric from shapely's intersection, areas and convex hull."""
    import shapely

    a = np.asarray(boxes_a, dtype=np.float64)[:, None]
    b = np.asarray(boxes_b, dtype=np.float64)[None, :]
    if metric == "center_distance":
        return np.hypot(b[..., 0] - a[..., 0], b[..., 1] - a[..., 1])
    pa, pb = _polygons(boxes_a)[:, None], _polygons(boxes_b)[None, :]
    inter = shapely.area(shapely.intersection(pa, pb))
    area_a, area_b = a[..., 3] * a[..., 4], b[..., 3] * b[..., 4]
    hull = shapely.area(shapely.convex_hull(shapely.union(pa, pb)))
    if metric in ("bev_iou", "giou_bev"):
        union = area_a + area_b - inter
        enclose = hull
    else:
        top = np.minimum(a[..., 2] + a[..., 5] / 2, b[..., 2] + b[..., 5] / 2)
        bottom = np.maximum(a[..., 2] - a[..., 5] / 2, b[..., 2] - b[..., 5] / 2)
        inter = inter * np.clip(top - bottom, 0, None)
        union = area_a * a[..., 5] + area_b * b[..., 5] - inter
        z_enclose = (np.maximum(a[..., 2] + a[..., 5] / 2, b[..., 2] + b[..., 5] / 2)
                     - np.minimum(a[..., 2] - a[..., 5] / 2, b[..., 2] - b[..., 5] / 2))
        enclose = hull * z_enclose
    iou = inter / union
    return iou if metric in IOU_METRICS else iou - (enclose - union) / enclose


def _shapely_giou(a: np.ndarray, b: np.ndarray, metric: str) -> np.ndarray:
    """(M,) GIoU of the pairs (a[i], b[i]), written out from shapely's polygons: the union
    and its convex hull, in float64 (independent of shapely_reference's matrix code)."""
    import shapely

    pa, pb = _polygons(a), _polygons(b)
    union = shapely.union(pa, pb)
    inter, enclose = shapely.area(shapely.intersection(pa, pb)), shapely.area(shapely.convex_hull(union))
    united = shapely.area(union)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    if metric == "giou_3d":
        top = np.minimum(a64[:, 2] + a64[:, 5] / 2, b64[:, 2] + b64[:, 5] / 2)
        bottom = np.maximum(a64[:, 2] - a64[:, 5] / 2, b64[:, 2] - b64[:, 5] / 2)
        inter = inter * np.clip(top - bottom, 0, None)
        united = shapely.area(pa) * a64[:, 5] + shapely.area(pb) * b64[:, 5] - inter
        enclose = enclose * (np.maximum(a64[:, 2] + a64[:, 5] / 2, b64[:, 2] + b64[:, 5] / 2)
                             - np.minimum(a64[:, 2] - a64[:, 5] / 2, b64[:, 2] - b64[:, 5] / 2))
    return inter / united - (enclose - united) / enclose


def _corner_cut(lo_x_a, lo_y_a, lo_x_b, lo_y_b):
    """Area cut from the (min x, min y) corner of the enclosing box of two axis-aligned
    rectangles by their convex hull: the right triangle between the corner, the lowest point
    on the left side and the leftmost point on the bottom side (0 when one box holds both)."""
    x0, y0 = np.minimum(lo_x_a, lo_x_b), np.minimum(lo_y_a, lo_y_b)
    lowest_on_left = np.minimum(np.where(lo_x_a == x0, lo_y_a, np.inf), np.where(lo_x_b == x0, lo_y_b, np.inf))
    leftmost_on_bottom = np.minimum(np.where(lo_y_a == y0, lo_x_a, np.inf), np.where(lo_y_b == y0, lo_x_b, np.inf))
    return 0.5 * (lowest_on_left - y0) * (leftmost_on_bottom - x0)


def axis_aligned_reference(boxes_a: np.ndarray, boxes_b: np.ndarray, metric: str) -> np.ndarray:
    """Closed form for yaw == 0: overlaps are products of interval overlaps; the hull is the
    enclosing box minus a right triangle at each corner that neither box fills."""
    a = np.asarray(boxes_a, dtype=np.float64)[:, None]
    b = np.asarray(boxes_b, dtype=np.float64)[None, :]
    lo_a, hi_a = a[..., :3] - a[..., 3:6] / 2, a[..., :3] + a[..., 3:6] / 2
    lo_b, hi_b = b[..., :3] - b[..., 3:6] / 2, b[..., :3] + b[..., 3:6] / 2
    overlap = np.clip(np.minimum(hi_a, hi_b) - np.maximum(lo_a, lo_b), 0, None)
    extent = np.maximum(hi_a, hi_b) - np.minimum(lo_a, lo_b)
    hull = extent[..., 0] * extent[..., 1]
    for sx in (1, -1):  # mirror x and/or y so that every corner is the (min, min) one
        for sy in (1, -1):
            lx_a, lx_b = (lo_a[..., 0], lo_b[..., 0]) if sx == 1 else (-hi_a[..., 0], -hi_b[..., 0])
            ly_a, ly_b = (lo_a[..., 1], lo_b[..., 1]) if sy == 1 else (-hi_a[..., 1], -hi_b[..., 1])
            hull = hull - _corner_cut(lx_a, ly_a, lx_b, ly_b)
    area_a, area_b = a[..., 3] * a[..., 4], b[..., 3] * b[..., 4]
    if metric in ("bev_iou", "giou_bev"):
        inter = overlap[..., 0] * overlap[..., 1]
        union = area_a + area_b - inter
        enclose = hull
    else:
        inter = overlap[..., 0] * overlap[..., 1] * overlap[..., 2]
        union = area_a * a[..., 5] + area_b * b[..., 5] - inter
        enclose = hull * extent[..., 2]
    iou = inter / union
    return iou if metric in IOU_METRICS else iou - (enclose - union) / enclose


# ----------------------------------------------------------------------------- cases
def _place(boxes: np.ndarray, local: np.ndarray, yaw_offset=0.0, size=None) -> np.ndarray:
    """Boxes at `local` (x, y in each box's own frame, in units of its half extents), in
    float64, rounded to float32 once at the end."""
    b = boxes.astype(np.float64)
    out = b.copy()
    ox, oy = local[:, 0] * b[:, 3] / 2, local[:, 1] * b[:, 4] / 2
    c, s = np.cos(b[:, 6]), np.sin(b[:, 6])
    out[:, 0] = b[:, 0] + c * ox - s * oy
    out[:, 1] = b[:, 1] + s * ox + c * oy
    out[:, 6] = b[:, 6] + yaw_offset
    if size is not None:
        out[:, 3:6] = size
    return out.astype(np.float32)


def case(name: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    if name == "random":
        return random_boxes(rng, 40, extent=5), random_boxes(rng, 50, extent=5)
    if name == "far_from_origin":  # nuScenes global coordinates reach ~2 km
        a, b = random_boxes(rng, 30, extent=4), random_boxes(rng, 30, extent=4)
        offset = np.array([1800.0, -1200.0, 0, 0, 0, 0, 0], np.float32)
        return a + offset, b + offset
    if name == "shared_edges":  # side by side along either axis, same yaw
        a = random_boxes(rng, 24, extent=20)
        local = np.array([[2.0, 0.0], [-2.0, 0.0], [0.0, 2.0], [0.0, -2.0]])[rng.integers(0, 4, 24)]
        return a, _place(a, local)
    if name == "shared_corners":
        a = random_boxes(rng, 24, extent=20)
        local = np.array([[2.0, 2.0], [-2.0, 2.0], [2.0, -2.0], [-2.0, -2.0]])[rng.integers(0, 4, 24)]
        return a, _place(a, local)
    if name == "nested":  # one inside the other, any yaw; and concentric, same yaw
        a = random_boxes(rng, 24, extent=20, size_range=(3.0, 6.0))
        inner = _place(a, rng.uniform(-0.3, 0.3, (24, 2)), yaw_offset=rng.uniform(-np.pi, np.pi, 24),
                       size=rng.uniform(0.2, 0.8, (24, 3)))
        concentric = a.copy()
        concentric[:, 3:6] *= np.float32(0.5)
        return np.concatenate([a, a]), np.concatenate([inner, concentric])
    if name == "offset_1mm":
        a = random_boxes(rng, 24, extent=20)
        b = a.copy()
        b[:12, :2] += np.float32(1e-3) * rng.choice([-1, 1], (12, 2)).astype(np.float32)
        b[12:, 6] += np.float32(1e-3)
        return a, b
    if name == "yaw_plus_pi":  # the same footprint
        a = random_boxes(rng, 24, extent=20)
        b = a.copy()
        b[:, 6] = (a[:, 6].astype(np.float64) + rng.choice([np.pi, -np.pi], 24)).astype(np.float32)
        return a, b
    if name == "yaw_multiples_of_half_pi":  # dyadic boxes: corners on shared lines
        a = random_boxes(rng, 30, extent=4)
        a[:, :6] = np.round(a[:, :6] * 4) / 4
        a[:, 6] = rng.integers(-4, 5, 30) * (np.pi / 2)
        return a, a[rng.permutation(30)]
    if name == "identical":
        a = random_boxes(rng, 30, extent=20)
        return a, a.copy()
    if name == "touching":  # faces on exactly representable lines (yaw 0), BEV and z
        a = np.round(random_boxes(rng, 24, extent=10) * 4) / 4
        a[:, 3:6] = np.maximum(a[:, 3:6], 0.5)
        a[:, 6] = 0.0
        b = a.copy()
        axis = rng.integers(0, 3, 24)
        sign = rng.choice([-1.0, 1.0], 24)
        b[np.arange(24), axis] += (sign * a[np.arange(24), 3 + axis]).astype(np.float32)
        return a, b
    if name == "apart":  # the hull-by-bridges path: all distances, aligned rows, quarter turns
        a = random_boxes(rng, 40, extent=15, size_range=(0.3, 6))
        b = random_boxes(rng, 40, extent=15, size_range=(0.3, 6))
        a[:10, 1] = b[:10, 1] = 5.0  # rows: edges on one line, the same or opposite heading
        a[:10, 4] = b[:10, 4] = 2.0
        a[:10, 6] = 0.3
        b[:10, 6] = np.float32(0.3 + np.pi)
        a[10:20, 6] = rng.integers(-4, 5, 10) * (np.pi / 2)
        b[10:20, 6] = rng.integers(-4, 5, 10) * (np.pi / 2)
        a[10:20, :6] = np.round(a[10:20, :6] * 2) / 2 + [0, 0, 0, 0.5, 0.5, 0.5]
        b[10:20, :6] = np.round(b[10:20, :6] * 2) / 2 + [0, 0, 0, 0.5, 0.5, 0.5]
        return a, b
    if name == "far_apart":
        a = random_boxes(rng, 20, extent=5)
        b = random_boxes(rng, 20, extent=5)
        b[:, 0] += 400.0
        return a, b
    if name == "tiny_and_huge":
        a = random_boxes(rng, 20, extent=5, size_range=(0.01, 0.05))
        b = random_boxes(rng, 20, extent=5, size_range=(20.0, 60.0))
        return np.concatenate([a, b]), np.concatenate([b, a])
    raise KeyError(name)


CASES = ["random", "far_from_origin", "shared_edges", "shared_corners", "nested", "offset_1mm",
         "yaw_plus_pi", "yaw_multiples_of_half_pi", "identical", "touching", "apart", "far_apart",
         "tiny_and_huge"]


# ----------------------------------------------------------------------------- outside references
@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("name", CASES)
def test_agrees_with_shapely(name, metric):
    a, b = case(name)
    expected = shapely_reference(a, b, metric)
    got = pairwise_affinity(a, b, metric)
    assert got.shape == (len(a), len(b)) and got.dtype == np.float32
    if metric == "center_distance":
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-5)
    else:
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("metric", OVERLAP_METRICS)
def test_axis_aligned_closed_form(metric):
    rng = np.random.default_rng(7)
    a = random_boxes(rng, 40, extent=3)
    b = random_boxes(rng, 40, extent=3)
    b[:10] = a[:10]
    b[:10, :3] += np.float32(0.25)  # overlapping in x, y and z
    a[:, 6] = b[:, 6] = 0.0
    expected = axis_aligned_reference(a, b, metric)
    got = pairwise_affinity(a, b, metric)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    # The closed form is itself right: it agrees with shapely.
    np.testing.assert_allclose(expected, shapely_reference(a, b, metric), rtol=0, atol=1e-9)
    # The first ten pairs overlap on every axis, so they exercise the clipping and the hull:
    # a positive IoU, and for GIoU the hull of shapely's union, strictly above the union.
    overlapping = got[:10, :10].diagonal()
    iou = pairwise_affinity(a[:10], b[:10], "iou_3d" if "3d" in metric else "bev_iou").diagonal()
    assert (iou > 0).all()
    if metric in GIOU_METRICS:
        np.testing.assert_allclose(overlapping, _shapely_giou(a[:10], b[:10], metric), atol=1e-5)
        assert (overlapping < iou).all()  # half-overlapping boxes: the hull exceeds the union


def test_axis_aligned_golden_values():
    # a: x 0..2, y 0..2, z 0..2; b: x 1..3, y 1..3, z 1..3 (half overlap on every axis).
    a = np.array([[1, 1, 1, 2, 2, 2, 0]], np.float32)
    b = np.array([[2, 2, 2, 2, 2, 2, 0]], np.float32)
    # BEV: inter 1, union 7, hull = 3x3 box minus two corner triangles of 1/2 = 8.
    # 3D: inter 1, union 15, enclosing = hull 8 x z extent 3 = 24.
    expected = {"bev_iou": 1 / 7, "giou_bev": 1 / 7 - (8 - 7) / 8, "iou_3d": 1 / 15,
                "giou_3d": 1 / 15 - (24 - 15) / 24, "center_distance": math.sqrt(2)}
    for backend in HOST_BACKENDS:
        for metric, value in expected.items():
            assert pairwise_affinity(a, b, metric, backend=backend)[0, 0] == pytest.approx(value, abs=1e-6)


# ----------------------------------------------------------------------------- exact cases
@pytest.mark.parametrize("backend", HOST_BACKENDS)
def test_identical_and_flipped_boxes_give_one(backend):
    a, _ = case("identical")
    for metric in OVERLAP_METRICS:
        assert (pairwise_affinity(a, a, metric, backend=backend).diagonal() == 1.0).all()
    flipped_a, flipped_b = case("yaw_plus_pi")
    for metric in OVERLAP_METRICS:
        np.testing.assert_allclose(
            pairwise_affinity(flipped_a, flipped_b, metric, backend=backend).diagonal(), 1.0, atol=1e-6)
    assert (pairwise_affinity(a, a, "center_distance", backend=backend).diagonal() == 0.0).all()


@pytest.mark.parametrize("backend", HOST_BACKENDS)
def test_touching_boxes_give_zero(backend):
    a, b = case("touching")
    stacked = (a[:, :2] == b[:, :2]).all(axis=1)  # touching in z: the same footprint
    assert 0 < stacked.sum() < len(a)
    bev = pairwise_affinity(a, b, "bev_iou", backend=backend).diagonal()
    assert (bev[~stacked] == 0.0).all() and (bev[stacked] == 1.0).all()
    assert (pairwise_affinity(a, b, "iou_3d", backend=backend).diagonal() == 0.0).all()
    # Equal boxes sharing a whole face: the hull is the union, so GIoU is 0 as well.
    giou_bev = pairwise_affinity(a, b, "giou_bev", backend=backend).diagonal()
    assert (giou_bev[stacked] == 1.0).all() and (np.abs(giou_bev[~stacked]) <= 1e-6).all()
    assert (np.abs(pairwise_affinity(a, b, "giou_3d", backend=backend).diagonal()) <= 1e-6).all()
    # Shared edges of rotated boxes: zero up to float32 rounding of the rotated corners.
    a, b = case("shared_edges")
    assert np.abs(pairwise_affinity(a, b, "bev_iou", backend=backend).diagonal()).max() <= 1e-6


@pytest.mark.parametrize("backend", HOST_BACKENDS)
def test_nested_box_gives_the_area_ratio(backend):
    a, b = case("nested")
    ratio = (b[:, 3] * b[:, 4]).astype(np.float64) / (a[:, 3] * a[:, 4])
    np.testing.assert_allclose(pairwise_affinity(a, b, "bev_iou", backend=backend).diagonal(), ratio, rtol=1e-6)
    # Inside one another, the hull is the outer box: GIoU == IoU.
    got = pairwise_affinity(a, b, "giou_bev", backend=backend).diagonal()
    np.testing.assert_allclose(got, ratio, rtol=1e-6)


def test_far_apart_giou_tends_to_minus_one():
    a = np.array([[0, 0, 0, 2, 2, 2, 0.3]], np.float32)
    far = np.array([[1.0e4, 0, 0, 2, 2, 2, -0.2]], np.float32)
    for metric in GIOU_METRICS:
        value = pairwise_affinity(a, far, metric)[0, 0]
        assert -1.0 < value < -0.999
    assert pairwise_affinity(a, far, "bev_iou")[0, 0] == 0.0


# ----------------------------------------------------------------------------- backends agree
def _equal_backends(a, b, metric, **kwargs):
    results = {backend: pairwise_affinity(a, b, metric, backend=backend, **kwargs)
               for backend in HOST_BACKENDS}
    first = results[HOST_BACKENDS[0]]
    for backend, result in results.items():
        # The contract is 1e-6 relative; the kernels run the same operations, so bit for bit.
        np.testing.assert_array_equal(result, first, err_msg=f"{backend} vs {HOST_BACKENDS[0]}")
    return first


@pytest.mark.skipif(len(HOST_BACKENDS) < 2, reason="needs the C++ backend beside numba")
@pytest.mark.parametrize("name", CASES)
def test_cpu_equals_numba_bit_for_bit(name):
    a, b = case(name)
    for metric in METRICS:
        _equal_backends(a, b, metric)
        _equal_backends(b, a, metric)


@pytest.mark.skipif(len(HOST_BACKENDS) < 2, reason="needs the C++ backend beside numba")
def test_cpu_equals_numba_on_a_large_matrix_with_classes():
    """Large enough for several threads (the small ones run on one thread)."""
    rng = np.random.default_rng(11)
    a, b = random_boxes(rng, 300, extent=25), random_boxes(rng, 250, extent=25)
    ca, cb = rng.integers(0, 3, 300), rng.integers(0, 3, 250)
    for metric in METRICS:
        _equal_backends(a, b, metric)
        masked = _equal_backends(a, b, metric, classes_a=ca, classes_b=cb, fill=7.5)
        assert (masked[ca[:, None] != cb[None, :]] == 7.5).all()


# ----------------------------------------------------------------------------- classes
@pytest.mark.parametrize("backend", HOST_BACKENDS)
@pytest.mark.parametrize("metric", METRICS)
def test_class_masking(backend, metric):
    a, b = case("random")
    rng = np.random.default_rng(3)
    ca, cb = rng.integers(0, 7, len(a)), rng.integers(0, 7, len(b)).astype(np.int32)
    plain = pairwise_affinity(a, b, metric, backend=backend)
    same = ca[:, None] == cb[None, :]
    default = pairwise_affinity(a, b, metric, ca, cb, backend=backend)
    np.testing.assert_array_equal(default[same], plain[same])
    assert (default[~same] == np.float32(DEFAULT_FILL[metric])).all()
    explicit = pairwise_affinity(a, b, metric, classes_a=list(ca), classes_b=cb, fill=-3.25, backend=backend)
    np.testing.assert_array_equal(explicit[same], plain[same])
    assert (explicit[~same] == -3.25).all()


def test_default_fill_is_worse_than_any_value():
    for metric in METRICS:
        a, b = case("nested")
        values = pairwise_affinity(a, b, metric)
        if metric == "center_distance":
            assert DEFAULT_FILL[metric] == math.inf
        else:
            assert DEFAULT_FILL[metric] == -1.0 and (values > -1.0).all()


# ----------------------------------------------------------------------------- properties
_box = st.tuples(st.floats(-4, 4), st.floats(-4, 4), st.floats(-1, 1), st.floats(0.1, 5),
                 st.floats(0.1, 5), st.floats(0.1, 3), st.floats(-4, 4))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(boxes_a=st.lists(_box, min_size=1, max_size=6), boxes_b=st.lists(_box, min_size=1, max_size=6),
       snap=st.booleans())
def test_property_bounds_symmetry_and_backends(boxes_a, boxes_b, snap):
    a, b = np.array(boxes_a, np.float32), np.array(boxes_b, np.float32)
    if snap:  # dyadic centres and quarter-turn yaws: shared edges and corners are common
        for boxes in (a, b):
            boxes[:, :6] = np.round(boxes[:, :6] * 2) / 2 + [0, 0, 0, 0.5, 0.5, 0.5]
            boxes[:, 6] = np.round(boxes[:, 6] / (np.pi / 2)) * (np.pi / 2)
    got = {metric: _equal_backends(a, b, metric) for metric in METRICS}
    for metric in METRICS:
        np.testing.assert_allclose(pairwise_affinity(b, a, metric).T, got[metric], rtol=1e-5, atol=2e-6)
    for metric in IOU_METRICS:
        assert ((got[metric] >= 0) & (got[metric] <= 1)).all()
    for giou, iou in (("giou_bev", "bev_iou"), ("giou_3d", "iou_3d")):
        assert ((got[giou] > -1) & (got[giou] <= got[iou])).all()
    np.testing.assert_allclose(got["bev_iou"], shapely_reference(a, b, "bev_iou"), atol=1e-5)
    np.testing.assert_allclose(got["giou_3d"], shapely_reference(a, b, "giou_3d"), atol=1e-5)


# ----------------------------------------------------------------------------- adversarial inputs
def _around(rng, box: np.ndarray, n: int, size: float, spread: float) -> np.ndarray:
    """n boxes of edge `size` (float64 math, float32 once), centres within `spread` of box's
    centre in every direction, on and across its faces, any yaw."""
    out = np.empty((n, 7))
    out[:, 0:3] = box[:3].astype(np.float64) + rng.uniform(-spread, spread, (n, 3))
    out[:, 3:6] = size * rng.uniform(0.5, 2.0, (n, 3))
    out[:, 6] = rng.uniform(-np.pi, np.pi, n)
    return out.astype(np.float32)


def adversarial(name: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Valid boxes that float32 geometry gets wrong without care (issue 10, reliability 7)."""
    rng = np.random.default_rng(seed)
    car = np.array([0.3, -0.2, 0.1, 4.5, 1.9, 1.6, 0.3], np.float32)
    if name == "tiny_near_car":  # 1e-7 m boxes in, on and around a car's faces
        return car[None], _around(rng, car, 400, 1e-7, 2.5)
    if name == "tiny_near_car_far_from_origin":
        far = car + np.array([1800, -1200, 0, 0, 0, 0, 0], np.float32)
        return far[None], _around(rng, far, 400, 1e-7, 2.5)
    if name == "small_near_huge":  # 1e-4 m boxes in and around a 1e4 m box
        huge = np.array([0, 0, 0, 1e4, 1e4, 1e4, 0.7], np.float32)
        return huge[None], _around(rng, huge, 400, 1e-4, 8e3)
    if name == "every_scale":  # sizes and offsets over the whole valid range, mixed
        n = 60
        centres = rng.choice([-1, 1], (2 * n, 3)) * 10.0 ** rng.uniform(-9, 9, (2 * n, 3))
        sizes = 10.0 ** rng.uniform(-9, 9, (2 * n, 3))
        boxes = np.concatenate([centres, sizes, rng.uniform(-4, 4, (2 * n, 1))], axis=1)
        return boxes[:n].astype(np.float32), boxes[n:].astype(np.float32)
    if name == "largest_valid":  # 1e9 m boxes overlapping, 1e9 m from the origin
        big = np.array([[1e9, -1e9, 1e9, 1e9, 1e9, 1e9, 0.0], [5e8, -9e8, 9e8, 1e9, 8e8, 1e9, 0.4],
                        [-1e9, 1e9, 0, 1e9, 1e9, 1e9, -2.0]], np.float32)
        return big, big[::-1].copy()
    if name == "smallest_valid":  # 1e-9 m boxes overlapping, and one next to a car
        tiny = np.array([[0, 0, 0, 1e-9, 1e-9, 1e-9, 0.0], [3e-10, 1e-10, 0, 1e-9, 2e-9, 1e-9, 0.7],
                         [1.5, 0.9, 0.5, 1e-9, 1e-9, 1e-9, 0.0]], np.float32)
        return tiny, np.concatenate([tiny, car[None]])
    raise KeyError(name)


ADVERSARIAL = ["tiny_near_car", "tiny_near_car_far_from_origin", "small_near_huge", "every_scale",
               "largest_valid", "smallest_valid"]


def _check_ranges(result: dict) -> None:
    for metric in IOU_METRICS:
        assert ((result[metric] >= 0) & (result[metric] <= 1)).all(), metric  # NaN fails too
    for giou, iou in (("giou_bev", "bev_iou"), ("giou_3d", "iou_3d")):
        assert ((result[giou] >= -1) & (result[giou] <= result[iou])).all(), giou


@pytest.mark.parametrize("name", ADVERSARIAL)
def test_adversarial_boxes_stay_in_range_on_every_backend(name):
    a, b = adversarial(name)
    for first, second in ((a, b), (b, a)):
        result = {metric: _equal_backends(first, second, metric) for metric in METRICS}
        _check_ranges(result)
        assert np.isfinite(result["center_distance"]).all()


@pytest.mark.parametrize("name", ["tiny_near_car", "tiny_near_car_far_from_origin", "small_near_huge"])
def test_adversarial_boxes_agree_with_shapely(name):
    """A box 1e-7 of the other's size changes IoU by < 1e-14: shapely (float64) says ~0 too."""
    a, b = adversarial(name)
    for metric in OVERLAP_METRICS:
        np.testing.assert_allclose(pairwise_affinity(a, b, metric), shapely_reference(a, b, metric),
                                   rtol=0, atol=1e-5, err_msg=metric)


@pytest.mark.parametrize("backend", HOST_BACKENDS)
@pytest.mark.parametrize("name", CASES + ADVERSARIAL)
def test_symmetric_bit_for_bit(name, backend):
    """affinity(a, b) == affinity(b, a) exactly: the pair is ordered canonically first."""
    a, b = case(name) if name in CASES else adversarial(name)
    for metric in METRICS:
        np.testing.assert_array_equal(pairwise_affinity(a, b, metric, backend=backend),
                                      pairwise_affinity(b, a, metric, backend=backend).T, err_msg=metric)


@pytest.mark.parametrize("backend", HOST_BACKENDS)
def test_touching_at_quarter_turns_gives_exactly_zero(backend):
    """np.float32(pi / 2) is not a quarter turn (its cos is -4.4e-8): box frames take the exact
    turn for yaws that are the float32 nearest one, so faces that touch share a line."""
    yaws = np.float32([np.pi / 2, -np.pi / 2, np.pi, -np.pi, 3 * np.pi / 2, 2 * np.pi])
    a = np.zeros((len(yaws), 7), np.float32)
    a[:, 3:6] = [4.0, 2.0, 1.5]
    a[:, 6] = yaws
    b = a[::-1].copy()  # every pairing of the quarter turns
    extent_x = np.where(np.isin(np.arange(len(yaws)), [0, 1, 4]), 2.0, 4.0)  # footprint along x
    b[:, 0] = (extent_x + extent_x[::-1]) / 2  # b's face on a's face, along x
    for metric in ("bev_iou", "iou_3d"):
        assert (pairwise_affinity(a, b, metric, backend=backend).diagonal() == 0.0).all(), metric
    # Equal footprints side by side: the hull is the union, GIoU exactly 0.
    same = extent_x == extent_x[::-1]
    assert same.sum() >= 2
    for metric in GIOU_METRICS:
        assert (pairwise_affinity(a, b, metric, backend=backend).diagonal()[same] == 0.0).all(), metric
    frames = nutrack.ops.box_frames(a)
    assert set(np.abs(frames[:, 6:8]).ravel().tolist()) == {0.0, 1.0}


def test_box_frames_snap_only_the_nearest_float32_of_a_quarter_turn():
    half_pi = np.float32(np.pi / 2)
    yaws = np.array([half_pi, np.nextafter(half_pi, np.float32(2)), np.float32(0.3)], np.float32)
    boxes = np.zeros((3, 7), np.float32)
    boxes[:, 3:6] = 1.0
    boxes[:, 6] = yaws
    c, s = nutrack.ops.box_frames(boxes)[:, 6:8].T
    assert c[0] == 0.0 and s[0] == 1.0
    assert c[1] == np.float32(np.cos(np.float64(yaws[1]))) and c[1] != 0.0  # one ulp off: not snapped
    assert c[2] == np.float32(np.cos(np.float64(yaws[2])))


def test_box_frames_one_writer_for_numpy_and_torch():
    torch = pytest.importorskip("torch")
    a, _ = case("yaw_multiples_of_half_pi")
    a = np.concatenate([a, case("random")[0]])
    np.testing.assert_array_equal(nutrack.ops.box_frames(torch.from_numpy(a)).numpy(),
                                  nutrack.ops.box_frames(a))


def test_frame_layout_matches_common_h():
    """The Python side of the box-frame layout (nutrack/ops/_boxes.py) against the C++ side."""
    import re
    from pathlib import Path

    from nutrack.ops import _boxes

    header = (Path(__file__).parents[1] / "csrc/include/nutrack/common.h").read_text()
    width = int(re.search(r"kBoxFrameWidth = (\d+);", header).group(1))
    columns = dict(re.findall(r"(\w+) = (\d+)", re.search(r"namespace frame \{(.*?)\}", header, re.S).group(1)))
    assert width == _boxes.BOX_FRAME_WIDTH
    assert {name: int(index) for name, index in columns.items()} == {
        name: index for index, name in enumerate(_boxes.FRAME_COLUMNS)}


@pytest.mark.parametrize("bad, match", [
    ([0, 0, 0, 1e20, 1e20, 1e20, 0], r"boxes_a sizes .* must lie in \[1e-09, 1e\+09\]"),
    ([0, 0, 0, 1e-10, 1, 1, 0], r"boxes_a sizes .* must lie in"),
    ([0, 0, 0, 1e-46, 1, 1, 0], r"boxes_a sizes .* must be > 0"),  # zero in float32
    ([2e9, 0, 0, 1, 1, 1, 0], r"boxes_a centres .* within 1e\+09 m"),
    ([0, 0, -1e30, 1, 1, 1, 0], r"boxes_a centres"),
])
def test_impossible_boxes_are_rejected(bad, match):
    with pytest.raises(ValueError, match=match):
        pairwise_affinity(np.array([bad]), np.ones((1, 7)), "giou_3d")


@pytest.mark.parametrize("fill", [float("nan"), np.float32("nan"), True, np.bool_(False), 1e300, "1"])
def test_bad_fill_is_rejected(fill):
    a, b = case("random")
    with pytest.raises(ValueError, match="fill must be"):
        pairwise_affinity(a, b, "bev_iou", np.zeros(len(a), int), np.ones(len(b), int), fill=fill)


@pytest.mark.parametrize("backend", HOST_BACKENDS)
def test_infinite_and_float32_fills(backend):
    a, b = case("random")
    ca, cb = np.zeros(len(a), int), np.ones(len(b), int)
    for fill in (-math.inf, math.inf, np.float32(-2.5), 3.4e38):
        got = pairwise_affinity(a, b, "giou_3d", ca, cb, fill=fill, backend=backend)
        assert (got == np.float32(fill)).all()


def test_numba_twin_takes_the_launcher_arguments():
    """pairwise_affinity(frames_a, na, frames_b, nb, metric, classes_a, classes_b, fill, out):
    the C++ launcher's arguments, arrays for addresses, empty int64 classes for none."""
    import inspect

    from nutrack.ops import _numba_affinity
    from nutrack.ops._boxes import box_frames

    names = list(inspect.signature(_numba_affinity.pairwise_affinity.py_func).parameters)
    assert names == ["frames_a", "na", "frames_b", "nb", "metric", "classes_a", "classes_b", "fill", "out"]
    a, b = case("random")
    none = np.zeros(0, np.int64)
    ca, cb = np.arange(len(a)) % 2, np.arange(len(b)) % 2
    for code, metric in enumerate(METRICS):
        out = np.empty((len(a), len(b)), np.float32)
        _numba_affinity.pairwise_affinity(frames_a=box_frames(a), na=len(a), frames_b=box_frames(b),
                                          nb=len(b), metric=code, classes_a=none, classes_b=none,
                                          fill=-7.0, out=out)
        np.testing.assert_array_equal(out, pairwise_affinity(a, b, metric, backend="numba"))
        _numba_affinity.pairwise_affinity(box_frames(a), len(a), box_frames(b), len(b), code, ca, cb, -7.0, out)
        np.testing.assert_array_equal(out, pairwise_affinity(a, b, metric, ca, cb, fill=-7.0, backend="numba"))


# ----------------------------------------------------------------------------- shapes, dtypes, errors
@pytest.mark.parametrize("backend", HOST_BACKENDS)
def test_empty_inputs(backend):
    some = random_boxes(np.random.default_rng(0), 4)
    none = np.zeros((0, 7), np.float32)
    for metric in METRICS:
        assert pairwise_affinity(none, some, metric, backend=backend).shape == (0, 4)
        assert pairwise_affinity(some, none, metric, backend=backend).shape == (4, 0)
        assert pairwise_affinity(none, none, metric, backend=backend).shape == (0, 0)
        out = pairwise_affinity(none, some, metric, [], [1, 2, 3, 4], backend=backend)
        assert out.shape == (0, 4) and out.dtype == np.float32


@pytest.mark.parametrize("backend", HOST_BACKENDS)
def test_float64_and_non_contiguous(backend):
    a, b = case("random")
    expected = pairwise_affinity(a, b, "giou_3d", backend=backend)
    wide = np.zeros((len(a), 14), np.float64)
    wide[:, ::2] = a
    strided = wide[:, ::2]
    assert not strided.flags.c_contiguous
    np.testing.assert_array_equal(pairwise_affinity(strided, b.astype(np.float64), "giou_3d", backend=backend),
                                  expected)
    np.testing.assert_array_equal(pairwise_affinity(a[::-1], b, "giou_3d", backend=backend), expected[::-1])
    np.testing.assert_array_equal(pairwise_affinity(a.tolist(), b, "giou_3d", backend=backend), expected)


def test_torch_cpu_in_torch_out():
    torch = pytest.importorskip("torch")
    a, b = case("random")
    ca, cb = np.arange(len(a)) % 3, np.arange(len(b)) % 3
    expected = pairwise_affinity(a, b, "iou_3d", ca, cb)
    got = pairwise_affinity(torch.from_numpy(a), torch.from_numpy(b).double(), "iou_3d",
                            torch.from_numpy(ca), torch.from_numpy(cb).int())
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float32 and got.device.type == "cpu"
    np.testing.assert_array_equal(got.numpy(), expected)
    with pytest.raises(ValueError, match="boxes_b is a numpy array on cpu but boxes_a is a torch array"):
        pairwise_affinity(torch.from_numpy(a), b, "iou_3d")


@pytest.mark.parametrize("args, kwargs, match", [
    ((np.ones((2, 7)), np.ones((2, 7)), "iou"), {}, "metric must be one of"),
    ((np.ones((2, 7)), np.ones((2, 7)), None), {}, "metric must be one of"),
    ((np.ones((2, 6)), np.ones((2, 7)), "bev_iou"), {}, r"boxes_a must have shape \(..., 7\)"),
    ((np.ones((2, 7)), np.ones((7,)), "bev_iou"), {}, "boxes_b must have 2 dimensions"),
    ((np.ones((2, 7), np.int64), np.ones((2, 7)), "bev_iou"), {}, "boxes_a has unsupported dtype int64"),
    ((np.array([[0, np.nan, 0, 1, 1, 1, 0]]), np.ones((2, 7)), "bev_iou"), {}, "boxes_a contains NaN"),
    ((np.ones((2, 7)), np.array([[0, 0, 0, 1, 0, 1, 0.0]]), "giou_3d"), {}, r"boxes_b sizes .* must be > 0"),
    ((np.ones((2, 7)), np.array([[0, 0, 0, 1, 1, -2, 0.0]]), "giou_3d"), {}, r"boxes_b sizes .* must be > 0"),
    ((np.ones((2, 7)), np.ones((3, 7)), "bev_iou", [0, 1], [0, 1]), {}, r"classes_b must have shape \(3,\)"),
    ((np.ones((2, 7)), np.ones((3, 7)), "bev_iou", [0, 1, 2], [0, 1, 2]), {}, r"classes_a must have shape \(2,\)"),
    ((np.ones((2, 7)), np.ones((3, 7)), "bev_iou", [0, 1]), {}, "classes_a and classes_b must be given together"),
    ((np.ones((2, 7)), np.ones((3, 7)), "bev_iou"), {"classes_b": [0, 1, 2]}, "must be given together"),
    ((np.ones((2, 7)), np.ones((1, 7)), "bev_iou", [0.5, 1.0], [0]), {}, "classes_a has unsupported dtype float64"),
    ((np.ones((2, 7)), np.ones((1, 7)), "bev_iou", [[0, 1]], [0]), {}, r"classes_a must have shape \(2,\)"),
    ((np.ones((2, 7)), np.ones((1, 7)), "bev_iou"), {"fill": "low"}, "fill must be a number"),
    ((np.ones((2, 7)), np.ones((1, 7)), "bev_iou"), {"backend": "gpu"}, "backend must be one of"),
    ((np.ones((2, 7)), np.ones((1, 7)), "bev_iou"), {"backend": "cuda"}, "backend='cuda' needs inputs on a CUDA device"),
])
def test_bad_input_names_the_argument(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        pairwise_affinity(*args, **kwargs)


def test_numba_fallback(monkeypatch):
    a, b = case("random")
    expected = pairwise_affinity(a, b, "giou_bev", backend="numba")
    monkeypatch.setattr(_backend, "native", None)
    monkeypatch.setattr(_backend, "_why_unavailable", "ImportError: simulated")
    monkeypatch.setattr(_backend, "_warned", False)
    with pytest.warns(nutrack.ops.NativeBackendUnavailable, match="simulated"):
        got = pairwise_affinity(a, b, "giou_bev")
    np.testing.assert_array_equal(got, expected)


# ----------------------------------------------------------------------------- CUDA
@requires_cuda
@pytest.mark.cuda
@pytest.mark.parametrize("name", CASES)
def test_cuda_equals_numba(name):
    import torch

    a, b = case(name)
    ta, tb = torch.from_numpy(a).cuda(), torch.from_numpy(b).cuda()
    for metric in METRICS:
        got = pairwise_affinity(ta, tb, metric)
        assert got.is_cuda and got.dtype == torch.float32 and got.shape == (len(a), len(b))
        expected = pairwise_affinity(a, b, metric, backend="numba")
        np.testing.assert_allclose(got.cpu().numpy(), expected, rtol=1e-6, atol=1e-7)
        # The same operations in the same order: in fact bit for bit.
        np.testing.assert_array_equal(got.cpu().numpy(), expected)


@requires_cuda
@pytest.mark.cuda
def test_cuda_classes_large_and_empty():
    import torch

    rng = np.random.default_rng(12)
    # 2100 x 1300 crosses many tiles in both directions, with ragged edges.
    a, b = random_boxes(rng, 2100, extent=40), random_boxes(rng, 1300, extent=40)
    ca, cb = rng.integers(0, 4, 2100), rng.integers(0, 4, 1300)
    ta, tb = torch.from_numpy(a).cuda(), torch.from_numpy(b).cuda()
    tca, tcb = torch.from_numpy(ca).cuda(), torch.from_numpy(cb).cuda()
    for metric in ("center_distance", "giou_3d"):
        got = pairwise_affinity(ta, tb, metric, tca, tcb, fill=2.5)
        expected = pairwise_affinity(a, b, metric, ca, cb, fill=2.5, backend=HOST_BACKENDS[0])
        np.testing.assert_array_equal(got.cpu().numpy(), expected)
    # Past 65535 row tiles of 8 the grid strides over rows.
    tall = random_boxes(rng, 600_000, extent=40)
    got = pairwise_affinity(torch.from_numpy(tall).cuda(), tb[:3], "giou_3d")
    np.testing.assert_array_equal(got.cpu().numpy(), pairwise_affinity(tall, b[:3], "giou_3d", backend="numba"))
    empty = torch.zeros((0, 7), device="cuda")
    assert pairwise_affinity(empty, tb, "giou_bev").shape == (0, 1300)
    assert pairwise_affinity(ta, empty, "giou_bev").shape == (2100, 0)
    # Forced host backends copy device inputs over and the result back.
    np.testing.assert_array_equal(pairwise_affinity(ta[:50], tb[:40], "bev_iou", backend="numba").cpu().numpy(),
                                  pairwise_affinity(a[:50], b[:40], "bev_iou"))
