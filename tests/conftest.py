"""Test-wide ROS 2 isolation.

Whatever started pytest, ROS traffic stays on this machine: discovery range LOCALHOST
(Kilted ignores ROS_LOCALHOST_ONLY), a domain id of our own and a temporary ROS_HOME /
ROS_LOG_DIR. These are set before any rclpy context exists, so every context and every
subprocess the tests start inherits them. Each ROS test gets a fresh domain id of its own
(`ros_domain_id`), so leftovers of one test can never talk to the next.
"""

from __future__ import annotations

import itertools
import os
import sys
import tempfile

import pytest

os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("ROS_PYTHON_CHECK_FIELDS", "1")  # wrong field types raise instead of aborting
os.environ.pop("ROS_STATIC_PEERS", None)
if "ROS_HOME" not in os.environ or not os.environ["ROS_HOME"].startswith(tempfile.gettempdir()):
    os.environ["ROS_HOME"] = tempfile.mkdtemp(prefix="interactvlm-ros-home-")
os.environ["ROS_LOG_DIR"] = os.path.join(os.environ["ROS_HOME"], "log")

# Domain ids 1..100: each test takes the next one after a per-run offset.
_BASE_DOMAIN = int(os.environ.get("ROS_DOMAIN_ID", str(os.getpid() % 90 + 1)))
_domains = itertools.count()


@pytest.fixture(scope="session", autouse=True)
def _close_spinners_left_open():
    """Safety net: at the end of the session, close the background spinners
    (tests/ros_helpers.py) that a failing fixture or test left spinning. A thread still in
    rclpy's wait when the interpreter finalises aborts the process (see ros_helpers)."""
    yield
    helpers = sys.modules.get("ros_helpers")  # imported only by the tests that spin nodes
    if helpers is not None:
        helpers.close_all()


@pytest.fixture
def ros_domain_id() -> int:
    """A ROS domain id used by this test only (within this pytest run)."""
    return (_BASE_DOMAIN + next(_domains)) % 100 + 1


@pytest.fixture(scope="module")
def module_domain_id() -> int:
    """A ROS domain id shared by one test module's tests (e.g. one node under test)."""
    return (_BASE_DOMAIN + next(_domains)) % 100 + 1


@pytest.fixture
def ros_context(ros_domain_id):
    """An initialised rclpy context on the test's own domain; shut down afterwards."""
    import rclpy

    context = rclpy.Context()
    rclpy.init(context=context, domain_id=ros_domain_id)
    try:
        yield context
    finally:
        context.try_shutdown()


@pytest.fixture
def ros_subprocess_env(ros_domain_id) -> dict[str, str]:
    """Environment for a child process that must join the test's ROS domain."""
    env = dict(os.environ)
    env["ROS_DOMAIN_ID"] = str(ros_domain_id)
    return env


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """The default tiny RANDOM checkpoint (seed 0), written once per test session. Tests must
    not modify it: copy it first."""
    from interactvlm_ros.localize.tiny import write_tiny_checkpoint

    return write_tiny_checkpoint(tmp_path_factory.mktemp("tiny-session") / "tiny")


@pytest.fixture(scope="session")
def tiny_model(tiny_checkpoint):
    """The tiny checkpoint loaded (float32, CPU), once per session. Tests must not change it."""
    from interactvlm_ros.localize.builder import load_mvloc

    return load_mvloc(tiny_checkpoint, tiny_checkpoint / "clip")


@pytest.fixture(scope="session")
def tiny_variant(tmp_path_factory):
    """``tiny_variant(variant, **kwargs)``: the tiny RANDOM checkpoint of a release variant
    (``write_tiny_checkpoint(variant=..., **kwargs)``), written once per session and
    arguments. Tests must not modify it: copy it first."""
    from interactvlm_ros.localize.tiny import write_tiny_checkpoint

    written = {}

    def get(variant: str, **kwargs):
        key = (variant, tuple(sorted(kwargs.items())))
        if key not in written:
            name = "-".join([variant] + [f"{k}{v}" for k, v in key[1]])
            written[key] = write_tiny_checkpoint(tmp_path_factory.mktemp("tiny-variant") / name, variant=variant,
                                                 **kwargs)
        return written[key]

    return get


@pytest.fixture(scope="session")
def tiny_variant_model(tiny_variant):
    """``tiny_variant_model(variant, **kwargs)``: that checkpoint loaded (float32, CPU), once
    per session and arguments. Tests must not change it."""
    from interactvlm_ros.localize.builder import load_mvloc

    loaded = {}

    def get(variant: str, **kwargs):
        directory = tiny_variant(variant, **kwargs)
        if directory not in loaded:
            loaded[directory] = load_mvloc(directory, directory / "clip")
        return loaded[directory]

    return get
