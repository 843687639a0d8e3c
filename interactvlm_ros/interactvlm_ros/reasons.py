"""Why an input was not used, or was used with a caveat: one vocabulary for the node's
``/diagnostics`` and log, rosbag replay's ``replay_summary.json`` and the tests.

Each reason is a short snake_case key (the enum's value, what is counted and shown). Its
:attr:`Reason.severity` says how the node treats it:

* ``quiet``: routine filtering the user asked for (ignored classes, low scores, the
  ``max_detections`` limit): counted, logged at info level (throttled per reason);
* ``warn``: bad or unusable input, or an output with a caveat: counted, logged as a warning
  (throttled per reason), and the diagnostics level is WARN while it recurs;
* ``error``: the model failed on an input: counted, logged as an error, diagnostics ERROR
  while nothing else succeeds.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """Reasons an image, detections message, detection or pair was not used (or used with a
    caveat). The value is the key counted on /diagnostics and in replay summaries."""

    # Images and detections messages.
    IMAGE_WITHOUT_STAMP = "image_without_stamp"
    DETECTIONS_WITHOUT_STAMP = "detections_without_stamp"
    NEGATIVE_STAMP = "negative_stamp"
    EMPTY_DETECTIONS = "empty_detections"
    UNSUPPORTED_ENCODING = "unsupported_encoding"
    UNDECODABLE_IMAGE = "undecodable_image"
    EMPTY_IMAGE = "empty_image"
    BAD_IMAGE_SIZE = "bad_image_size"
    IMAGE_TOO_SMALL = "image_too_small"
    IMAGE_TOO_LARGE = "image_too_large"
    INCOMPATIBLE_QOS = "incompatible_qos"
    DUPLICATE_STAMP = "duplicate_stamp"
    NO_IMAGE_FOR_DETECTIONS = "no_image_for_detections"
    # Single detections.
    DETECTION_WITHOUT_CLASS = "detection_without_class"
    NAN_IN_DETECTION = "nan_in_detection"
    INVALID_LABEL = "invalid_label"
    IGNORED_CLASS = "ignored_class"
    LOW_SCORE = "low_score"
    EMPTY_BOX = "empty_box"
    BOX_TOO_SMALL = "box_too_small"
    BOX_OUTSIDE_IMAGE = "box_outside_image"
    BOX_TOO_LARGE = "box_too_large"
    DUPLICATE_DETECTION_ID = "duplicate_detection_id"
    DETECTIONS_OVER_LIMIT = "detections_over_limit"
    # Pairs.
    PAIRS_WITHOUT_VALID_DETECTIONS = "pairs_without_valid_detections"
    INFERENCE_ERROR = "inference_error"
    # Used, with a caveat.
    DETECTIONS_FRAME_MISMATCH = "detections_frame_mismatch"
    AFFORDANCE_SKIPPED_UNKNOWN_CLASS = "affordance_skipped_unknown_class"
    NO_PERSON_FOR_OBJECT = "no_person_for_object"
    NO_OBJECT_CONTACT_FOR_HANDOVER = "no_object_contact_for_handover"
    ANSWER_LIMIT_REACHED = "answer_limit_reached"
    ANSWER_WITHOUT_SEG = "answer_without_seg"
    NO_DEPTH_FOR_IMAGE = "no_depth_for_image"
    TOO_FEW_DEPTH_POINTS = "too_few_depth_points"
    BAD_DEPTH = "bad_depth"
    UNSUPPORTED_DEPTH_ENCODING = "unsupported_depth_encoding"
    # People in the camera frame (body/): that person gets no pose or placement; the rest of the
    # frame's outputs are still produced.
    NO_PERSON_FOUND = "no_person_found"
    PERSON_BOX_TOO_SMALL = "person_box_too_small"
    NO_CAMERA_INFO = "no_camera_info"
    TOO_FEW_LANDMARKS = "too_few_landmarks"
    NO_DEPTH_AT_LANDMARKS = "no_depth_at_landmarks"
    PERSON_BEHIND_CAMERA = "person_behind_camera"
    PERSON_TOO_FAR = "person_too_far"
    BAD_CAMERA_INFO = "bad_camera_info"
    PERSONS_OVER_LIMIT = "persons_over_limit"
    # Objects placed relative to the posed people (reconstruction/): that object is published
    # in its model frame, or without the consistency figures; the rest of the frame goes on.
    OBJECT_NOT_PLACED = "object_not_placed"
    OBJECT_FIT_FAILED = "object_fit_failed"
    OBJECT_BOX_AT_BORDER = "object_box_at_border"
    NO_CONTACT_REGION = "no_contact_region"

    @property
    def drops(self) -> bool:
        """True when the input is not used; False for the caveats (the output is produced)."""
        return self not in _CAVEATS

    @property
    def severity(self) -> str:
        """"quiet", "warn" or "error" (see the module docstring)."""
        if self in _QUIET:
            return "quiet"
        return "error" if self is Reason.INFERENCE_ERROR else "warn"

    @property
    def description(self) -> str:
        """One line: what was found (the documentation's table of reasons is made from these)."""
        return _DESCRIPTIONS[self]


_DESCRIPTIONS = {
    Reason.IMAGE_WITHOUT_STAMP: "an image whose header stamp is zero: it cannot be paired with detections",
    Reason.DETECTIONS_WITHOUT_STAMP: "a detections message whose header stamp is zero: it cannot be paired with an "
                                     "image",
    Reason.NEGATIVE_STAMP: "an image or detections message with a negative header stamp",
    Reason.EMPTY_DETECTIONS: "a detections message without any detection",
    Reason.UNSUPPORTED_ENCODING: "an image encoding other than rgb8, bgr8, mono8, rgba8, bgra8, or a compressed "
                                 "format other than jpeg / png",
    Reason.UNDECODABLE_IMAGE: "compressed image data that is empty or cannot be decoded as JPEG / PNG",
    Reason.EMPTY_IMAGE: "an image of width or height 0",
    Reason.BAD_IMAGE_SIZE: "a raw image (or depth image) whose data is not step x height bytes",
    Reason.IMAGE_TOO_SMALL: "an image whose smaller side is below min_image_size",
    Reason.IMAGE_TOO_LARGE: "an image with more than max_image_pixels pixels (for JPEG / PNG read from the header, "
                            "before decoding)",
    Reason.INCOMPATIBLE_QOS: "a publisher whose QoS cannot match one of the node's subscriptions: nothing arrives "
                             "from it",
    Reason.DUPLICATE_STAMP: "a second image, depth or CameraInfo message with the stamp of one kept (the first is "
                            "used)",
    Reason.NO_IMAGE_FOR_DETECTIONS: "a detections message with no image within sync_slop of its stamp (images lost or "
                                    "not published)",
    Reason.DETECTION_WITHOUT_CLASS: "a detection without results or with an empty class_id",
    Reason.NAN_IN_DETECTION: "a detection with a non-finite score or box",
    Reason.INVALID_LABEL: "a class label that cannot go into a prompt: too long (max_label_length), characters other "
                          "than letters, digits, space and _-'.,&+(), a special token, or no letter or digit",
    Reason.IGNORED_CLASS: "a detection of a class in ignore_classes",
    Reason.LOW_SCORE: "a detection scoring below min_score",
    Reason.EMPTY_BOX: "a detection box whose width or height is not positive",
    Reason.BOX_TOO_SMALL: "a detection box under 2 x 2 pixels",
    Reason.BOX_OUTSIDE_IMAGE: "a detection box that lies entirely outside the image",
    Reason.BOX_TOO_LARGE: "a detection box more than twice the image's width or height",
    Reason.DUPLICATE_DETECTION_ID: "a detection with the id of an earlier one in the same message (the first is "
                                   "used)",
    Reason.DETECTIONS_OVER_LIMIT: "object detections beyond max_detections (the highest scores are kept)",
    Reason.PAIRS_WITHOUT_VALID_DETECTIONS: "an image + detections pair in which no object detection was valid "
                                           "(each dropped detection is counted under its own reason)",
    Reason.INFERENCE_ERROR: "the model failed on a pair: nothing is published for it",
    Reason.DETECTIONS_FRAME_MISMATCH: "detections whose frame_id differs from the image's",
    Reason.AFFORDANCE_SKIPPED_UNKNOWN_CLASS: "an object class without mesh, proxy or depth: its ObjectAffordance is "
                                             "empty (geometry_source \"\")",
    Reason.NO_PERSON_FOR_OBJECT: "an object without a person detection to associate it with: the model sees the "
                                 "whole image",
    Reason.NO_OBJECT_CONTACT_FOR_HANDOVER: "task handover without a clearance: no object contact (joint model) and "
                                           "no posed person with the object's depth points; no "
                                           "robot_grasp_clearance field",
    Reason.ANSWER_LIMIT_REACHED: "an answer that reached max_new_tokens without a mask token: no mask",
    Reason.ANSWER_WITHOUT_SEG: "an answer that ended without a mask token: no mask",
    Reason.NO_DEPTH_FOR_IMAGE: "with use_depth, no depth image or CameraInfo came within depth_wait: processed "
                               "without depth",
    Reason.TOO_FEW_DEPTH_POINTS: "too little valid depth in a detection's box: its mesh or proxy is used",
    Reason.BAD_DEPTH: "a depth image or CameraInfo that cannot be used (size, buffer, intrinsics, no stamp): "
                      "processed without depth",
    Reason.UNSUPPORTED_DEPTH_ENCODING: "a depth encoding other than 16UC1 (mm) or 32FC1 (m): processed without depth",
    Reason.NO_PERSON_FOUND: "the body pose source found no person in a person detection's box: not posed",
    Reason.PERSON_BOX_TOO_SMALL: "a person box under 32 pixels on a side: not posed",
    Reason.NO_CAMERA_INFO: "no CameraInfo for the image: its people are found but not placed",
    Reason.TOO_FEW_LANDMARKS: "too few visible landmarks (or PnP found no pose) to place or pose a person",
    Reason.NO_DEPTH_AT_LANDMARKS: "too little usable depth at a person's landmarks, and too few landmarks for PnP: "
                                  "not placed",
    Reason.PERSON_BEHIND_CAMERA: "a placement that puts landmarks behind the camera: not placed",
    Reason.PERSON_TOO_FAR: "a placement that puts the person beyond 10 m: not placed",
    Reason.BAD_CAMERA_INFO: "a CameraInfo of another size than the image, or without focal lengths: not used",
    Reason.PERSONS_OVER_LIMIT: "person detections beyond max_posed_persons (the highest scores are posed)",
    Reason.OBJECT_NOT_PLACED: "an object without depth that cannot be placed by contact (no posed person, no 3D "
                              "contact on the body, no CameraInfo, no mesh or proxy): its points stay in its model "
                              "frame",
    Reason.OBJECT_FIT_FAILED: "the contact fit of an object without depth did not converge (diverged, behind the "
                              "camera, far from the contact, box mismatch, penetrating the body): not published as "
                              "placed",
    Reason.OBJECT_BOX_AT_BORDER: "an object's box touches the image's border (the object may be cut off): the contact "
                                 "fit uses the clipped box",
    Reason.NO_CONTACT_REGION: "an object whose human or object contact map has no point above its threshold: no "
                              "contact fit (it stays in its model frame) or, with depth, no contact consistency",
}


_QUIET = frozenset({Reason.IGNORED_CLASS, Reason.LOW_SCORE, Reason.DETECTIONS_OVER_LIMIT, Reason.EMPTY_DETECTIONS,
                    Reason.AFFORDANCE_SKIPPED_UNKNOWN_CLASS, Reason.PAIRS_WITHOUT_VALID_DETECTIONS,
                    Reason.NO_PERSON_FOR_OBJECT, Reason.PERSONS_OVER_LIMIT, Reason.OBJECT_NOT_PLACED})


_CAVEATS = frozenset({Reason.DETECTIONS_FRAME_MISMATCH, Reason.AFFORDANCE_SKIPPED_UNKNOWN_CLASS,
                      Reason.NO_PERSON_FOR_OBJECT, Reason.NO_OBJECT_CONTACT_FOR_HANDOVER,
                      Reason.ANSWER_LIMIT_REACHED, Reason.ANSWER_WITHOUT_SEG, Reason.NO_DEPTH_FOR_IMAGE,
                      Reason.TOO_FEW_DEPTH_POINTS, Reason.BAD_DEPTH, Reason.UNSUPPORTED_DEPTH_ENCODING,
                      Reason.NO_PERSON_FOUND, Reason.PERSON_BOX_TOO_SMALL, Reason.NO_CAMERA_INFO,
                      Reason.TOO_FEW_LANDMARKS, Reason.NO_DEPTH_AT_LANDMARKS, Reason.PERSON_BEHIND_CAMERA,
                      Reason.PERSON_TOO_FAR, Reason.BAD_CAMERA_INFO, Reason.PERSONS_OVER_LIMIT,
                      Reason.OBJECT_NOT_PLACED, Reason.OBJECT_FIT_FAILED, Reason.OBJECT_BOX_AT_BORDER,
                      Reason.NO_CONTACT_REGION})


class Rejected(ValueError):
    """An input that cannot be used: ``reason`` (a :class:`Reason`) and a human-readable
    detail (the exception's message is ``"<reason>: <detail>"``)."""

    def __init__(self, reason: Reason, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = Reason(reason)
        self.detail = detail
