"""Offline rosbag replay: run interactvlm_node's pipeline over a recorded bag.

    ros2 launch interactvlm_bringup replay.launch.py in_bag:=/data/kitchen out_bag:=/data/kitchen_ivlm \\
        contact_checkpoint_dir:=/models/interactvlm-3d-hcontact-damon clip_dir:=/models/clip-vit-large-patch14

This is a wrapper around the console command (no ROS graph involved; the bag is read and
written directly)::

    interactvlm-ros replay IN_BAG OUT_BAG [--params-file F] [--image-topic T] [--detections-topic T]
        [--contact-checkpoint-dir D] [--use-tiny-checkpoint] ... (every node parameter the command takes)

The launch arguments mirroring node parameters are generated from interactvlm_ros's parameter
table (the entries marked ``cli``, the command's options). Options whose launch argument is
empty are not passed (the command's defaults apply).
"""

import os
import shutil

from ament_index_python.packages import PackageNotFoundError, get_package_prefix
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess, OpaqueFunction
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.substitutions import FindPackageShare

from interactvlm_ros.config import PARAMETERS

PACKAGE = "interactvlm_ros"
COMMAND = "interactvlm-ros"  # console script of interactvlm_ros (setup.py entry_points)
BRINGUP = "interactvlm_bringup"

#: Node parameters the command takes as options (the table's ``cli`` entries).
CLI_PARAMETERS = tuple(p for p in PARAMETERS if p.cli)
#: launch argument -> command-line option, passed when the argument is not empty.
VALUE_OPTIONS = {
    "params_file": "--params-file", "image_topic": "--image-topic", "detections_topic": "--detections-topic",
    **{p.name: "--" + p.name.replace("_", "-") for p in CLI_PARAMETERS if not isinstance(p.default, bool)},
}
#: Flags: passed when the launch argument is true.
FLAG_OPTIONS = {p.name: "--" + p.name.replace("_", "-") for p in CLI_PARAMETERS if isinstance(p.default, bool)}


def _command() -> str:
    """Path of the ``interactvlm-ros`` console script.

    A colcon / ament build installs interactvlm_ros's scripts into
    ``<prefix>/lib/interactvlm_ros/`` (setup.cfg), which is not on PATH; a pip install puts
    them on PATH.
    """
    try:
        candidate = os.path.join(get_package_prefix(PACKAGE), "lib", PACKAGE, COMMAND)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    except PackageNotFoundError:
        pass
    return shutil.which(COMMAND) or COMMAND


def _as_bool(name: str, text: str) -> bool:
    value = text.strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off", ""):
        return False
    raise ValueError(f"launch argument {name}:={text!r} is not a bool (true/false)")


def _launch_setup(context, *args, **kwargs):
    cmd = [
        _command(), "replay",
        LaunchConfiguration("in_bag").perform(context),
        LaunchConfiguration("out_bag").perform(context),
    ]
    for argument, option in VALUE_OPTIONS.items():
        value = LaunchConfiguration(argument).perform(context)
        if value != "":
            cmd += [option, value]
    for argument, option in FLAG_OPTIONS.items():
        if _as_bool(argument, LaunchConfiguration(argument).perform(context)):
            cmd.append(option)
    return [ExecuteProcess(cmd=cmd, name="interactvlm_replay", output="screen", emulate_tty=True)]


def generate_launch_description():
    default_params = PathJoinSubstitution([FindPackageShare(BRINGUP), "config", "interactvlm.yaml"])
    arguments = [
        DeclareLaunchArgument("in_bag", description="input rosbag2 (images and detections)"),
        DeclareLaunchArgument("out_bag", description="output rosbag2 (InteractionArray and markers; must not exist)"),
        DeclareLaunchArgument("params_file", default_value=default_params,
                              description="interactvlm_node parameter file; empty: the command's defaults"),
        *(DeclareLaunchArgument(p.name, default_value="false" if isinstance(p.default, bool) else "",
                                choices=["true", "false"] if isinstance(p.default, bool) else None,
                                description=p.description + ("" if isinstance(p.default, bool) else
                                                             "; empty: the command's default"))
          for p in CLI_PARAMETERS),
        DeclareLaunchArgument("image_topic", default_value="",
                              description="image topic in in_bag; empty: the command's default"),
        DeclareLaunchArgument("detections_topic", default_value="",
                              description="detections topic in in_bag; empty: the command's default"),
    ]
    return LaunchDescription(arguments + [OpaqueFunction(function=_launch_setup)])
