"""nuScenes' fixed vocabulary (categories, attributes, visibility levels, locations), the
object sizes the world draws from, and the LIDAR_TOP mounting and beam layout."""

from __future__ import annotations

import math

CATEGORIES = [
    ("animal", "All animals, e.g. cats, rats, dogs, deer, birds."),
    ("human.pedestrian.adult", "Adult subcategory."),
    ("human.pedestrian.child", "Child subcategory."),
    ("human.pedestrian.construction_worker", "Construction worker"),
    ("human.pedestrian.personal_mobility", "A small electric or self-propelled vehicle."),
    ("human.pedestrian.police_officer", "Police officer."),
    ("human.pedestrian.stroller", "Strollers."),
    ("human.pedestrian.wheelchair", "Wheelchairs."),
    ("movable_object.barrier", "Temporary road barrier placed in the scene."),
    ("movable_object.debris", "Movable object that is left on the driveable surface."),
    ("movable_object.pushable_pullable", "Objects that a pedestrian may push or pull."),
    ("movable_object.trafficcone", "All types of traffic cone."),
    ("static_object.bicycle_rack", "Area or device intended to park or secure the bicycles."),
    ("vehicle.bicycle", "Human or electric powered 2-wheeled vehicle."),
    ("vehicle.bus.bendy", "Bendy bus subcategory."),
    ("vehicle.bus.rigid", "Rigid bus subcategory."),
    ("vehicle.car", "Vehicle designed primarily for personal use."),
    ("vehicle.construction", "Vehicles primarily designed for construction."),
    ("vehicle.emergency.ambulance", "All types of ambulances."),
    ("vehicle.emergency.police", "All types of police vehicles."),
    ("vehicle.motorcycle", "Gasoline or electric powered 2-wheeled vehicle."),
    ("vehicle.trailer", "Any vehicle trailer."),
    ("vehicle.truck", "Vehicles primarily designed to haul cargo."),
]
ATTRIBUTES = [
    ("vehicle.moving", "Vehicle is moving."),
    ("vehicle.stopped", "Vehicle, with a driver/rider in/on it, is currently stationary but has an intent to move."),
    ("vehicle.parked", "Vehicle is stationary (usually for longer duration) with no immediate intent to move."),
    ("cycle.with_rider", "There is a rider on the bicycle or motorcycle."),
    ("cycle.without_rider", "There is NO rider on the bicycle or motorcycle."),
    ("pedestrian.sitting_lying_down", "The human is sitting or lying down."),
    ("pedestrian.standing", "The human is standing."),
    ("pedestrian.moving", "The human is moving."),
]
VISIBILITY = [("1", "v0-40", "visibility of whole object is between 0 and 40%"),
               ("2", "v40-60", "visibility of whole object is between 40 and 60%"),
               ("3", "v60-80", "visibility of whole object is between 60 and 80%"),
               ("4", "v80-100", "visibility of whole object is between 80 and 100%")]
LOCATIONS = ["singapore-onenorth", "boston-seaport", "singapore-queenstown", "singapore-hollandvillage"]

# mean (w, l, h) in metres, close to nuScenes' per-category means (nuScenes stores wlh)
SIZE_WLH = {
    "vehicle.car": (1.95, 4.62, 1.73),
    "vehicle.truck": (2.51, 6.93, 2.84),
    "vehicle.bus.rigid": (2.94, 11.19, 3.47),
    "vehicle.bus.bendy": (2.95, 17.5, 3.4),
    "vehicle.trailer": (2.90, 10.5, 3.87),
    "human.pedestrian.adult": (0.67, 0.73, 1.77),
    "human.pedestrian.child": (0.52, 0.52, 1.30),
    "human.pedestrian.construction_worker": (0.70, 0.75, 1.78),
    "vehicle.motorcycle": (0.77, 2.11, 1.47),
    "vehicle.bicycle": (0.61, 1.70, 1.29),
    "vehicle.construction": (2.85, 6.37, 3.19),
    "movable_object.barrier": (2.53, 0.50, 0.98),
    "movable_object.trafficcone": (0.41, 0.41, 1.07),
}
# mean lidar return intensity per category family (the first part of the category name)
INTENSITY = {"vehicle": 45.0, "human": 20.0, "movable_object": 70.0, "clutter": 35.0}

# LIDAR_TOP mounting (as nuScenes' Renault Zoe: x forward, yaw -90 deg)
LIDAR_TRANSLATION = [0.985793, 0.0, 1.84019]
LIDAR_ROTATION = [math.cos(-math.pi / 4), 0.0, 0.0, math.sin(-math.pi / 4)]
LIDAR_YAW_IN_EGO = -math.pi / 2  # the yaw of LIDAR_ROTATION
ELEVATION_RANGE_DEG = (-30.67, 10.67)
PHYSICAL_INSET = 0.05  # metres: surfaces lie inside the annotated box by this much
RANGE_NOISE = 0.012    # metres, clipped at 2.5 sigma (< inset)
