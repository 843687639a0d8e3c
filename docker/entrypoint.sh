#!/usr/bin/env bash
# Entrypoint of the interactvlm_ros images (docker/Dockerfile): the ROS 2 environment
# (/opt/ros/$ROS_DISTRO) and the workspace install, then the command (CMD: ros2 launch ...).
# The venv (/opt/venv) is already first on PATH (ENV in the Dockerfile); interactvlm_node's
# shebang points at it.
set -e
# shellcheck source=/dev/null
source "/opt/ros/${ROS_DISTRO:-jazzy}/setup.bash"
# shellcheck source=/dev/null
source "${INTERACTVLM_WS:-/opt/interactvlm_ws}/install/setup.bash"
if [ "$#" -eq 0 ]; then
  echo "interactvlm-entrypoint: no command given" >&2
  exit 2
fi
exec "$@"
