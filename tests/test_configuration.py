"""Bad settings are refused in one line naming the parameter at fault: at node start (values
from the command line or parameter files, as launch files pass them), at run-time ``ros2 param
set``, and at configure (``loading.build_estimator``, shared with replay and the demo)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from rclpy.parameter import Parameter

from interactvlm_ros.loading import ConfigurationError, build_estimator


def quiet(line):
    pass


def configure_error(settings: dict) -> str:
    """The message build_estimator refuses ``settings`` with (it must refuse them)."""
    with pytest.raises(ConfigurationError) as refused:
        build_estimator(settings, log=quiet)
    message = str(refused.value)
    assert "\n" not in message
    return message


@pytest.fixture
def no_model(monkeypatch):
    """Fails the test if a model is loaded (the refusal must come first)."""
    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr("interactvlm_ros.localize.builder.load_mvloc", refuse)


# ------------------------------------------------------------------------------- configure
def test_a_cache_dir_that_cannot_be_created_names_cache_dir_before_any_model(tmp_path, monkeypatch, no_model):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    bad = a_file / "cache"
    assert configure_error({"use_tiny_checkpoint": True, "cache_dir": str(bad)}).startswith(
        f"cache_dir = '{bad}': RenderCacheError: render cache {bad} cannot be created or written: "
        f"[Errno 20] Not a directory: '{bad}'")
    # The default ($XDG_CACHE_HOME/interactvlm_ros/renders) is named by the parameter left empty.
    monkeypatch.setenv("XDG_CACHE_HOME", str(a_file))
    assert configure_error({"use_tiny_checkpoint": True}).startswith(
        f"cache_dir = '': RenderCacheError: render cache {a_file}/interactvlm_ros/renders cannot be created")


def test_a_cache_write_failing_while_rendering_names_cache_dir_not_render_size(tmp_path, monkeypatch):
    """The body renders are stored during configure's warm-up: a cache that fails there is
    still named (not the render size the warm-up step is about)."""
    from interactvlm_ros.render.cache import RenderCache

    monkeypatch.setattr(RenderCache, "check", lambda self: None)  # let the bad directory reach the first store
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    message = configure_error({"use_tiny_checkpoint": True, "render_size": 64, "cache_dir": str(a_file / "cache")})
    assert message.startswith(f"cache_dir = '{a_file / 'cache'}': RenderCacheError: "), message


def test_quantization_off_cuda_is_refused_naming_quantization_and_the_device(tmp_path, tiny_checkpoint):
    """4-/8-bit quantisation (bitsandbytes) on the CPU: refused for the tiny checkpoint too
    (it used to be ignored), and named quantization for a checkpoint directory (not the
    checkpoint)."""
    cache = str(tmp_path / "cache")
    assert configure_error({"use_tiny_checkpoint": True, "quantization": "4bit", "cache_dir": cache}) == (
        "quantization = '4bit': QuantizationError: 4bit quantisation needs the decoder layers on CUDA devices "
        "(bitsandbytes runs on CUDA only), got cpu")
    assert configure_error({"contact_checkpoint_dir": str(tiny_checkpoint), "clip_dir": str(tiny_checkpoint / "clip"),
                            "quantization": "8bit", "cache_dir": cache}).startswith(
        "quantization = '8bit': QuantizationError: 8bit quantisation needs the decoder layers on CUDA devices")


def test_a_missing_clip_tower_names_clip_dir_not_the_checkpoint(tmp_path, tiny_checkpoint):
    settings = {"contact_checkpoint_dir": str(tiny_checkpoint), "cache_dir": str(tmp_path / "cache")}
    missing = tmp_path / "no-clip"
    assert configure_error({**settings, "clip_dir": str(missing)}).startswith(
        f"clip_dir = '{missing}': ClipTowerError: CLIP vision tower not found: {missing}")
    # Unset: the checkpoint's config names a hub id, which is never downloaded.
    assert configure_error(settings).startswith("clip_dir = '': ClipTowerError: CLIP vision tower not found. ")


def test_a_2d_model_as_affordance_model_names_affordance_checkpoint_dir(tmp_path, tiny_checkpoint, tiny_variant):
    two_d = tiny_variant("2d-hcontact")
    message = configure_error({"contact_checkpoint_dir": str(tiny_checkpoint), "affordance_checkpoint_dir": str(two_d),
                               "clip_dir": str(tiny_checkpoint / "clip"), "cache_dir": str(tmp_path / "cache")})
    assert message.startswith(f"affordance_checkpoint_dir = '{two_d}': ValueError: {two_d.name} is a 2D model"), message


def test_device_map_and_max_memory_errors_name_them_before_any_model(no_model):
    import torch

    assert configure_error({"use_tiny_checkpoint": True, "max_memory": "cuda:0=1GiB"}) == (
        "max_memory = 'cuda:0=1GiB': ValueError: max_memory applies to device_map auto only")
    if not torch.cuda.is_available():
        assert configure_error({"use_tiny_checkpoint": True, "device_map": "auto"}) == (
            "device_map = 'auto': ValueError: device_map auto splits the model over CUDA devices; none is available")


def test_values_outside_the_table_are_named(tmp_path, no_model):
    """Checked first, against the table: a body the renderer has no views for is body_model's
    fault even with a body_model_dir set (that folder is read for SMPL-H only)."""
    assert configure_error({"body_model": "smplx", "body_model_dir": str(tmp_path)}) == (
        "body_model = 'smplx': ValueError: expected a string, one of anny, smplh")
    assert configure_error({"threshold": 2}) == "threshold = 2: ValueError: expected a double in 0.0..1.0"
    assert configure_error({"thresold": 0.5}).startswith("thresold = 0.5: ValueError: not a parameter")


def test_an_empty_markers_frame_is_refused_by_the_settings():
    from interactvlm_ros.config import check_settings
    from interactvlm_ros.ros.processing import ProcessingSettings

    with pytest.raises(ValueError, match="^markers_frame_id = '': expected a non-empty string$"):
        check_settings({"markers_frame_id": ""})  # replay / demo --params-file
    with pytest.raises(ValueError, match="markers_frame_id must not be empty"):
        ProcessingSettings(markers_frame_id="")
    assert ProcessingSettings(markers_frame_id="map").markers_frame_id == "map"


# ------------------------------------------------------------------------ the node process
def _run_nodes(cases: dict[str, list[str]], env: dict) -> dict[str, tuple[int, list[str]]]:
    """Start ``python -m interactvlm_ros.ros.node --ros-args ARGS`` for every case at once;
    their exit codes and output lines (stdout and stderr)."""
    processes = {name: subprocess.Popen([sys.executable, "-m", "interactvlm_ros.ros.node", "--ros-args", *arguments],
                                        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                 for name, arguments in cases.items()}
    try:
        return {name: (process.wait(timeout=180), process.stdout.read().splitlines())
                for name, process in processes.items()}
    finally:
        for process in processes.values():
            process.kill()
            process.stdout.close()


def test_bad_values_at_start_give_one_line_and_exit_code_1(tmp_path, ros_subprocess_env):
    """Wrong types and values outside ranges (which rclpy refuses while declaring), choices and
    empty strings (which it does not check): one fatal line naming the parameter, the value and
    what is expected, no traceback, exit code 1. Launch files pass parameters as parameter files
    (the params_file and a generated one for the overrides): the same path."""
    wrong_type = tmp_path / "wrong_type.yaml"
    wrong_type.write_text("/**:\n  ros__parameters:\n    render_size: 512.0\n")
    not_a_choice = tmp_path / "not_a_choice.yaml"
    not_a_choice.write_text("/**:\n  ros__parameters:\n    image_qos: fast\n")
    cases = {
        "dtype:=3": (["-p", "dtype:=3"], "dtype = 3: expected a string, one of float32, bfloat16, float16"),
        "render_size:=10": (["-p", "render_size:=10"], "render_size = 10: expected an integer in 64..2048"),
        "dtype:=float8": (["-p", "dtype:=float8"],
                          "dtype = 'float8': expected a string, one of float32, bfloat16, float16"),
        "threshold:=1": (["-p", "threshold:=1"],
                         "threshold = 1: expected a double in 0.0..1.0 (ROS reads 1 as an integer: write 1.0)"),
        "empty frame": (["-p", 'markers_frame_id:=""'], "markers_frame_id = '': expected a non-empty string"),
        "file type": (["--params-file", str(wrong_type)], "render_size = 512.0: expected an integer in 64..2048"),
        "file choice": (["--params-file", str(not_a_choice)],
                        "image_qos = 'fast': expected a string, one of sensor_data, reliable, best_effort"),
    }
    results = _run_nodes({name: arguments for name, (arguments, _) in cases.items()}, ros_subprocess_env)
    for name, (_, expected) in cases.items():
        code, lines = results[name]
        assert code == 1 and len(lines) == 1, (name, code, lines)
        assert "[FATAL]" in lines[0] and lines[0].endswith(f"[interactvlm_node]: parameter refused: {expected}"), (
            name, lines)


def test_configure_refusals_name_the_parameter_at_fault(tmp_path, ros_subprocess_env):
    """The node process configuring itself: a cache_dir under a file and 4-bit quantisation on
    the CPU fail configure with one error line naming them, then exit 1."""
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    tiny = ["-p", "use_tiny_checkpoint:=true", "-p", "render_size:=64"]
    cases = {
        "cache": ([*tiny, "-p", f"cache_dir:={a_file / 'cache'}"],
                  f"configure failed: cache_dir = '{a_file / 'cache'}': RenderCacheError: render cache "),
        "quantization": ([*tiny, "-p", f"cache_dir:={tmp_path / 'cache'}", "-p", "quantization:=4bit"],
                         "configure failed: quantization = '4bit': QuantizationError: 4bit quantisation needs the "
                         "decoder layers on CUDA devices (bitsandbytes runs on CUDA only), got cpu"),
    }
    results = _run_nodes({name: arguments for name, (arguments, _) in cases.items()}, ros_subprocess_env)
    for name, (_, expected) in cases.items():
        code, lines = results[name]
        errors = [line for line in lines if "[ERROR]" in line]
        assert code == 1 and len(errors) == 1 and expected in errors[0], (name, code, lines)
        assert not any("Traceback" in line for line in lines), lines


# --------------------------------------------------------------------------- in-process node
def test_node_refuses_an_empty_markers_frame_at_start_and_at_run_time(ros_context):
    from interactvlm_ros.ros.node import InteractVLMNode
    from interactvlm_ros.ros.parameters import ParameterRefused

    with pytest.raises(ParameterRefused, match="^markers_frame_id = '': expected a non-empty string$"):
        InteractVLMNode("empty_frame_node", context=ros_context,
                        parameter_overrides=[Parameter("markers_frame_id", value="")])
    node = InteractVLMNode(context=ros_context, parameter_overrides=[Parameter("autostart", value=False)])
    try:
        result = node.set_parameters([Parameter("markers_frame_id", value="")])[0]
        assert not result.successful and result.reason == "markers_frame_id = '': expected a non-empty string"
        assert node.p("markers_frame_id") == "interactvlm"
        # Refused together: the sync_slop of a refused batch is not applied either.
        slop_ns = node.pair_buffer.slop_ns
        result = node.set_parameters_atomically([Parameter("sync_slop", value=0.5), Parameter("task", value="dance")])
        assert not result.successful and result.reason.startswith("task = 'dance': expected a string, one of")
        assert node.pair_buffer.slop_ns == slop_ns and node.p("sync_slop") == 0.0
        assert node.set_parameters([Parameter("markers_frame_id", value="map")])[0].successful
        assert node.p("markers_frame_id") == "map"
    finally:
        node.destroy_node()
