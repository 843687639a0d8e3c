#!/usr/bin/env bash
# Build this workspace's interface and bringup packages with colcon against the ROS 2 Kilted
# wheels installed from PyPI into the project's virtual environment (`make setup` calls it).
#
# Against a system ROS 2 (Jazzy, Kilted) do not use this script: source /opt/ros/$ROS_DISTRO
# and run a plain `colcon build` in ros2_ws (docs/install.md, "Building against a system ROS 2").
#
# What it does beyond `colcon build`:
#   - AMENT_PREFIX_PATH / CMAKE_PREFIX_PATH point at the venv, where the wheels put share/ and
#     lib/ (the wheels ship no setup scripts to source);
#   - cmake/wheel_include_dirs.cmake repairs the include directories that the wheels' exported
#     CMake targets hard-code from the machine that built them;
#   - compat/vision_msgs is added only when no vision_msgs is installed (checked in the ament
#     index of every prefix on AMENT_PREFIX_PATH);
#   - interactvlm_ros (the Python library) is skipped: the venv has it as an editable pip
#     install, which a colcon copy on PYTHONPATH would shadow.
#
# Usage: ros2_ws/build.sh [--print-base-paths] [extra colcon build arguments...]
set -euo pipefail

ws="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${VIRTUAL_ENV:-$(cd "$ws/.." && pwd)/.venv}"

if [ -n "${ROS_DISTRO:-}" ]; then
  echo "build.sh: a system ROS 2 ($ROS_DISTRO) is sourced in this shell; this script builds against" >&2
  echo "the PyPI wheels in $venv and must not mix the two. Open a fresh shell, or build with a plain" >&2
  echo "'colcon build' in $ws (docs/install.md: Building against a system ROS 2)." >&2
  exit 2
fi
if [ ! -x "$venv/bin/python" ]; then
  echo "build.sh: no virtual environment at $venv; run 'make setup' first." >&2
  exit 2
fi

export AMENT_PREFIX_PATH="$venv${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
export CMAKE_PREFIX_PATH="$venv${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"

# has_package NAME: whether a prefix on AMENT_PREFIX_PATH (other than this workspace's own
# install/, which may hold the compat copy from an earlier build) registers package NAME.
has_package() {
  local prefix
  IFS=: read -r -a prefixes <<< "$AMENT_PREFIX_PATH"
  for prefix in "${prefixes[@]}"; do
    case "$prefix" in "$ws"/install/*) continue ;; esac
    if [ -e "$prefix/share/ament_index/resource_index/packages/$1" ]; then
      return 0
    fi
  done
  return 1
}

base_paths=(src)
if ! has_package vision_msgs; then
  base_paths+=(compat/vision_msgs)
fi

if [ "${1:-}" = "--print-base-paths" ]; then
  echo "${base_paths[*]}"
  exit 0
fi

cd "$ws"
exec "$venv/bin/colcon" build \
  --base-paths "${base_paths[@]}" \
  --packages-ignore interactvlm_ros \
  --event-handlers console_cohesion+ summary+ \
  --cmake-args \
    "-DCMAKE_PROJECT_INCLUDE=$ws/cmake/wheel_include_dirs.cmake" \
    "-DPython3_EXECUTABLE=$venv/bin/python" \
    -DBUILD_TESTING=OFF \
  "$@"
