"""Training and scoring throughput of the learned association network.

`pytest benchmarks/test_bench_training.py --benchmark`. Groups: `train step (8 frame pairs)`
(one optimiser step on a fixed batch; frame pairs/s = 8 / median) and `learned scorer (1 frame)`
(one frame of the LearnedScorer: features, PointNet, pair head), each on the CPU and, when
available, CUDA."""
import numpy as np
import pytest
import torch

from nutrack.model import AssociationNet, ModelConfig, association_loss, make_objects
from nutrack.model.training_data import FrameRecord, batch_to_device, collate, frame_pairs

# (device, torch intra-op threads): the CPU with 1 thread (nutrack.train's default) and with 2
DEVICES = [("cpu", 1), ("cpu", 2)] + ([("cuda", None)] if torch.cuda.is_available() else [])


@pytest.fixture
def threads(request):
    n = torch.get_num_threads()
    if request.param is not None:
        torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(n)


def _impl(device, nthreads):
    return f"torch-{device}" + (f"-{nthreads}thr" if nthreads else "")


def _scene(rng, n_obj=60, n_frames=6, dt=0.5):
    centre = rng.uniform(-50, 50, (n_obj, 2))
    vel = rng.uniform(-8, 8, (n_obj, 2))
    size = np.stack([rng.uniform(3.5, 5, n_obj), rng.uniform(1.6, 2.0, n_obj), rng.uniform(1.4, 1.8, n_obj)], 1)
    yaw = np.arctan2(vel[:, 1], vel[:, 0])
    cls = rng.integers(0, 7, n_obj)
    frames = []
    for t in range(n_frames):
        c = centre + vel * dt * t + rng.normal(0, 0.2, (n_obj, 2))
        boxes = np.concatenate([c, np.ones((n_obj, 1)), size, yaw[:, None]], 1).astype(np.float32)
        pts = np.concatenate([rng.uniform(-60, 60, (30000, 2)), rng.uniform(-1, 3, (30000, 1)),
                              rng.uniform(0, 100, (30000, 1))], 1).astype(np.float32)
        obj = make_objects(boxes, vel, rng.uniform(0.3, 1, n_obj), cls, np.eye(4), pts)
        frames.append(FrameRecord("s", t, f"t{t}", t * dt, obj, np.arange(n_obj)))
    return frames


@pytest.fixture(scope="module")
def scenes():
    rng = np.random.default_rng(0)
    return [_scene(rng), _scene(rng)]


@pytest.mark.parametrize("device,threads", DEVICES, indirect=["threads"])
def test_bench_train_step(benchmark, scenes, device, threads):
    torch.manual_seed(0)
    model = AssociationNet(ModelConfig()).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    pairs = frame_pairs(scenes, 3)[:8]
    rng = np.random.default_rng(0)

    def step():
        b = batch_to_device(collate(scenes, pairs, 24, rng), device)
        logits, nm = model(b)
        loss = association_loss(logits, nm, b)[0] + 0.0 * nm.sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if device == "cuda":
            torch.cuda.synchronize()

    benchmark.group = "train step (8 frame pairs)"
    benchmark.extra_info["impl"] = _impl(device, threads)
    benchmark(step)


@pytest.mark.parametrize("device,threads", DEVICES, indirect=["threads"])
def test_bench_scorer_frame(benchmark, scenes, device, threads):
    from nutrack.data import Detections
    from nutrack.model import LearnedScorer
    from nutrack.tracking.scorer import FrameContext, TrackView

    model = AssociationNet(ModelConfig()).to(device).eval()
    scorer = LearnedScorer(model, device=device, threads=threads)  # the thread count under test
    f0, f1 = scenes[0][0], scenes[0][1]
    n = len(f0.objects)
    pts = np.concatenate([np.random.default_rng(1).uniform(-60, 60, (30000, 3)),
                          np.zeros((30000, 1))], 1).astype(np.float32)
    tv = TrackView(ids=np.arange(1, n + 1), classes=f0.objects.classes, boxes=f0.objects.boxes,
                   velocities=f0.objects.velocities, scores=f0.objects.scores, hits=np.ones(n, np.int64),
                   age=np.ones(n, np.int64), time_since_update=np.ones(n, np.int64), confirmed=np.ones(n, bool))
    det = Detections(f1.objects.boxes, f1.objects.velocities, f1.objects.scores, f1.objects.classes)
    ctx = FrameContext(timestamp=0.5, time_lag=0.5, index=1, points=lambda: pts)

    def frame():
        scorer.reset()
        scorer(tv, det, ctx)

    benchmark.group = "learned scorer (1 frame, 60 tracks x 60 detections)"
    benchmark.extra_info["impl"] = _impl(device, threads)
    benchmark(frame)
