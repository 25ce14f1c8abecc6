"""nutrack: GPU-accelerated 3D multi-object tracking for nuScenes."""

__version__ = "0.1.0"
