"""Figures drawn from the messages of an output bag (any replayed bag, the node's recordings):
the people of an image in its camera's optical frame (:func:`people_figure_from_msgs`).

Everything comes from the InteractionArray (Person, HumanContact.posed_body, ObjectAffordance,
the detections) and the image's CameraInfo; the drawing is ``eval.report.people_figure``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np

from ..eval.report import FigureObject, FigurePerson, people_figure
from .conversions import affordance_from_cloud, detection_from_msg, person_from_msg, posed_body_from_cloud


def figure_people(message, faces: Mapping[str, np.ndarray] | None = None) -> tuple[list, list]:
    """(:class:`FigurePerson` list, :class:`FigureObject` list) of an InteractionArray.

    Each person's posed body (Person.posed_body) is coloured by the contact of the objects
    associated with it (Interaction.person_detection_id): HumanContact.posed_body's contact,
    the largest over its objects when it has several. Objects get their points where they are
    in the optical frame (ObjectAffordance.placement "depth" or "contact_fit"), else none.

    Args:
        message: interactvlm_msgs/InteractionArray.
        faces: body model name (Person.body_model) -> (F, 3) triangles
            (``geometry.body.load_body_model(name).faces``); a body model not in it is drawn
            as points.

    Raises:
        ValueError: a Person or cloud that does not read back (see ``conversions``), a
            HumanContact.posed_body without a contact per vertex of its person's posed body.
    """
    faces = faces or {}
    objects = []
    for index, interaction in enumerate(message.interactions):
        detection = detection_from_msg(interaction.detection, index)
        affordance = interaction.object_affordance
        points = values = None
        if (affordance.placement or affordance.geometry_source == "depth") and affordance.points.width:
            points, values = affordance_from_cloud(affordance.points)
        objects.append(FigureObject(detection.id, detection.label, detection.bbox_xyxy, points, values,
                                    affordance.placement or ("depth" if points is not None else ""),
                                    affordance.fit_status))
    persons = []
    for msg in message.persons:
        person = person_from_msg(msg)
        maps, labels = [], []
        for interaction in message.interactions:
            contact = interaction.human_contact
            if interaction.person_detection_id != person.detection_id or not contact.posed_body.width:
                continue
            cloud = posed_body_from_cloud(contact.posed_body)
            if cloud.contact is None or person.vertices is None or len(cloud.contact) != len(person.vertices):
                raise ValueError(f"HumanContact.posed_body of {interaction.detection.id!r}: "
                                 f"{'no' if cloud.contact is None else len(cloud.contact)} contact values for the "
                                 f"{0 if person.vertices is None else len(person.vertices)}-vertex posed body of "
                                 f"person {person.detection_id!r}")
            maps.append(cloud.contact)
            labels.append(contact.object_label or interaction.detection.id)
        persons.append(FigurePerson(
            person.detection_id, person.landmark_pixels, person.landmark_visibility, person.placement_method,
            person.vertices, faces.get(person.body_model) if person.vertices is not None else None,
            np.max(maps, axis=0) if maps else None, " and ".join(labels)))
    return persons, objects


def people_figure_from_msgs(path: str | Path, image: np.ndarray, camera_info, message,
                            faces: Mapping[str, np.ndarray] | None = None, note: str = "") -> Path:
    """The people figure (``eval.report.people_figure``) of one image from its messages.

    Args:
        path: output PNG.
        image: (H, W, 3) uint8 RGB, the image the message was made from.
        camera_info: its sensor_msgs/CameraInfo (K, width, height).
        message: the image's interactvlm_msgs/InteractionArray; its ``weights_are_random``
            labels the figure.
        faces: see :func:`figure_people`.
        note: caption line (e.g. where the intrinsics came from).

    Raises:
        ValueError: a CameraInfo of another size than the image, or see :func:`figure_people`
            and ``people_figure``.
    """
    height, width = np.shape(image)[:2]
    if (int(camera_info.width), int(camera_info.height)) != (width, height):
        raise ValueError(f"CameraInfo of a {camera_info.width}x{camera_info.height} image for a {width}x{height} "
                         "image")
    persons, objects = figure_people(message, faces)
    stamp = message.header.stamp.sec + message.header.stamp.nanosec * 1e-9
    placed = ", ".join(f"{p.detection_id}: {p.placement_method or 'not placed'}" for p in persons) or "no person"
    title = f"people in the camera frame, image {stamp:.3f} s ({placed})"
    return people_figure(path, image, list(camera_info.k), persons, objects, title, bool(message.weights_are_random),
                         note)
