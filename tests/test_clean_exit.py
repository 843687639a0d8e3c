"""A failing test with a node spinning in the pytest process is reported as a failure: pytest
exits with its own code and summary, not with SIGABRT at interpreter exit (tests/ros_helpers.py
says why it would)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent

# Run by a pytest of its own, with tests/conftest.py as a plugin: a fixture and a test that
# each leave an active node spinning (Spinner never closed) and then fail.
FAILING_NODE_TESTS = '''
import os
from pathlib import Path

import pytest
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.parameter import Parameter

from interactvlm_ros.ros.node import InteractVLMNode
from ros_helpers import Spinner


def spinning_active_node(name, cache_dir):
    spinner = Spinner(int(os.environ["ROS_DOMAIN_ID"]))
    checkpoint = Path(os.environ["TINY_CHECKPOINT"])
    node = spinner.add(InteractVLMNode(name, context=spinner.context, parameter_overrides=[
        Parameter(k, value=v) for k, v in {"contact_checkpoint_dir": str(checkpoint),
                                           "clip_dir": str(checkpoint / "clip"), "render_size": 64,
                                           "cache_dir": str(cache_dir), "autostart": False}.items()]))
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    spinner.start()
    return node


@pytest.fixture(scope="module")
def fails_after_starting_a_node(tmp_path_factory):
    spinning_active_node("fixture_node", tmp_path_factory.mktemp("cache"))
    raise RuntimeError("deliberate failure in a fixture, its node spinning")
    yield


def test_in_a_failing_fixture(fails_after_starting_a_node):
    pass


def test_fails_with_its_node_spinning(tmp_path):
    node = spinning_active_node("test_node", tmp_path)
    assert not node.active, "deliberate failure, the node spinning"
'''


def test_a_failing_node_test_is_reported_with_pytests_exit_code(tmp_path, ros_subprocess_env, tiny_checkpoint):
    (tmp_path / "pytest.ini").write_text("[pytest]\n")  # this directory is the child's rootdir
    (tmp_path / "test_failing_node.py").write_text(FAILING_NODE_TESTS)
    ros_home = tmp_path / "ros_home"
    ros_home.mkdir()
    python_path = [str(TESTS)] + [p for p in ros_subprocess_env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env = {**ros_subprocess_env, "ROS_HOME": str(ros_home), "ROS_LOG_DIR": str(ros_home / "log"),
           "TINY_CHECKPOINT": str(tiny_checkpoint), "PYTHONPATH": os.pathsep.join(python_path)}
    child = subprocess.run([sys.executable, "-m", "pytest", "-p", "conftest", "-p", "no:cacheprovider", "-p", "no:warnings", "-q",
                            "test_failing_node.py"], cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=300)
    output = child.stdout + child.stderr
    assert child.returncode == 1, f"exit code {child.returncode}:\n{output[-4000:]}"
    assert re.search(r"^1 failed, 1 error in ", child.stdout, re.MULTILINE), output[-4000:]
    assert "test_failing_node.py::test_fails_with_its_node_spinning" in child.stdout
