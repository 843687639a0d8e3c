"""Start interactvlm_node (a lifecycle node) and, optionally, RViz.

    ros2 launch interactvlm_bringup interactvlm.launch.py \\
        image_topic:=/camera/color/image_raw detections_topic:=/yolo/detections \\
        contact_checkpoint_dir:=/models/interactvlm-3d-hcontact-damon \\
        clip_dir:=/models/clip-vit-large-patch14 device:=cuda:0 rviz:=true

Parameters come from ``params_file`` (default: this package's config/interactvlm.yaml, every
parameter at its default). The launch arguments that mirror a parameter (the entries of
interactvlm_ros's parameter table marked ``launch``: checkpoint directories, device, dtype,
quantization, device_map, max_memory, use_compressed, use_tiny_checkpoint) are generated from
that table and override the file only when they are given: left empty, the file's value stays. The node configures and activates itself (its
``autostart`` parameter, true by default); with ``autostart: false`` in the params file it waits
for ``ros2 lifecycle set /interactvlm_node configure`` / ``activate``.

Topics: the node subscribes to the relative names ``image`` and ``detections``, remapped here
to ``image_topic`` and ``detections_topic`` (with ``use_compressed:=true``, image_topic must
carry sensor_msgs/CompressedImage, e.g. ``/camera/image_raw/compressed``). It publishes
``~/interactions``, ``~/markers`` and ``/diagnostics`` and serves ``~/estimate_interactions``.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import LifecycleNode, Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

from interactvlm_ros.config import PARAMETERS

PACKAGE = "interactvlm_ros"
EXECUTABLE = "interactvlm_node"  # console script of interactvlm_ros (setup.py entry_points)
NODE_NAME = "interactvlm_node"
BRINGUP = "interactvlm_bringup"

#: Parameters with a launch argument that overrides the params file when not empty.
OVERRIDES = tuple(p for p in PARAMETERS if p.launch)
#: Those of string type, and of bool type (the table has no other launch overrides).
STRING_OVERRIDES = tuple(p.name for p in OVERRIDES if isinstance(p.default, str))
BOOL_OVERRIDES = tuple(p.name for p in OVERRIDES if isinstance(p.default, bool))

_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


def _as_bool(name: str, text: str) -> bool:
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"launch argument {name}:={text!r} is not a bool (true/false)")


def _launch_setup(context, *args, **kwargs):
    """The node and RViz, built once the launch arguments are known (overrides are added
    only for arguments that were given)."""
    overrides = {}
    for name in STRING_OVERRIDES:
        value = LaunchConfiguration(name).perform(context)
        if value != "":
            # value_type=str: keep e.g. a directory named "2024" a string, not an int.
            overrides[name] = ParameterValue(value, value_type=str)
    for name in BOOL_OVERRIDES:
        value = LaunchConfiguration(name).perform(context)
        if value.strip() != "":
            overrides[name] = _as_bool(name, value)

    parameters = [LaunchConfiguration("params_file")]
    if overrides:
        parameters.append(overrides)  # later entries override the params file

    node = LifecycleNode(
        package=PACKAGE,
        executable=EXECUTABLE,
        name=NODE_NAME,
        namespace=LaunchConfiguration("namespace"),
        parameters=parameters,
        remappings=[
            ("image", LaunchConfiguration("image_topic")),
            ("detections", LaunchConfiguration("detections_topic")),
        ],
        ros_arguments=["--log-level", LaunchConfiguration("log_level")],
        output="screen",
        emulate_tty=True,
    )

    # The RViz config names /interactvlm_node/markers and /image; remap them to where this
    # launch puts the node's markers (its namespace) and the camera image.
    namespace = LaunchConfiguration("namespace").perform(context).strip("/")
    markers_topic = "/" + "/".join(part for part in (namespace, NODE_NAME, "markers") if part)
    rviz = Node(
        package="rviz2",
        executable="rviz2",
        name="rviz2",
        arguments=["-d", PathJoinSubstitution([FindPackageShare(BRINGUP), "rviz", "interactvlm.rviz"])],
        remappings=[
            ("/interactvlm_node/markers", markers_topic),
            ("/image", LaunchConfiguration("image_topic")),
        ],
        condition=IfCondition(LaunchConfiguration("rviz")),
        output="screen",
    )
    return [node, rviz]


def generate_launch_description():
    default_params = PathJoinSubstitution([FindPackageShare(BRINGUP), "config", "interactvlm.yaml"])
    arguments = [
        DeclareLaunchArgument("params_file", default_value=default_params,
                              description="ROS 2 parameter file of interactvlm_node"),
        DeclareLaunchArgument("image_topic", default_value="image",
                              description="camera image topic (remaps the node's 'image'); "
                                          "sensor_msgs/CompressedImage when use_compressed is true"),
        DeclareLaunchArgument("detections_topic", default_value="detections",
                              description="vision_msgs/Detection2DArray topic (remaps the node's 'detections')"),
        *(DeclareLaunchArgument(p.name, default_value="", description=f"{p.description}; empty: params file")
          for p in OVERRIDES),
        DeclareLaunchArgument("namespace", default_value="", description="namespace of the node"),
        DeclareLaunchArgument("log_level", default_value="info",
                              choices=["debug", "info", "warn", "error", "fatal"],
                              description="log level of the node"),
        DeclareLaunchArgument("rviz", default_value="false", choices=["true", "false"],
                              description="also start rviz2 with this package's rviz/interactvlm.rviz"),
    ]
    return LaunchDescription(arguments + [OpaqueFunction(function=_launch_setup)])
