"""Box validation and the box frames every backend reads.

A box is a float32 row `x, y, z, dx, dy, dz, yaw` (z at the centre, dx along the heading).
The kernels read a frame instead (layout in csrc/include/nutrack/common.h): centre, half
extents, cos/sin of the yaw and a conservative BEV bound. This module is the ONLY place that
evaluates cos/sin for the ops: in float64, rounded once to float32, on the device holding the
boxes. So every backend reads the same rotation and only + - * / remain in the kernels.
"""
from __future__ import annotations

import sys
from typing import Any

import numpy as np

from nutrack.ops import _arrays

BOX_FRAME_WIDTH = 10
# Relative inflation of the BEV prefilter bounds: far above float32 rounding (~1e-7), so the
# prefilter never rejects a point that the exact test would accept.
_PREFILTER_SLACK = 1.001


def validate_boxes(boxes: Any, name: str = "boxes") -> Any:
    """(M, 7) float32 boxes of the caller's kind; rejects NaN/inf and non-positive sizes."""
    boxes = _arrays.as_float32(boxes, name, ndim=2, width=7)
    if boxes.shape[0]:
        _arrays.check_finite(boxes, name)
        _arrays.check_positive(boxes[:, 3:6], f"{name} sizes (columns dx, dy, dz)")
    return boxes


def box_frames(boxes: Any) -> Any:
    """(M, 7) float32 boxes -> (M, BOX_FRAME_WIDTH) float32 frames, same kind and device."""
    kind = _arrays.kind_of(boxes)
    if kind == "torch":
        torch = sys.modules["torch"]
        yaw = boxes[:, 6].double()
        c, s = torch.cos(yaw).float(), torch.sin(yaw).float()
        half = boxes[:, 3:6] * 0.5
        slack = torch.tensor(_PREFILTER_SLACK, dtype=torch.float32, device=boxes.device)
        rx = (c.abs() * half[:, 0] + s.abs() * half[:, 1]) * slack
        ry = (s.abs() * half[:, 0] + c.abs() * half[:, 1]) * slack
        return torch.stack([boxes[:, 0], boxes[:, 1], boxes[:, 2], half[:, 0], half[:, 1],
                            half[:, 2], c, s, rx, ry], dim=1).contiguous()
    xp = sys.modules["cupy"] if kind == "cupy" else np
    frames = xp.empty((boxes.shape[0], BOX_FRAME_WIDTH), dtype=xp.float32)
    frames[:, 0:3] = boxes[:, 0:3]
    frames[:, 3:6] = boxes[:, 3:6] * xp.float32(0.5)
    yaw = boxes[:, 6].astype(xp.float64)
    frames[:, 6] = xp.cos(yaw)  # float64 rounded to float32 on assignment
    frames[:, 7] = xp.sin(yaw)
    abs_c, abs_s = xp.abs(frames[:, 6]), xp.abs(frames[:, 7])
    slack = xp.float32(_PREFILTER_SLACK)
    frames[:, 8] = (abs_c * frames[:, 3] + abs_s * frames[:, 4]) * slack
    frames[:, 9] = (abs_s * frames[:, 3] + abs_c * frames[:, 4]) * slack
    return frames
