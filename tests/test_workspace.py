"""The colcon workspace: compat/vision_msgs only when no vision_msgs is installed, the
robot's plain-colcon path for the Python and bringup packages, and an idempotent setup."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WS = ROOT / "ros2_ws"


def _env_without_ros_distro(**extra):
    env = {k: v for k, v in os.environ.items() if k != "ROS_DISTRO"}
    env["VIRTUAL_ENV"] = str(ROOT / ".venv")
    env.update(extra)
    return env


def _base_paths(ament_prefix_path: str) -> str:
    out = subprocess.run(
        [str(WS / "build.sh"), "--print-base-paths"],
        env=_env_without_ros_distro(AMENT_PREFIX_PATH=ament_prefix_path),
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


def test_compat_vision_msgs_is_built_only_without_an_installed_one(tmp_path):
    # This workspace's own install/ holds the compat copy: it does not count as installed.
    assert _base_paths(str(WS / "install" / "vision_msgs")) == "src compat/vision_msgs"
    robot = tmp_path / "opt_ros"
    index = robot / "share" / "ament_index" / "resource_index" / "packages"
    index.mkdir(parents=True)
    (index / "vision_msgs").touch()
    assert _base_paths(f"{WS / 'install' / 'vision_msgs'}:{robot}") == "src"


def test_compat_vision_msgs_is_invisible_to_a_plain_colcon_build():
    # A robot runs `colcon build` in ros2_ws: compat/ must not be discovered.
    assert (WS / "compat" / "COLCON_IGNORE").exists()
    listed = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "colcon"), "list", "--names-only"],
        cwd=WS,
        env=_env_without_ros_distro(),
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert sorted(listed) == ["interactvlm_bringup", "interactvlm_msgs", "interactvlm_ros"]


def test_build_script_refuses_a_sourced_system_ros():
    result = subprocess.run(
        [str(WS / "build.sh")], env=_env_without_ros_distro(ROS_DISTRO="jazzy"), capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "plain" in result.stderr and "colcon build" in result.stderr


def test_python_and_bringup_packages_build_with_plain_colcon(tmp_path):
    """What `colcon build` does on a robot for the two non-interface packages (the interface
    package is built the same way by `make setup`)."""
    colcon = ROOT / ".venv" / "bin" / "colcon"
    result = subprocess.run(
        [
            str(colcon), "build",
            "--packages-select", "interactvlm_ros", "interactvlm_bringup",
            "--build-base", str(tmp_path / "build"),
            "--install-base", str(tmp_path / "install"),
            "--event-handlers", "console_cohesion+",
            "--cmake-args", f"-DCMAKE_PROJECT_INCLUDE={WS / 'cmake' / 'wheel_include_dirs.cmake'}",
        ],
        cwd=WS,
        env=_env_without_ros_distro(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    install = tmp_path / "install"
    for package in ("interactvlm_ros", "interactvlm_bringup"):
        prefix = install / package
        assert (prefix / "share" / "ament_index" / "resource_index" / "packages" / package).exists()
        assert (prefix / "share" / package / "package.xml").exists()
    modules = list((install / "interactvlm_ros" / "lib").glob("python3*/site-packages/interactvlm_ros/ros/conversions.py"))
    assert len(modules) == 1
    shutil.rmtree(tmp_path)


def test_setup_is_up_to_date_after_make_setup():
    """`make test` depends on `make setup`, so here nothing is left for a second setup to do."""
    result = subprocess.run(["make", "-q", "setup"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, "make setup would rebuild: " + result.stdout + result.stderr
