# Source this file (bash) to use the workspace built by `make setup`:
#     . ros2_ws/env.sh
# It activates the project's virtual environment (unless a system ROS 2 is sourced, in which
# case that install is used as it is), sources the colcon install space, and sets the glibc
# malloc thresholds that keep image traffic through Fast DDS steady, and points Fast DDS at the
# shipped large-image profile.
# Discovery settings (ROS_DOMAIN_ID, ROS_AUTOMATIC_DISCOVERY_RANGE) are left to you: a robot
# needs its network; `make test` restricts discovery to this machine.

_interactvlm_ws="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ -z "${ROS_DISTRO:-}" ] && [ -f "$_interactvlm_ws/../.venv/bin/activate" ]; then
  # shellcheck disable=SC1091
  . "$_interactvlm_ws/../.venv/bin/activate"
fi
if [ -f "$_interactvlm_ws/install/setup.bash" ]; then
  # shellcheck disable=SC1091
  . "$_interactvlm_ws/install/setup.bash"
else
  echo "env.sh: $_interactvlm_ws/install/setup.bash is missing; run 'make setup' first." >&2
fi
export MALLOC_MMAP_THRESHOLD_=33554432
export MALLOC_TRIM_THRESHOLD_=134217728
# Fast DDS profile for raw images between processes (16 MB shared-memory segments; docs/node.md,
# "Large raw images between processes"), unless one is set already. Use it on the camera side too.
_interactvlm_profile="$_interactvlm_ws/install/interactvlm_bringup/share/interactvlm_bringup/config/fastdds_large_images.xml"
if [ -z "${FASTDDS_DEFAULT_PROFILES_FILE:-}" ] && [ -f "$_interactvlm_profile" ]; then
  export FASTDDS_DEFAULT_PROFILES_FILE="$_interactvlm_profile"
fi
unset _interactvlm_profile
unset _interactvlm_ws
