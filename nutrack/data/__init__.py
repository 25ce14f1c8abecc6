"""nuScenes data layer: devkit access, detection/tracking files, GT assignment, synthetic data.

See docs/data.md. The names most code needs are re-exported here.
"""

from .assign import Assignment, assign_frame, assign_gt
from .boxes import (
    boxes_from_nuscenes,
    boxes_from_records,
    boxes_to_nuscenes,
    quaternion_from_yaw,
    transform_boxes,
    transform_matrix,
    transform_points,
    yaw_from_quaternion,
)
from .classes import CLASS_TO_ID, DETECTION_CLASSES, NUM_CLASSES, TRACKING_CLASSES, category_to_class
from .detections import (
    DetectionSet,
    Detections,
    LabelledDetections,
    SubmissionFormatError,
    Tracks,
    load_detections,
    load_tracking_results,
)
from .writers import write_detections, write_tracking_results
from .nuscenes_io import Frame, GroundTruth, NuScenesData, Scene, load_pcd_bin

__all__ = [
    "Assignment",
    "assign_frame",
    "assign_gt",
    "boxes_from_nuscenes",
    "boxes_from_records",
    "boxes_to_nuscenes",
    "quaternion_from_yaw",
    "transform_boxes",
    "transform_matrix",
    "transform_points",
    "yaw_from_quaternion",
    "CLASS_TO_ID",
    "DETECTION_CLASSES",
    "NUM_CLASSES",
    "TRACKING_CLASSES",
    "category_to_class",
    "DetectionSet",
    "Detections",
    "LabelledDetections",
    "SubmissionFormatError",
    "Tracks",
    "load_detections",
    "load_tracking_results",
    "write_detections",
    "write_tracking_results",
    "Frame",
    "GroundTruth",
    "NuScenesData",
    "Scene",
    "load_pcd_bin",
]
