"""Messages with realistic content, built the same way by the tests and by the publisher
subprocess (tests/ros_publisher.py), so a received message can be compared field by field.

Everything here is deterministic (fixed seeds): two calls give equal messages.
"""

from __future__ import annotations

import numpy as np
from builtin_interfaces.msg import Time
from interactvlm_msgs.msg import Interaction, InteractionArray
from interactvlm_msgs.srv import EstimateInteractions
from sensor_msgs.msg import Image
from std_msgs.msg import Header
from vision_msgs.msg import Detection2D, Detection2DArray

from interactvlm_ros.body.landmarks import NUM_LANDMARKS
from interactvlm_ros.detection import Detection
from interactvlm_ros.ros.conversions import detections_to_msg, human_contact_msg, object_affordance_msg, person_msg

SMPLH_VERTICES = 6890
PIAD_POINTS = 2048
IMAGE_FRAME = "head_camera_rgb_optical_frame"
STAMP = Time(sec=1_700_000_123, nanosec=456_789_000)


def image_header() -> Header:
    return Header(stamp=STAMP, frame_id=IMAGE_FRAME)


#: The detections of :func:`detections` (the project's Detection type, boxes as pixels xyxy).
DETECTIONS = (Detection("cup", (380.5, 189.0, 444.5, 277.0), 0.87, "track-17"),
              Detection("chair", (45.0, 185.0, 255.0, 475.0), 0.61, "track-18"))


def detections() -> Detection2DArray:
    """Two detections in a 640x480 image: a cup and a chair, as a YOLO node would send them,
    built with the project's converter."""
    return detections_to_msg(DETECTIONS, image_header())


def contact_probabilities(seed: int = 7) -> np.ndarray:
    """(6890,) float32 contact probabilities: mostly near 0, a hand-sized patch near 1."""
    rng = np.random.default_rng(seed)
    p = rng.beta(0.5, 8.0, SMPLH_VERTICES).astype(np.float32)
    p[5200:5400] = rng.uniform(0.6, 1.0, 200).astype(np.float32)
    return p


def object_points(seed: int = 11) -> tuple[np.ndarray, np.ndarray]:
    """(2048, 3) float32 points on a 4 cm radius, 10 cm tall cylinder and (2048,) affordance."""
    rng = np.random.default_rng(seed)
    theta = rng.uniform(0.0, 2.0 * np.pi, PIAD_POINTS)
    z = rng.uniform(-0.05, 0.05, PIAD_POINTS)
    points = np.stack([0.04 * np.cos(theta), 0.04 * np.sin(theta), z], axis=1).astype(np.float32)
    affordance = np.clip((0.05 - z) / 0.1, 0.0, 1.0).astype(np.float32)  # handle at the bottom
    return points, affordance


#: The person detection both objects are associated with (not in :func:`detections`).
PERSON_ID = "track-20"
#: Vertex ids of the hands of the synthetic posed SMPL-H body (the contact patch of
#: :func:`contact_probabilities`).
PART_VERTEX_IDS = {"right hand": np.arange(5200, 5300), "left hand": np.arange(5300, 5400)}


def posed_body(seed: int = 13) -> tuple[np.ndarray, np.ndarray]:
    """(6890, 3) float32 vertices on a 30 cm sphere 2.5 m in front of the camera (metres,
    optical frame) and their (6890, 3) float32 unit normals."""
    rng = np.random.default_rng(seed)
    normals = rng.normal(size=(SMPLH_VERTICES, 3))
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    vertices = np.array([0.1, -0.2, 2.5]) + 0.3 * normals
    return vertices.astype(np.float32), normals.astype(np.float32)


def person_landmarks(seed: int = 17) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(33, 2) pixels, (33,) float32 visibility and (33, 3) metres of the person's landmarks."""
    rng = np.random.default_rng(seed)
    pixels = rng.uniform(0.0, 640.0, (NUM_LANDMARKS, 2)).round(2)
    visibility = rng.uniform(0.0, 1.0, NUM_LANDMARKS).astype(np.float32)
    return pixels, visibility, rng.normal((0.1, -0.2, 2.5), 0.3, (NUM_LANDMARKS, 3)).astype(np.float32)


def person():
    pixels, visibility, landmarks = person_landmarks()
    vertices, normals = posed_body()
    return person_msg(image_header(), PERSON_ID, pixels, visibility, landmarks=landmarks, placement_method="depth",
                      body_model="smplh", vertices=vertices, normals=normals)


def interaction(det: Detection2D) -> Interaction:
    label = det.results[0].hypothesis.class_id
    points, affordance = object_points()
    return Interaction(
        detection=det,
        person_detection_id=PERSON_ID,
        human_contact=human_contact_msg(
            image_header(), "smplh", contact_probabilities(), 0.5, ["right hand", "left hand"], label, det.id,
            posed_vertices=posed_body()[0], placement_method="depth", part_vertex_ids=PART_VERTEX_IDS,
        ),
        object_affordance=object_affordance_msg(
            Header(stamp=STAMP, frame_id=f"{label}_model"),
            det.id,
            label,
            "grasp",
            f"mesh:package://interactvlm_bringup/meshes/{label}.obj",
            points,
            affordance,
            0.5,
        ),
        contact_answer="The contacting body parts are right hand, left hand, and the contact region is [SEG].",
        affordance_answer=f"The affordance is grasp, and the contact region on the {label} is [SEG].",
    )


def interaction_array() -> InteractionArray:
    return InteractionArray(
        header=image_header(),
        interactions=[interaction(det) for det in detections().detections],
        persons=[person()],
        model_id="interactvlm-3d-hcontact-damon",
        weights_are_random=False,
        inference_ms=412.25,
    )


def rgb_image(width: int = 64, height: int = 48) -> Image:
    """A small rgb8 gradient image with a 3-byte-per-pixel step."""
    yy, xx = np.mgrid[0:height, 0:width]
    pixels = np.stack([xx * 255 // (width - 1), yy * 255 // (height - 1), np.full_like(xx, 128)], axis=2)
    return Image(
        header=image_header(),
        height=height,
        width=width,
        encoding="rgb8",
        is_bigendian=0,
        step=3 * width,
        data=pixels.astype(np.uint8).tobytes(),
    )


def estimate_request() -> EstimateInteractions.Request:
    return EstimateInteractions.Request(image=rgb_image(), detections=detections(), task="handover")


def estimate_response() -> EstimateInteractions.Response:
    return EstimateInteractions.Response(success=True, message="", interactions=interaction_array())


FACTORIES = {
    "Detection2DArray": detections,
    "InteractionArray": interaction_array,
}
