"""The parameter table (:mod:`interactvlm_ros.config`) in ROS terms: the descriptor the node
declares each parameter with, the error it refuses a given value with, and reading a ROS 2
parameter file outside the node (``replay`` / ``demo`` ``--params-file``) with rclpy's own
reader: the same rules as a launched node.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor

from ..config import Parameter, check_settings

NODE_NAME = "interactvlm_node"


class ParameterRefused(ValueError):
    """A parameter value given to the node (command line, parameter file, launch file) that
    it refuses; the message is one line naming the parameter, the value and what is expected."""


def read_parameters_file(path: str | Path, node_name: str = NODE_NAME) -> dict[str, Any]:
    """The parameters a ROS 2 parameter file gives ``node_name`` (entries ``/**``,
    ``node_name`` or ``/node_name``; rclpy's ``parameter_dict_from_yaml_file``), checked
    against the parameter table.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a parameter file for the node, unknown names or bad values.
    """
    from rclpy.parameter import parameter_dict_from_yaml_file, parameter_value_to_python

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"parameter file not found: {path}")
    try:
        messages = parameter_dict_from_yaml_file(str(path), use_wildcard=True, target_nodes=[f"/{node_name}"])
    except (RuntimeError, ValueError, TypeError, AttributeError) as error:
        raise ValueError(f"{path}: not a ROS 2 parameter file for {node_name} ({error})") from error
    values = {name: parameter_value_to_python(message.value) for name, message in messages.items()}
    values = {name: list(value) if isinstance(value, (list, tuple)) else value for name, value in values.items()}
    try:
        check_settings(values)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from error
    return values


def parameter_descriptor(parameter: Parameter) -> ParameterDescriptor:
    """The descriptor of a table entry: description, read-only flag, integer / floating-point
    range, and the choices of a string as ``additional_constraints``."""
    descriptor = ParameterDescriptor(description=parameter.description, read_only=parameter.read_only)
    if parameter.choices:
        descriptor.additional_constraints = "one of: " + ", ".join(parameter.choices)
    if parameter.range is not None:
        low, high = parameter.range
        if isinstance(parameter.default, bool):
            pass
        elif isinstance(parameter.default, int):
            descriptor.integer_range = [IntegerRange(from_value=int(low), to_value=int(high), step=0)]
        elif isinstance(parameter.default, float):
            descriptor.floating_point_range = [FloatingPointRange(from_value=float(low), to_value=float(high), step=0.0)]
    return descriptor
