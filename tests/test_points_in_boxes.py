"""points_in_boxes / points_in_boxes_all / points_in_polygons: every backend against a naive
numpy loop (exactly), against the nuScenes devkit and shapely (outside a thin band around the
faces), on random and adversarial inputs."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nutrack.ops
from nutrack.ops import _backend, points_in_boxes, points_in_boxes_all, points_in_polygons
from tests._helpers import HOST_BACKENDS, random_boxes, requires_cuda


# ----------------------------------------------------------------------------- references
def reference_dense(points: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Plain numpy, box by box, float32 arithmetic in the kernels' order, no prefilter. The
    rotation is the box frames' (the one place that evaluates cos/sin, exact at quarter turns;
    tests/test_affinity.py checks it)."""
    from nutrack.ops._boxes import box_frames

    points = np.asarray(points, dtype=np.float32)
    boxes = np.asarray(boxes, dtype=np.float32)
    out = np.zeros((len(points), len(boxes)), dtype=bool)
    rotations = box_frames(boxes)[:, 6:8]
    for j, (cx, cy, cz, dx, dy, dz, yaw) in enumerate(boxes):
        c, s = rotations[j]
        half = np.float32(0.5)
        ox, oy, oz = points[:, 0] - cx, points[:, 1] - cy, points[:, 2] - cz
        local_x = c * ox + s * oy
        local_y = c * oy - s * ox
        out[:, j] = (np.abs(local_x) <= dx * half) & (np.abs(local_y) <= dy * half) & (np.abs(oz) <= dz * half)
    return out


def first_index(dense: np.ndarray) -> np.ndarray:
    if dense.shape[1] == 0:
        return np.full(len(dense), -1, dtype=np.int32)
    return np.where(dense.any(axis=1), dense.argmax(axis=1), -1).astype(np.int32)


def reference_polygons(points: np.ndarray, polygons: np.ndarray, clockwise: bool) -> np.ndarray:
    """Plain loops over polygons and edges, float32, the kernels' formula."""
    points = np.asarray(points, dtype=np.float32)
    polygons = np.asarray(polygons, dtype=np.float32)
    out = np.ones((len(points), len(polygons)), dtype=bool)
    for j, poly in enumerate(polygons):
        k = len(poly)
        for v in range(k):
            prev = poly[v - 1]
            ex, ey = poly[v, 0] - prev[0], poly[v, 1] - prev[1]
            cross = ex * (points[:, 1] - prev[1]) - ey * (points[:, 0] - prev[0])
            out[:, j] &= ~(cross > 0) if clockwise else ~(cross < 0)
    return out


# ----------------------------------------------------------------------------- cases
def _face_points(boxes: np.ndarray, per_box: int, rng: np.random.Generator) -> np.ndarray:
    """Points exactly on faces, edges and corners (in exact arithmetic), then rounded."""
    pts = []
    for cx, cy, cz, dx, dy, dz, yaw in boxes.astype(np.float64):
        local = rng.uniform(-0.5, 0.5, (per_box, 3)) * (dx, dy, dz)
        axes = rng.integers(0, 3, per_box)
        signs = rng.choice([-0.5, 0.5], (per_box, 3))
        local[np.arange(per_box), axes] = (signs * (dx, dy, dz))[np.arange(per_box), axes]
        corners = rng.random(per_box) < 0.2
        local[corners] = (signs * (dx, dy, dz))[corners]
        c, s = np.cos(yaw), np.sin(yaw)
        gx = cx + c * local[:, 0] - s * local[:, 1]
        gy = cy + s * local[:, 0] + c * local[:, 1]
        pts.append(np.stack([gx, gy, cz + local[:, 2]], axis=1))
    return np.concatenate(pts).astype(np.float32)


def case(name: str, seed: int = 0):
    rng = np.random.default_rng(seed)
    if name == "random":
        boxes = random_boxes(rng, 60)
        points = rng.uniform(-50, 50, (20000, 4)).astype(np.float32)
        points[:, 2] = rng.uniform(-3, 3, len(points))
        return points, boxes
    if name == "faces_edges_corners":
        boxes = random_boxes(rng, 40, extent=20)
        return _face_points(boxes, 300, rng), boxes
    if name == "axis_aligned_exact_faces":
        boxes = random_boxes(rng, 30, extent=20)
        boxes[:, 6] = rng.choice([0.0, np.pi, -np.pi, np.pi / 2, -np.pi / 2, 3 * np.pi / 2], 30)
        boxes[:, :6] = np.round(boxes[:, :6] * 4) / 4  # dyadic: faces exactly representable
        return _face_points(boxes, 200, rng), boxes
    if name == "yaw_multiples_of_half_pi":
        boxes = random_boxes(rng, 40, extent=20)
        boxes[:, 6] = rng.integers(-4, 5, 40) * (np.pi / 2)
        return _face_points(boxes, 200, rng), boxes
    if name == "far_from_origin":
        boxes = random_boxes(rng, 30, extent=20)
        boxes[:, :2] += 1.0e4
        return _face_points(boxes, 200, rng), boxes
    if name == "tiny_and_huge":
        boxes = random_boxes(rng, 40, extent=20)
        boxes[:20, 3:6] = rng.uniform(1e-3, 5e-3, (20, 3))
        boxes[20:, 3:6] = rng.uniform(500, 2000, (20, 3))
        points = np.concatenate([_face_points(boxes, 200, rng),
                                 rng.uniform(-1000, 1000, (5000, 3)).astype(np.float32)])
        return points, boxes
    if name == "overlapping":
        base = random_boxes(rng, 10, extent=10)
        boxes = np.repeat(base, 5, axis=0)
        boxes[:, :2] += rng.normal(0, 0.5, (50, 2)).astype(np.float32)
        boxes[:, 6] += rng.normal(0, 0.3, 50).astype(np.float32)
        points = rng.uniform(-12, 12, (20000, 3)).astype(np.float32)
        points[:, 2] = rng.uniform(-3, 3, len(points))
        return points, boxes
    if name == "huge_among_small":  # forces the box grid to coarsen its cells
        boxes = random_boxes(rng, 40, extent=40, size_range=(0.3, 1.0))
        boxes[:8, 3:5] = rng.uniform(60, 90, (8, 2))
        points = np.concatenate([_face_points(boxes, 100, rng),
                                 rng.uniform(-60, 60, (10000, 3)).astype(np.float32)])
        return points, boxes
    if name == "one_point":
        boxes = random_boxes(rng, 20, extent=2)
        return boxes[3:4, :3].copy(), boxes
    raise KeyError(name)


CASES = ["random", "faces_edges_corners", "axis_aligned_exact_faces", "yaw_multiples_of_half_pi",
         "far_from_origin", "tiny_and_huge", "huge_among_small", "overlapping", "one_point"]


# ----------------------------------------------------------------------------- exactness
@pytest.mark.parametrize("backend", HOST_BACKENDS)
@pytest.mark.parametrize("name", CASES)
def test_backends_equal_naive_reference(name, backend):
    points, boxes = case(name)
    expected = reference_dense(points, boxes)
    dense = points_in_boxes_all(points, boxes, sparse=False, backend=backend)
    np.testing.assert_array_equal(dense, expected)
    np.testing.assert_array_equal(points_in_boxes(points, boxes, backend=backend), first_index(expected))
    pairs = points_in_boxes_all(points, boxes, sparse=True, backend=backend)
    assert pairs.dtype == np.int64 and pairs.shape[1] == 2
    np.testing.assert_array_equal(pairs, np.argwhere(expected))
    if name in ("faces_edges_corners", "axis_aligned_exact_faces", "far_from_origin"):
        assert 0 < expected.sum() < expected.size  # the case really sits on the boundary


def test_box_grid_coarsens_instead_of_exploding():
    from nutrack.ops._boxes import box_frames
    from nutrack.ops._grid import MAX_ENTRIES_PER_BOX, build_box_grid

    points, boxes = case("huge_among_small")
    grid = build_box_grid(box_frames(boxes))
    assert grid.nx * grid.ny > 1  # still a grid, not one cell holding every box
    assert len(grid.cell_boxes) <= MAX_ENTRIES_PER_BOX * len(boxes) + 4096


def test_faces_are_inclusive_golden():
    boxes = np.array([[1.0, 2.0, 3.0, 2.0, 4.0, 6.0, 0.0]], dtype=np.float32)  # x 0..2, y 0..4, z 0..6
    on = np.array([[2, 2, 3], [0, 2, 3], [1, 4, 3], [1, 0, 3], [1, 2, 6], [1, 2, 0], [2, 4, 6], [0, 0, 0]],
                  dtype=np.float32)
    just_out = on.copy()  # x pushed ~16 ulps outward where it sits on an x face
    just_out[:, 0] = np.where(on[:, 0] == 2, np.float32(2.000002), on[:, 0])
    just_out[:, 0] = np.where(on[:, 0] == 0, np.float32(-0.000002), just_out[:, 0])
    for backend in HOST_BACKENDS:
        np.testing.assert_array_equal(points_in_boxes(on, boxes, backend=backend), np.zeros(8, np.int32))
        outside = points_in_boxes(just_out, boxes, backend=backend)
        np.testing.assert_array_equal(outside, [-1, -1, 0, 0, 0, 0, -1, -1])


@pytest.mark.parametrize("backend", HOST_BACKENDS)
def test_nuscenes_scale(backend):
    """300k points (ten sweeps) x 500 boxes: every backend equals the naive loop."""
    rng = np.random.default_rng(1)
    boxes = random_boxes(rng, 500, extent=54)
    points = rng.uniform(-54, 54, (300_000, 5)).astype(np.float32)
    points[:, 2] = rng.uniform(-3, 3, len(points))
    # Put a tenth of the points inside boxes, so the result is not mostly -1.
    inside = _face_points(boxes, 60, rng) * np.float32(0.999) + boxes[:, :3].repeat(60, 0) * np.float32(0.001)
    points[: len(inside), :3] = inside
    expected = first_index(reference_dense(points, boxes))
    got = points_in_boxes(points, boxes, backend=backend)
    np.testing.assert_array_equal(got, expected)
    assert (expected >= 0).sum() > 20_000


@pytest.mark.parametrize("backend", HOST_BACKENDS)
def test_more_than_2_pow_21_points(backend):
    """Past 2^21 points, where a grid-stride pointer bug in a well-known kernel shows."""
    rng = np.random.default_rng(2)
    boxes = random_boxes(rng, 8, extent=5, size_range=(2, 6))
    n = (1 << 21) + 12345
    points = rng.uniform(-8, 8, (n, 3)).astype(np.float32)
    expected = first_index(reference_dense(points, boxes))
    got = points_in_boxes(points, boxes, backend=backend)
    np.testing.assert_array_equal(got, expected)
    assert (got[-100_000:] >= 0).any()


@pytest.mark.parametrize("backend", HOST_BACKENDS)
def test_non_contiguous_and_float64(backend):
    points, boxes = case("faces_edges_corners")
    expected = points_in_boxes(points, boxes, backend=backend)
    wide = np.zeros((len(points), 8), dtype=np.float64)
    wide[:, ::2][:, :3] = points  # columns 0, 2, 4: a strided view
    strided = wide[:, ::2]
    assert not strided.flags.c_contiguous
    np.testing.assert_array_equal(points_in_boxes(strided, boxes.astype(np.float64), backend=backend), expected)
    np.testing.assert_array_equal(points_in_boxes(points[::-1], boxes, backend=backend), expected[::-1])


# ----------------------------------------------------------------------------- outside references
def _devkit_points_in_boxes(points: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    from nuscenes.utils.data_classes import Box
    from nuscenes.utils.geometry_utils import points_in_box
    from pyquaternion import Quaternion

    out = np.zeros((len(points), len(boxes)), dtype=bool)
    for j, (x, y, z, dx, dy, dz, yaw) in enumerate(boxes.astype(np.float64)):
        box = Box([x, y, z], [dy, dx, dz], Quaternion(axis=[0, 0, 1], angle=yaw))  # devkit wlh
        out[:, j] = points_in_box(box, points[:, :3].T.astype(np.float64))
    return out


def _face_distance(points: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """(N, M) float64 distance of each point to the nearest face plane of each box's slab."""
    p = points[:, None, :3].astype(np.float64)
    b = boxes[None].astype(np.float64)
    d = p - b[..., :3]
    c, s = np.cos(b[..., 6]), np.sin(b[..., 6])
    local = np.stack([c * d[..., 0] + s * d[..., 1], c * d[..., 1] - s * d[..., 0], d[..., 2]], -1)
    return np.min(np.abs(np.abs(local) - b[..., 3:6] / 2), axis=-1)


@pytest.mark.parametrize("name", ["random", "faces_edges_corners", "yaw_multiples_of_half_pi", "far_from_origin"])
def test_agrees_with_devkit_outside_thin_band(name):
    points, boxes = case(name)
    points, boxes = points[:6000], boxes[:25]
    ours = points_in_boxes_all(points, boxes, sparse=False)
    theirs = _devkit_points_in_boxes(points, boxes)
    band = 1e-6 * (1.0 + np.abs(boxes[None, :, :2]).max(-1)) * 10  # ~10 float32 ulps of the coordinates
    near_face = _face_distance(points, boxes) <= band
    flips = ours != theirs
    assert not (flips & ~near_face).any(), "disagreement with the devkit away from any face"
    # Inside the band both are legitimate roundings; count them and keep them a minority.
    if near_face.any():
        assert flips[near_face].mean() <= 0.5, f"{flips[near_face].sum()} flips of {near_face.sum()} near faces"


# ----------------------------------------------------------------------------- polygons
def _convex_polygons(rng: np.random.Generator, m: int, k: int, clockwise: bool) -> np.ndarray:
    """Regular-ish convex k-gons (random radius, rotation, centre), ordered as asked."""
    angles = np.sort(rng.uniform(0, 2 * np.pi, (m, k)), axis=1)  # counter-clockwise
    angles[:, 0] = 0.0
    angles = np.sort(angles + np.linspace(0, 2 * np.pi, k, endpoint=False)[None] * 0, axis=1)
    radius = rng.uniform(0.5, 5, (m, 1))
    centre = rng.uniform(-20, 20, (m, 1, 2))
    poly = centre + radius[..., None] * np.stack([np.cos(angles), np.sin(angles)], -1)
    if clockwise:
        poly = poly[:, ::-1]
    return np.ascontiguousarray(poly, dtype=np.float32)


@pytest.mark.parametrize("backend", HOST_BACKENDS)
@pytest.mark.parametrize("clockwise", [True, False])
def test_polygons_equal_naive_loop(backend, clockwise):
    rng = np.random.default_rng(3)
    polygons = _convex_polygons(rng, 40, 6, clockwise)
    points = np.concatenate([rng.uniform(-25, 25, (5000, 2)), polygons.reshape(-1, 2),
                             (polygons + np.roll(polygons, 1, axis=1)).reshape(-1, 2) / 2]).astype(np.float32)
    expected = reference_polygons(points, polygons, clockwise)
    got = points_in_polygons(points, polygons, clockwise=clockwise, backend=backend)
    np.testing.assert_array_equal(got, expected)
    assert expected.sum() > 100
    # Every vertex is in its own polygon: the boundary is inclusive.
    vertices = polygons.reshape(-1, 2)
    own = np.repeat(np.arange(len(polygons)), polygons.shape[1])
    assert got[5000 + np.arange(len(vertices)), own].all()


def test_polygons_agree_with_shapely_outside_band():
    import shapely

    rng = np.random.default_rng(4)
    polygons = _convex_polygons(rng, 30, 5, True)
    points = rng.uniform(-25, 25, (4000, 2)).astype(np.float32)
    ours = points_in_polygons(points, polygons)
    shapes = [shapely.Polygon(p.astype(np.float64)) for p in polygons]
    pts = shapely.points(points.astype(np.float64))
    theirs = np.stack([shapely.covers(poly, pts) for poly in shapes], axis=1)
    distance = np.stack([shapely.distance(poly.exterior, pts) for poly in shapes], axis=1)
    flips = ours != theirs
    assert not (flips & (distance > 1e-4)).any()
    assert theirs.sum() > 50


def test_polygon_matches_box_test():
    """A box's footprint as a clockwise polygon gives the box test (away from faces)."""
    rng = np.random.default_rng(5)
    boxes = random_boxes(rng, 30, extent=20)
    boxes[:, 2], boxes[:, 5] = 0.0, 1e3  # no z limit
    c, s = np.cos(boxes[:, 6]), np.sin(boxes[:, 6])
    local = np.array([[-1, -1], [-1, 1], [1, 1], [1, -1]], dtype=np.float64) / 2  # clockwise
    lx, ly = local[None, :, 0] * boxes[:, 3:4], local[None, :, 1] * boxes[:, 4:5]
    corners = np.stack([boxes[:, :1] + c[:, None] * lx - s[:, None] * ly,
                        boxes[:, 1:2] + s[:, None] * lx + c[:, None] * ly], -1).astype(np.float32)
    points = rng.uniform(-25, 25, (5000, 3)).astype(np.float32)
    points[:, 2] = 0
    by_polygon = points_in_polygons(points, corners)
    by_box = points_in_boxes_all(points, boxes, sparse=False)
    far = _face_distance(points, boxes) > 1e-4
    np.testing.assert_array_equal(by_polygon[far], by_box[far])


# ----------------------------------------------------------------------------- properties
finite = st.floats(-60, 60, allow_nan=False, width=32)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31), n=st.integers(0, 300), m=st.integers(0, 12), shift=finite)
def test_property_outputs_are_consistent(seed, n, m, shift):
    rng = np.random.default_rng(seed)
    boxes = random_boxes(rng, m, extent=5)
    boxes[:, :2] += np.float32(shift)
    points = (rng.uniform(-8, 8, (n, 3)) + [shift, shift, 0]).astype(np.float32)
    from nutrack.ops import _grid

    default = _grid.SMALL_PROBLEM_PAIRS
    try:
        for small_problem_pairs in (default, 0):  # unbinned, then always through the grid
            _grid.SMALL_PROBLEM_PAIRS = small_problem_pairs
            for backend in HOST_BACKENDS:
                dense = points_in_boxes_all(points, boxes, sparse=False, backend=backend)
                assert dense.shape == (n, m) and dense.dtype == bool
                np.testing.assert_array_equal(dense, reference_dense(points, boxes))
                np.testing.assert_array_equal(points_in_boxes(points, boxes, backend=backend),
                                              first_index(dense))
                np.testing.assert_array_equal(
                    points_in_boxes_all(points, boxes, sparse=True, backend=backend), np.argwhere(dense))
    finally:
        _grid.SMALL_PROBLEM_PAIRS = default
    # Every box contains its own centre.
    if m:
        assert points_in_boxes_all(boxes[:, :3], boxes, sparse=False).diagonal().all()


# ----------------------------------------------------------------------------- shapes, errors
@pytest.mark.parametrize("backend", HOST_BACKENDS)
def test_empty_inputs(backend):
    boxes = random_boxes(np.random.default_rng(0), 4)
    no_points = np.zeros((0, 3), np.float32)
    no_boxes = np.zeros((0, 7), np.float32)
    some = np.ones((5, 4), np.float32)
    assert points_in_boxes(no_points, boxes, backend=backend).shape == (0,)
    np.testing.assert_array_equal(points_in_boxes(some, no_boxes, backend=backend), [-1] * 5)
    assert points_in_boxes_all(some, no_boxes, sparse=False, backend=backend).shape == (5, 0)
    assert points_in_boxes_all(no_points, boxes, sparse=True, backend=backend).shape == (0, 2)
    assert points_in_polygons(np.zeros((0, 2)), np.ones((3, 4, 2)), backend=backend).shape == (0, 3)
    assert points_in_polygons(some, np.zeros((0, 4, 2)), backend=backend).shape == (5, 0)


def test_sparse_auto_switch(monkeypatch):
    from nutrack.ops import points as points_module

    points, boxes = case("overlapping")
    dense = points_in_boxes_all(points, boxes)
    monkeypatch.setattr(points_module, "DENSE_LIMIT", 100)
    np.testing.assert_array_equal(points_in_boxes_all(points, boxes), np.argwhere(dense))


@pytest.mark.parametrize("points, boxes, match", [
    (np.zeros((5,), np.float32), np.ones((1, 7), np.float32), "points must have 2 dimensions"),
    (np.zeros((5, 2), np.float32), np.ones((1, 7), np.float32), "points must have at least 3 columns"),
    (np.zeros((5, 3), np.float32), np.ones((1, 6), np.float32), r"boxes must have shape \(..., 7\)"),
    (np.zeros((5, 3), np.int32), np.ones((1, 7), np.float32), "points has unsupported dtype int32"),
    (np.zeros((5, 3), np.float32), np.ones((1, 7), np.float16), "boxes has unsupported dtype float16"),
    (np.array([[0, np.nan, 0]], np.float32), np.ones((1, 7), np.float32), "points coordinates contains NaN"),
    (np.zeros((1, 3), np.float32), np.array([[0, 0, np.inf, 1, 1, 1, 0]], np.float32), "boxes contains NaN or inf"),
    (np.zeros((1, 3), np.float32), np.array([[0, 0, 0, 1, 0, 1, 0]], np.float32), "boxes sizes .* must be > 0"),
    (np.zeros((1, 3), np.float32), np.array([[0, 0, 0, 1, 1, -1, 0]], np.float32), "boxes sizes .* must be > 0"),
])
def test_bad_input_names_the_argument(points, boxes, match):
    with pytest.raises(ValueError, match=match):
        points_in_boxes(points, boxes)


def test_bad_polygons_and_backend():
    with pytest.raises(ValueError, match="polygons need at least 3 vertices"):
        points_in_polygons(np.zeros((2, 2)), np.zeros((1, 2, 2)))
    with pytest.raises(ValueError, match=r"polygons must have shape \(..., 2\)"):
        points_in_polygons(np.zeros((2, 2)), np.zeros((1, 4, 3)))
    with pytest.raises(ValueError, match="backend must be one of"):
        points_in_boxes(np.zeros((2, 3)), np.ones((1, 7)), backend="gpu")
    with pytest.raises(ValueError, match="backend='cuda' needs inputs on a CUDA device"):
        points_in_boxes(np.zeros((2, 3)), np.ones((1, 7)), backend="cuda")


def test_nan_in_unused_columns_is_allowed():
    points = np.array([[0, 0, 0, np.nan]], np.float32)
    assert points_in_boxes(points, np.ones((1, 7), np.float32) * [0, 0, 0, 1, 1, 1, 0])[0] == 0


# ----------------------------------------------------------------------------- interop, fallback
def test_torch_cpu_in_torch_out():
    torch = pytest.importorskip("torch")
    points, boxes = case("random")
    expected = points_in_boxes(points, boxes)
    got = points_in_boxes(torch.from_numpy(points), torch.from_numpy(boxes).double())
    assert isinstance(got, torch.Tensor) and got.dtype == torch.int32 and got.device.type == "cpu"
    np.testing.assert_array_equal(got.numpy(), expected)
    dense = points_in_boxes_all(torch.from_numpy(points), torch.from_numpy(boxes))
    assert dense.dtype == torch.bool
    with pytest.raises(ValueError, match="boxes is a numpy array on cpu but points is a torch array"):
        points_in_boxes(torch.from_numpy(points), boxes)


def test_numba_fallback_says_why_once(monkeypatch):
    monkeypatch.setattr(_backend, "native", None)
    monkeypatch.setattr(_backend, "_why_unavailable", "ImportError: simulated")
    monkeypatch.setattr(_backend, "_warned", False)
    points, boxes = case("random")
    with pytest.warns(nutrack.ops.NativeBackendUnavailable, match="simulated.*numba") as record:
        first = points_in_boxes(points, boxes)
        second = points_in_boxes(points, boxes)
    assert len(record) == 1
    np.testing.assert_array_equal(first, second)
    assert nutrack.ops.available_backends() == ["numba"]


def test_numba_twins_compile_in_nopython_mode():
    from nutrack.ops import _numba_points

    points, boxes = case("one_point")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        points_in_boxes_all(points, boxes, sparse=True, backend="numba")
        points_in_polygons(points[:, :2], np.ones((1, 3, 2)) * [[0, 0], [0, 1], [1, 0]], backend="numba")
    for name in ("points_in_boxes", "points_in_boxes_dense", "points_in_boxes_count",
                 "points_in_boxes_pairs", "points_in_polygons"):
        dispatcher = getattr(_numba_points, name)
        assert dispatcher.signatures, name
        assert all(not cres.objectmode for cres in dispatcher.overloads.values()), name


# ----------------------------------------------------------------------------- CUDA
@requires_cuda
@pytest.mark.cuda
@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("array_kind", ["torch", "cupy"])
def test_cuda_equals_numba(name, array_kind):
    points, boxes = case(name)
    if array_kind == "torch":
        import torch

        to_device = lambda a: torch.from_numpy(a).cuda()  # noqa: E731
        to_host = lambda a: a.cpu().numpy()  # noqa: E731
    else:
        cupy = pytest.importorskip("cupy")
        to_device, to_host = cupy.asarray, cupy.asnumpy
    p, b = to_device(points), to_device(boxes)
    np.testing.assert_array_equal(to_host(points_in_boxes(p, b)), points_in_boxes(points, boxes, backend="numba"))
    np.testing.assert_array_equal(to_host(points_in_boxes_all(p, b, sparse=False)),
                                  points_in_boxes_all(points, boxes, sparse=False, backend="numba"))
    np.testing.assert_array_equal(to_host(points_in_boxes_all(p, b, sparse=True)),
                                  points_in_boxes_all(points, boxes, sparse=True, backend="numba"))
    polygons = _convex_polygons(np.random.default_rng(0), 20, 5, True)
    np.testing.assert_array_equal(to_host(points_in_polygons(p, to_device(polygons))),
                                  points_in_polygons(points, polygons, backend="numba"))


@requires_cuda
@pytest.mark.cuda
def test_cuda_many_points_and_streams():
    import torch

    rng = np.random.default_rng(7)
    boxes = random_boxes(rng, 300, extent=20)
    points = rng.uniform(-25, 25, ((1 << 22) + 7, 3)).astype(np.float32)
    expected = points_in_boxes(points, boxes, backend="cpu" if "cpu" in HOST_BACKENDS else "numba")
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        got = points_in_boxes(torch.from_numpy(points).cuda(), torch.from_numpy(boxes).cuda())
    stream.synchronize()
    np.testing.assert_array_equal(got.cpu().numpy(), expected)
