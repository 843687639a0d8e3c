"""The library below ``ros/`` works without ROS: every module outside ``interactvlm_ros.ros``
imports with rclpy (and every ROS message package) made unimportable, and ``eval/`` needs
neither ROS nor bag I/O."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import interactvlm_ros.config

PACKAGE_DIR = Path(interactvlm_ros.config.__file__).parent

_SCRIPT = r"""
import importlib, importlib.abc, sys

BLOCKED = ("rclpy", "rosbags", "std_msgs", "sensor_msgs", "vision_msgs", "interactvlm_msgs", "geometry_msgs",
           "visualization_msgs", "diagnostic_msgs", "builtin_interfaces", "lifecycle_msgs", "rcl_interfaces",
           "ament_index_python")


class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is blocked in this test")
        return None


sys.meta_path.insert(0, Block())
for name in sys.argv[1:]:
    importlib.import_module(name)
loaded = sorted({m.split(".")[0] for m in sys.modules} & set(BLOCKED))
print("loaded:", loaded)
"""


def _library_modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages([str(PACKAGE_DIR)], prefix="interactvlm_ros."):
        if not info.name.startswith("interactvlm_ros.ros"):
            names.append(info.name)
    return names


def test_every_module_outside_ros_imports_without_ros():
    modules = _library_modules()
    assert {"interactvlm_ros.pipeline", "interactvlm_ros.config", "interactvlm_ros.eval.metrics",
            "interactvlm_ros.localize.builder", "interactvlm_ros.cli"} <= set(modules)
    done = subprocess.run([sys.executable, "-c", _SCRIPT, *modules], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("loaded: []")


def test_no_module_finds_files_through_the_source_tree():
    """Package data is found next to the module (assets/) or through the ament index, never
    by walking up out of the package (which breaks in a non-editable install)."""
    offenders = [str(path.relative_to(PACKAGE_DIR)) for path in PACKAGE_DIR.rglob("*.py")
                 if ".parents[" in path.read_text() and "datasets.py" not in path.name
                 or "../shared" in path.read_text()]
    assert offenders == []


def test_package_xml_names_every_ros_package_the_code_imports():
    import re
    import xml.etree.ElementTree as ElementTree

    imported = set()
    for path in PACKAGE_DIR.rglob("*.py"):
        imported |= set(re.findall(r"^\s*(?:from|import) ([a-z_]+_(?:msgs|interfaces))\b", path.read_text(), re.M))
        imported |= {"rclpy"} if re.search(r"^\s*(?:from|import) rclpy\b", path.read_text(), re.M) else set()
        imported |= {"ament_index_python"} if "ament_index_python" in path.read_text() else set()
    manifest = ElementTree.parse(PACKAGE_DIR.parent / "package.xml").getroot()
    declared = {e.text for e in manifest.iter("exec_depend")}
    assert imported and imported <= declared, sorted(imported - declared)
