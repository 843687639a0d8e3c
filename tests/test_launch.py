"""The bringup package (launch/): launch files, parameter file, object map example, RViz config.

`launch` and `launch_ros` are not installable next to the ROS 2 PyPI wheels, so the launch
files are executed against small stand-in modules (below) whose classes record their
constructor arguments and implement just enough of `perform` / `evaluate` to expand
OpaqueFunctions and conditions. What is checked is what the launch files ask for (package,
executable, parameters, remappings, commands), not that launch_ros runs them.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import sys
import types
from pathlib import Path

import pytest
import yaml

from interactvlm_ros.config import BY_NAME, PARAMETERS

ROOT = Path(__file__).resolve().parents[1]
BRINGUP = ROOT / "launch"  # source tree laid out like share/interactvlm_bringup
SETUP_PY = ROOT / "interactvlm_ros" / "setup.py"
MAIN_LAUNCH = BRINGUP / "launch" / "interactvlm.launch.py"
REPLAY_LAUNCH = BRINGUP / "launch" / "replay.launch.py"
PARAMS_YAML = BRINGUP / "config" / "interactvlm.yaml"
OBJECTS_YAML = BRINGUP / "config" / "objects.example.yaml"
RVIZ = BRINGUP / "rviz" / "interactvlm.rviz"
NODE_NAME = "interactvlm_node"
MARKERS_TOPIC = f"/{NODE_NAME}/markers"


# --------------------------------------------------------------------------------------------
# setup.py, read without importing it


def console_scripts() -> dict[str, str]:
    """name -> "module:function" from setup.py's entry_points["console_scripts"]."""
    tree = ast.parse(SETUP_PY.read_text(), filename=str(SETUP_PY))
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)
             and getattr(node.func, "id", getattr(node.func, "attr", None)) == "setup"]
    assert len(calls) == 1, "setup.py: expected one setup(...) call"
    keywords = {kw.arg: kw.value for kw in calls[0].keywords}
    assert "entry_points" in keywords, "setup.py declares no entry_points"
    entry_points = ast.literal_eval(keywords["entry_points"])  # must be a literal
    scripts = {}
    for line in entry_points.get("console_scripts", []):
        name, target = (part.strip() for part in line.split("=", 1))
        scripts[name] = target
    return scripts


def assert_declared_console_script(executable: str) -> None:
    scripts = console_scripts()
    assert executable in scripts, (
        f"{executable!r} is not a console script of interactvlm_ros (setup.py declares {sorted(scripts)})")
    module = scripts[executable].split(":", 1)[0]
    path = ROOT / "interactvlm_ros" / Path(*module.split("."))
    assert path.with_suffix(".py").is_file() or (path / "__init__.py").is_file(), (
        f"console script {executable!r} points at {module}, which does not exist")


def test_console_scripts_parse():
    assert "interactvlm-ros" in console_scripts()


# --------------------------------------------------------------------------------------------
# Stand-ins for launch, launch_ros and ament_index_python


class FakeContext:
    """The part of launch.LaunchContext the launch files use."""

    def __init__(self):
        self.launch_configurations: dict[str, str] = {}


def perform(value, context: FakeContext) -> str:
    """Evaluate a launch value the way launch does: text, a substitution, or a list of them
    (concatenated)."""
    if isinstance(value, str):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (list, tuple)):
        return "".join(perform(item, context) for item in value)
    if hasattr(value, "perform"):
        return value.perform(context)
    raise TypeError(f"cannot perform {value!r}")


class Recorded:
    """Records its constructor arguments."""

    def __init__(self, *args, **kwargs):
        self.args = args
        self.kwargs = kwargs

    def __repr__(self):
        return f"{type(self).__name__}(args={self.args!r}, kwargs={self.kwargs!r})"


class LaunchDescription(Recorded):
    @property
    def entities(self):
        return list(self.args[0] if self.args else self.kwargs.get("initial_entities", []))


class DeclareLaunchArgument(Recorded):
    @property
    def name(self):
        return self.args[0] if self.args else self.kwargs["name"]


class OpaqueFunction(Recorded):
    def expand(self, context):
        function = self.kwargs.get("function", self.args[0] if self.args else None)
        return function(context, *self.kwargs.get("args", []), **self.kwargs.get("kwargs", {})) or []


class GroupAction(Recorded):
    def expand(self, context):
        return list(self.args[0] if self.args else self.kwargs["actions"])


class LaunchConfiguration(Recorded):
    @property
    def variable_name(self):
        return self.args[0] if self.args else self.kwargs["variable_name"]

    def perform(self, context):
        name = self.variable_name
        if name in context.launch_configurations:
            return context.launch_configurations[name]
        default = self.kwargs.get("default", self.args[1] if len(self.args) > 1 else None)
        if default is None:
            raise LookupError(f"launch configuration {name!r} is not set")
        return perform(default, context)


class TextSubstitution(Recorded):
    def perform(self, context):
        return self.kwargs["text"]


class PathJoinSubstitution(Recorded):
    def perform(self, context):
        parts = self.args[0] if self.args else self.kwargs["substitutions"]
        return os.path.join(*(perform(part, context) for part in parts))


class FakeAmentIndex:
    """Package share and prefix folders the stand-ins resolve: the bringup package's source
    folder has the layout of its install space."""

    shares = {"interactvlm_bringup": str(BRINGUP)}
    prefixes: dict[str, str] = {}


class PackageNotFoundError(KeyError):
    pass


def get_package_share_directory(package):
    if package not in FakeAmentIndex.shares:
        raise PackageNotFoundError(package)
    return FakeAmentIndex.shares[package]


def get_package_prefix(package):
    if package not in FakeAmentIndex.prefixes:
        raise PackageNotFoundError(package)
    return FakeAmentIndex.prefixes[package]


class FindPackageShare(Recorded):
    def perform(self, context):
        return get_package_share_directory(perform(self.args[0] if self.args else self.kwargs["package"], context))


class IfCondition(Recorded):
    def evaluate(self, context):
        text = perform(self.args[0] if self.args else self.kwargs["predicate_expression"], context).strip().lower()
        if text not in ("true", "false", "1", "0"):
            raise ValueError(f"IfCondition: {text!r} is not a bool")
        return text in ("true", "1")


class UnlessCondition(IfCondition):
    def evaluate(self, context):
        return not super().evaluate(context)


class Node(Recorded):
    pass


class LifecycleNode(Node):
    pass


class ExecuteProcess(Recorded):
    pass


class ParameterValue(Recorded):
    def perform(self, context):
        return perform(self.args[0] if self.args else self.kwargs["value"], context)


def _module(name: str, **attributes) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(attributes)
    return module


@pytest.fixture
def fake_launch(monkeypatch):
    """Install the stand-in modules into sys.modules for the duration of a test."""
    r = Recorded
    modules = {
        "launch": _module("launch", LaunchDescription=LaunchDescription, LaunchContext=FakeContext),
        "launch.actions": _module(
            "launch.actions", DeclareLaunchArgument=DeclareLaunchArgument, OpaqueFunction=OpaqueFunction,
            ExecuteProcess=ExecuteProcess, GroupAction=GroupAction,
            LogInfo=type("LogInfo", (r,), {}), SetEnvironmentVariable=type("SetEnvironmentVariable", (r,), {}),
            IncludeLaunchDescription=type("IncludeLaunchDescription", (r,), {}),
            TimerAction=type("TimerAction", (r,), {})),
        "launch.substitutions": _module(
            "launch.substitutions", LaunchConfiguration=LaunchConfiguration,
            PathJoinSubstitution=PathJoinSubstitution, TextSubstitution=TextSubstitution),
        "launch.conditions": _module("launch.conditions", IfCondition=IfCondition, UnlessCondition=UnlessCondition),
        "launch_ros": _module("launch_ros"),
        "launch_ros.actions": _module("launch_ros.actions", Node=Node, LifecycleNode=LifecycleNode),
        "launch_ros.substitutions": _module("launch_ros.substitutions", FindPackageShare=FindPackageShare),
        "launch_ros.parameter_descriptions": _module("launch_ros.parameter_descriptions",
                                                     ParameterValue=ParameterValue),
        "ament_index_python": _module("ament_index_python"),
        "ament_index_python.packages": _module(
            "ament_index_python.packages", get_package_share_directory=get_package_share_directory,
            get_package_prefix=get_package_prefix, PackageNotFoundError=PackageNotFoundError),
    }
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(FakeAmentIndex, "prefixes", {})
    return modules


def load_launch_file(path: Path):
    spec = importlib.util.spec_from_file_location(f"_launch_under_test_{path.stem.replace('.', '_')}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def expand(description: LaunchDescription, arguments: dict[str, str] | None = None):
    """Do what `ros2 launch ... name:=value` does with the description, as far as the
    stand-ins allow: set the launch configurations (given arguments, else defaults; checking
    choices and required arguments) and expand OpaqueFunctions and groups.

    Returns (context, declared arguments by name, the other actions in order).
    """
    arguments = dict(arguments or {})
    context = FakeContext()
    declared: dict[str, DeclareLaunchArgument] = {}
    actions = []
    pending = list(description.entities)
    while pending:
        entity = pending.pop(0)
        if isinstance(entity, DeclareLaunchArgument):
            declared[entity.name] = entity
            if entity.name in arguments:
                value = arguments.pop(entity.name)
            elif entity.kwargs.get("default_value") is not None:
                value = perform(entity.kwargs["default_value"], context)
            else:
                raise LookupError(f"required launch argument {entity.name!r} not given")
            choices = entity.kwargs.get("choices")
            if choices is not None:
                assert value in choices, f"{entity.name}:={value!r} not in {choices}"
            context.launch_configurations[entity.name] = value
        elif isinstance(entity, (OpaqueFunction, GroupAction)):
            pending[:0] = entity.expand(context)
        else:
            actions.append(entity)
    assert not arguments, f"arguments not declared by the launch file: {sorted(arguments)}"
    return context, declared, actions


def enabled(action, context) -> bool:
    condition = action.kwargs.get("condition")
    return condition is None or condition.evaluate(context)


# --------------------------------------------------------------------------------------------
# (a) the launch files parse and define generate_launch_description


@pytest.mark.parametrize("path", [MAIN_LAUNCH, REPLAY_LAUNCH], ids=lambda p: p.name)
def test_launch_file_parses_and_defines_generate_launch_description(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    assert "generate_launch_description" in functions
    args = functions["generate_launch_description"].args
    assert len(args.args) == len(args.defaults) and not args.posonlyargs, "must be callable without arguments"


# --------------------------------------------------------------------------------------------
# (b) interactvlm.launch.py


MAIN_ARGUMENTS = {"params_file", "image_topic", "detections_topic", "use_compressed", "contact_checkpoint_dir",
                  "affordance_checkpoint_dir", "clip_dir", "use_tiny_checkpoint", "device", "dtype", "quantization",
                  "device_map", "max_memory", "namespace",
                  "log_level", "rviz"}


def _main(arguments=None):
    description = load_launch_file(MAIN_LAUNCH).generate_launch_description()
    context, declared, actions = expand(description, arguments)
    nodes = [a for a in actions if isinstance(a, Node) and a.kwargs.get("package") == "interactvlm_ros"]
    assert len(nodes) == 1, actions
    rviz = [a for a in actions if isinstance(a, Node) and a.kwargs.get("package") == "rviz2"]
    return context, declared, nodes[0], rviz


def test_main_launch_declares_its_arguments(fake_launch):
    _, declared, _, _ = _main()
    assert MAIN_ARGUMENTS <= set(declared)
    for argument in declared.values():
        assert argument.kwargs.get("description"), f"launch argument {argument.name} has no description"


def test_main_launch_starts_the_lifecycle_node(fake_launch):
    context, _, node, _ = _main()
    assert isinstance(node, LifecycleNode)
    assert node.kwargs["package"] == "interactvlm_ros"
    assert_declared_console_script(node.kwargs["executable"])
    assert node.kwargs["name"] == NODE_NAME
    assert perform(node.kwargs["namespace"], context) == ""
    assert "--log-level" in node.kwargs.get("ros_arguments", [])
    log_level = node.kwargs["ros_arguments"][node.kwargs["ros_arguments"].index("--log-level") + 1]
    assert perform(log_level, context) == "info"
    # The node configures itself: launch_ros must not also drive the transitions.
    assert not node.kwargs.get("autostart", False)


def test_main_launch_parameters_start_with_the_params_file(fake_launch):
    context, _, node, _ = _main()
    parameters = node.kwargs["parameters"]
    first = parameters[0]
    assert isinstance(first, LaunchConfiguration) and first.variable_name == "params_file"
    # The default is the installed config/interactvlm.yaml (here: the source folder).
    assert Path(perform(first, context)) == PARAMS_YAML
    # Without override arguments nothing follows the file.
    assert parameters[1:] == []


def test_main_launch_overrides_follow_the_params_file(fake_launch):
    given = {"contact_checkpoint_dir": "/models/hcontact", "affordance_checkpoint_dir": "/models/oafford",
             "clip_dir": "2024", "device": "cuda:0", "use_compressed": "true", "use_tiny_checkpoint": "False",
             "dtype": "bfloat16", "quantization": "4bit", "device_map": "auto", "max_memory": "cuda:0=20GiB",
             "params_file": "/robot/interactvlm.yaml", "namespace": "robot1", "log_level": "debug"}
    context, _, node, _ = _main(given)
    parameters = node.kwargs["parameters"]
    assert perform(parameters[0], context) == "/robot/interactvlm.yaml"
    assert len(parameters) == 2 and isinstance(parameters[1], dict)
    overrides = parameters[1]
    assert set(overrides) == {"contact_checkpoint_dir", "affordance_checkpoint_dir", "clip_dir", "device",
                              "dtype", "quantization", "device_map", "max_memory", "use_compressed",
                              "use_tiny_checkpoint"}
    for name, value in overrides.items():
        assert name in BY_NAME, f"override of undeclared parameter {name}"
        default = BY_NAME[name].default
        if isinstance(value, ParameterValue):
            assert value.kwargs.get("value_type") is type(default), name
            value = value.perform(context)
        assert type(value) is type(default), (name, value)
    assert overrides["clip_dir"].perform(context) == "2024"  # stays a string
    assert overrides["use_compressed"] is True and overrides["use_tiny_checkpoint"] is False
    assert perform(node.kwargs["namespace"], context) == "robot1"


def test_main_launch_rejects_a_non_bool(fake_launch):
    with pytest.raises(ValueError, match="use_compressed"):
        _main({"use_compressed": "maybe"})


def test_main_launch_remaps_image_and_detections(fake_launch):
    context, _, node, _ = _main({"image_topic": "/camera/color/image_raw", "detections_topic": "/yolo/detections"})
    remappings = {source: perform(target, context) for source, target in node.kwargs["remappings"]}
    assert remappings == {"image": "/camera/color/image_raw", "detections": "/yolo/detections"}
    context, _, node, _ = _main()
    remappings = {source: perform(target, context) for source, target in node.kwargs["remappings"]}
    assert remappings == {"image": "image", "detections": "detections"}


def test_main_launch_starts_rviz_only_when_asked(fake_launch):
    context, _, _, rviz = _main()
    assert all(not enabled(node, context) for node in rviz)
    context, _, _, rviz = _main({"rviz": "true", "namespace": "robot1", "image_topic": "/cam/image"})
    started = [node for node in rviz if enabled(node, context)]
    assert len(started) == 1
    rviz_args = [perform(arg, context) for arg in started[0].kwargs["arguments"]]
    config = Path(rviz_args[rviz_args.index("-d") + 1])
    assert config == RVIZ and config.is_file()
    # The config's fixed topics are remapped to the namespaced node and the camera.
    remappings = {source: perform(target, context) for source, target in started[0].kwargs["remappings"]}
    assert remappings[MARKERS_TOPIC] == "/robot1/interactvlm_node/markers"
    assert remappings["/image"] == "/cam/image"
    assert set(remappings) <= set(_rviz_topics().values())


# --------------------------------------------------------------------------------------------
# (b) replay.launch.py


def _replay(arguments):
    description = load_launch_file(REPLAY_LAUNCH).generate_launch_description()
    context, declared, actions = expand(description, arguments)
    processes = [a for a in actions if isinstance(a, ExecuteProcess)]
    assert len(processes) == 1, actions
    cmd = [perform(part, context) for part in processes[0].kwargs["cmd"]]
    return declared, cmd


def test_replay_launch_runs_the_console_command(fake_launch):
    declared, cmd = _replay({"in_bag": "/bags/in", "out_bag": "/bags/out"})
    assert {"in_bag", "out_bag", "params_file", "use_tiny_checkpoint", "contact_checkpoint_dir", "clip_dir"} <= set(
        declared)
    executable = os.path.basename(cmd[0])
    assert executable == "interactvlm-ros"
    assert_declared_console_script(executable)
    assert cmd[1:4] == ["replay", "/bags/in", "/bags/out"]
    assert Path(cmd[cmd.index("--params-file") + 1]) == PARAMS_YAML
    assert "--use-tiny-checkpoint" not in cmd and "--contact-checkpoint-dir" not in cmd and "--clip-dir" not in cmd


def test_replay_launch_passes_options(fake_launch):
    _, cmd = _replay({"in_bag": "in", "out_bag": "out", "use_tiny_checkpoint": "true",
                      "contact_checkpoint_dir": "/ckpt", "clip_dir": "/clip", "params_file": ""})
    assert "--use-tiny-checkpoint" in cmd and "--params-file" not in cmd
    assert cmd[cmd.index("--contact-checkpoint-dir") + 1] == "/ckpt"
    assert cmd[cmd.index("--clip-dir") + 1] == "/clip"


def test_replay_launch_prefers_the_ament_installed_script(fake_launch, tmp_path, monkeypatch):
    # A colcon build installs the console scripts into <prefix>/lib/interactvlm_ros (setup.cfg).
    script = tmp_path / "lib" / "interactvlm_ros" / "interactvlm-ros"
    script.parent.mkdir(parents=True)
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    monkeypatch.setattr(FakeAmentIndex, "prefixes", {"interactvlm_ros": str(tmp_path)})
    _, cmd = _replay({"in_bag": "in", "out_bag": "out"})
    assert cmd[0] == str(script)


def test_replay_launch_requires_the_bags(fake_launch):
    with pytest.raises(LookupError, match="in_bag"):
        _replay({"out_bag": "out"})


# --------------------------------------------------------------------------------------------
# (c) config/interactvlm.yaml


def _params_file_entries() -> dict:
    content = yaml.safe_load(PARAMS_YAML.read_text())
    assert isinstance(content, dict) and len(content) == 1, "one node entry expected"
    (key, entry), = content.items()
    assert key == "/**", f"node key {key!r}: the shipped file uses the wildcard (any name, any namespace)"
    assert set(entry) == {"ros__parameters"}
    return entry["ros__parameters"]


def test_params_file_names_exactly_the_declared_parameters():
    names = set(_params_file_entries())
    undeclared = names - set(BY_NAME)
    missing = set(BY_NAME) - names
    assert not undeclared, f"parameters in {PARAMS_YAML.name} that the node does not declare: {sorted(undeclared)}"
    assert not missing, f"declared parameters missing from {PARAMS_YAML.name}: {sorted(missing)}"


@pytest.mark.parametrize("parameter", PARAMETERS, ids=lambda p: p.name)
def test_params_file_value_is_the_default_with_its_type(parameter):
    entries = _params_file_entries()
    if parameter.name not in entries:
        pytest.fail(f"{parameter.name} missing from {PARAMS_YAML.name}")
    value = entries[parameter.name]
    # Exact types: a bool is not an int, and ROS refuses an int for a double parameter (1 vs 1.0).
    assert type(value) is type(parameter.default), (parameter.name, value)
    if isinstance(value, list):
        assert value and all(type(v) is type(parameter.default[0]) for v in value), (
            f"{parameter.name}: ROS parameter files cannot hold an empty or mixed list")
    assert value == parameter.default, f"{parameter.name}: {value!r} is not the default {parameter.default!r}"
    if parameter.range is not None:
        assert parameter.range[0] <= value <= parameter.range[1]
    if parameter.choices:
        assert value in parameter.choices


def test_params_file_comments_every_parameter():
    lines = PARAMS_YAML.read_text().splitlines()
    for number, line in enumerate(lines):
        match = re.match(r"^ {4}(\w+):", line)
        if match:
            previous = lines[number - 1].strip()
            assert previous.startswith("#") and len(previous) > 10, f"{match.group(1)} has no comment above it"


@pytest.mark.parametrize("namespace", ["", "robot1"])
def test_params_file_through_rcl(ros_domain_id, namespace):
    """What the node gets: rcl's own YAML parser, for the node in and out of a namespace."""
    import rclpy
    from rclpy.node import Node as RclpyNode

    context = rclpy.Context()
    rclpy.init(args=["--ros-args", "--params-file", str(PARAMS_YAML)], context=context, domain_id=ros_domain_id)
    try:
        node = RclpyNode(NODE_NAME, namespace=namespace, context=context,
                         automatically_declare_parameters_from_overrides=True)
        try:
            for parameter in PARAMETERS:
                assert node.has_parameter(parameter.name), f"rcl did not pass {parameter.name} to the node"
                value = node.get_parameter(parameter.name).value
                assert type(value) is type(parameter.default), (parameter.name, value)
                assert list(value) == parameter.default if isinstance(value, (list, tuple)) \
                    else value == parameter.default
        finally:
            node.destroy_node()
    finally:
        context.try_shutdown()


# --------------------------------------------------------------------------------------------
# (d) config/objects.example.yaml


def test_objects_example_loads():
    from interactvlm_ros.geometry.objects import ObjectLibrary

    library = ObjectLibrary.from_yaml(OBJECTS_YAML)
    content = yaml.safe_load(OBJECTS_YAML.read_text())
    assert content["proxies"], "the example should show proxies"
    for label, (shape, size) in content["proxies"].items():
        geometry = library.get(label)
        assert geometry is not None and geometry.source == f"proxy:{shape}"
        assert geometry.scale == pytest.approx(size, rel=1e-3)


def test_objects_example_commented_meshes_block_is_valid():
    from interactvlm_ros.geometry.objects import MESH_SUFFIXES

    lines = OBJECTS_YAML.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("# meshes:"))
    block = [lines[start][2:]]
    for line in lines[start + 1:]:
        if not line.startswith("#   "):
            break
        block.append(line[2:])
    meshes = yaml.safe_load("\n".join(block))["meshes"]
    assert meshes and all(isinstance(k, str) and Path(v).suffix in MESH_SUFFIXES for k, v in meshes.items())


# --------------------------------------------------------------------------------------------
# (e) rviz/interactvlm.rviz


def _displays(node):
    if isinstance(node, dict):
        if "Class" in node and "Topic" in node:
            yield node
        for value in node.values():
            yield from _displays(value)
    elif isinstance(node, list):
        for value in node:
            yield from _displays(value)


def _rviz_topics() -> dict[str, str]:
    """display class -> topic."""
    content = yaml.safe_load(RVIZ.read_text())
    topics = {}
    for display in _displays(content["Visualization Manager"]["Displays"]):
        topic = display["Topic"]
        topics[display["Class"]] = topic["Value"] if isinstance(topic, dict) else topic
    return topics


def test_rviz_config_shows_the_node_markers_and_the_image():
    content = yaml.safe_load(RVIZ.read_text())
    assert isinstance(content, dict) and {"Panels", "Visualization Manager"} <= set(content)
    topics = _rviz_topics()
    assert topics.get("rviz_default_plugins/MarkerArray") == MARKERS_TOPIC
    assert topics.get("rviz_default_plugins/Image") == "/image"
    fixed_frame = content["Visualization Manager"]["Global Options"]["Fixed Frame"]
    markers_frame = BY_NAME["markers_frame_id"].default
    assert fixed_frame == markers_frame, "Fixed Frame must be the markers' default frame"


def test_params_command_describes_parameters_without_ros2(capsys):
    """``interactvlm-ros params`` (the wheel setup's ``ros2 param describe``) prints the table."""
    from interactvlm_ros.cli import main as cli_main

    assert cli_main(["params", "max_label_length", "image_qos"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "max_label_length (int, default 64, read-only; range 1..256)"
    assert out[2] == "image_qos (str, default 'sensor_data', read-only; one of sensor_data, reliable, best_effort)"
    assert cli_main(["params", "markers_frame_id"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "markers_frame_id (str, default 'interactvlm'; not empty)"
    assert cli_main(["params", "no_such_parameter"]) == 2
    assert "unknown parameters: no_such_parameter" in capsys.readouterr().err


def test_params_file_is_the_table_dumped():
    """The shipped file is ``interactvlm-ros dump-params`` of the parameter table."""
    from interactvlm_ros.config import parameters_yaml

    assert PARAMS_YAML.read_text() == parameters_yaml(), "regenerate: interactvlm-ros dump-params " + str(PARAMS_YAML)


LAUNCH_ONLY_ARGUMENTS = {"params_file", "namespace", "log_level", "rviz", "in_bag", "out_bag"}


@pytest.mark.parametrize("launch_file", ["main", "replay"])
def test_every_launch_argument_is_a_table_entry(fake_launch, launch_file):
    declared = set(_main()[1]) if launch_file == "main" else set(_replay(
        {"in_bag": "in", "out_bag": "out"})[0])
    assert declared - LAUNCH_ONLY_ARGUMENTS <= set(BY_NAME), declared - LAUNCH_ONLY_ARGUMENTS - set(BY_NAME)
    expected = {p.name for p in PARAMETERS if (p.launch if launch_file == "main" else p.cli)}
    assert expected <= declared
