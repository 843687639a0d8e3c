#!/usr/bin/env bash
# Run the pytest suite in the built workspace with ROS discovery confined to this machine:
# LOCALHOST discovery range, a domain id of its own and a temporary ROS_HOME / ROS_LOG_DIR.
# (tests/conftest.py enforces the same when pytest is started another way.)
# Usage: tests/run.sh [pytest arguments...]
set -eo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck disable=SC1091
. "$root/ros2_ws/env.sh"
set -u

export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
# env.sh points Fast DDS at the large-image profile, whose own UDP transport would not be
# confined by the discovery range: tests use the default transports (loopback only).
unset FASTDDS_DEFAULT_PROFILES_FILE
# Type-check message fields in Python (off by default since Jazzy): a wrong field type then
# raises in the test instead of aborting in the C conversion.
export ROS_PYTHON_CHECK_FIELDS=1
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-$(( ($$ % 90) + 1 ))}"
ros_home="$(mktemp -d -t interactvlm-ros-home.XXXXXX)"
trap 'rm -rf "$ros_home"' EXIT
export ROS_HOME="$ros_home" ROS_LOG_DIR="$ros_home/log"

cd "$root"
rc=0
python -m pytest "$@" || rc=$?
if [ "$rc" -eq 5 ]; then
  # pytest's "no tests collected": the suite always has tests, so this run proved nothing.
  echo "tests/run.sh: pytest collected no tests (exit 5); treating it as a failure." >&2
  exit 1
fi
exit "$rc"
