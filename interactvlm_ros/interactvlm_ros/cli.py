"""``interactvlm-ros``: command-line tools that need no ROS.

    interactvlm-ros make-tiny-checkpoint DIR [--seed N] [--format bin|safetensors]
"""

from __future__ import annotations

import argparse
import sys


def _make_tiny_checkpoint(args) -> int:
    from .localize.tiny import write_tiny_checkpoint

    directory = write_tiny_checkpoint(args.directory, seed=args.seed, weight_format=args.format)
    print(f"wrote a tiny MV-Loc checkpoint with RANDOM weights (seed {args.seed}) to {directory}; "
          f"its CLIP tower is in {directory / 'clip'}. Outputs of this model are meaningless.")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="interactvlm-ros", description="interactvlm_ros tools")
    commands = parser.add_subparsers(dest="command", required=True)
    tiny = commands.add_parser("make-tiny-checkpoint",
                               help="write a tiny randomly initialised checkpoint in InteractVLM's format")
    tiny.add_argument("directory")
    tiny.add_argument("--seed", type=int, default=0)
    tiny.add_argument("--format", choices=("bin", "safetensors"), default="bin")
    tiny.set_defaults(run=_make_tiny_checkpoint)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
