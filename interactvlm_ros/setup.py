"""ament_python package interactvlm_ros (also pip-installable: ``pip install -e interactvlm_ros``).

Python dependencies outside ROS are pinned in ``requirements.txt`` beside this file.
"""
from setuptools import find_packages, setup

PACKAGE = "interactvlm_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    package_data={PACKAGE: ["assets/*.npz", "assets/*.md"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
    ],
    python_requires=">=3.10",
    install_requires=["numpy", "pyyaml"],
    zip_safe=False,
    entry_points={"console_scripts": [
        "interactvlm-ros = interactvlm_ros.cli:main",
        "interactvlm_node = interactvlm_ros.ros.node:main",
    ]},
    maintainer="interactvlm_ros maintainers",
    description="InteractVLM Render-Localize-Lift inference for ROS 2",
    license="Apache-2.0",
)
