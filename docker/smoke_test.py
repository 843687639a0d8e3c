"""Checks of an interactvlm_ros image that need no model files, network or GPU.

The Dockerfile runs it at build time (a failure stops the build); run it in a container to
check a GPU host as well:

    docker compose -f docker/compose.yaml run --rm interactvlm \\
        python3 /opt/interactvlm_ws/smoke_test.py --device cuda:0

Checks: the ROS 2 Python packages and the message type support load with the venv's numpy
(a numpy 2 in the venv would break Jazzy's numpy-1.x-compiled type support), torch imports
(and, with --device cuda:N, sees that GPU), the node module imports, MediaPipe's BlazePose
builds from the model its wheel bundles (x86_64 only), and the renderer gets a headless EGL
context (prints which OpenGL renderer: llvmpipe on CPU, the NVIDIA GPU where the container
toolkit mounted the driver's EGL).
"""

from __future__ import annotations

import argparse
import importlib
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="torch device to check (cpu, cuda:0...)")
    parser.add_argument("--no-render", action="store_true", help="skip the EGL context check")
    args = parser.parse_args(argv)

    import numpy
    import torch

    from diagnostic_msgs.msg import DiagnosticArray
    from interactvlm_msgs.msg import InteractionArray
    from interactvlm_msgs.srv import EstimateInteractions
    from sensor_msgs.msg import Image
    from vision_msgs.msg import Detection2DArray
    from visualization_msgs.msg import MarkerArray

    # Loading the type support imports each package's C extension (numpy's C API inside).
    for message in (InteractionArray, EstimateInteractions, Image, Detection2DArray, MarkerArray,
                    DiagnosticArray):
        message.__class__.__import_type_support__()
    array = InteractionArray()
    array.inference_ms = 1.5

    importlib.import_module("interactvlm_ros.ros.node")  # rclpy, the parameter table, the pipeline

    print(f"numpy {numpy.__version__}, torch {torch.__version__} (CUDA build {torch.version.cuda}), "
          f"message type support ok")
    if args.device.startswith("cuda"):
        if not torch.cuda.is_available():
            print(f"FAIL: {args.device} requested but torch sees no CUDA device "
                  "(NVIDIA container toolkit? compose 'deploy.resources' GPU request?)", file=sys.stderr)
            return 1
        x = torch.ones(4, device=args.device)
        print(f"{args.device}: {torch.cuda.get_device_name(args.device)}, sum {float(x.sum())}")
    import platform

    if platform.machine() == "x86_64":  # MediaPipe's wheel exists for x86_64 only
        from interactvlm_ros.body.pose_source import make_pose_source

        make_pose_source("mediapipe").close()  # its bundled model, no download
        print("BlazePose (mediapipe) ok")
    else:
        print(f"BlazePose: no mediapipe wheel for {platform.machine()} (body_pose_source: none)")
    if not args.no_render:
        from interactvlm_ros.render.gl import GLRasterizer

        print(f"EGL OpenGL renderer: {GLRasterizer().renderer_name}")
    print("smoke test passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
