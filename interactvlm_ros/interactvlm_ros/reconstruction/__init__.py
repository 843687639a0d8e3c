"""Objects placed in the camera's optical frame from their contact with a posed person (no ROS
imports; numpy, scipy and torch on the CPU).

* :func:`place_object` (:mod:`.placement`): an object mesh in its model frame -> rotation,
  translation (and a scale within a range) into the optical frame, from the posed body, both
  contact maps, the detection box and the intrinsics; a verdict and residuals.
* :func:`consistency` (:mod:`.fields`): the same contact and penetration terms for an object
  already in the optical frame (points from depth), without fitting.
* :func:`proximity_fields` (:mod:`.fields`): per body vertex the distance to the object, per
  object point the distance to the body.
"""

from .fields import Consistency, EmptyContactError, ProximityFields, consistency, proximity_fields
from .placement import REASONS, ObjectPlacement, PlacementSettings, place_object

__all__ = ["REASONS", "Consistency", "EmptyContactError", "ObjectPlacement", "PlacementSettings", "ProximityFields",
           "consistency", "place_object", "proximity_fields"]
