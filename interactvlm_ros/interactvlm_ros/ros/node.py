"""``interactvlm_node``: the lifecycle node robots run.

Parameters (:mod:`..config`) given on the command line, in parameter files or by a launch
file are checked when the node is created (type, range, choices, not empty): ``main`` exits
with code 1 after one fatal line naming the parameter, the value and what is expected; a
refused ``ros2 param set`` at run time returns the same line.

Lifecycle (rclpy.lifecycle):

* configure: load the models (or a tiny RANDOM one), the body, the object map with its meshes,
  and prepare the body renders and their SAM embeddings; create the lifecycle publishers
  (``~/interactions``, ``~/markers``, ``/diagnostics``). Any failure fails the transition with
  one error line naming the parameter, its value and the cause;
* activate: subscriptions (``image`` or its CompressedImage, ``detections``, depth), the
  ``~/estimate_interactions`` service and the diagnostics timer; the publishers are enabled;
* deactivate: those are removed and the publishers disabled (the model stays loaded);
* cleanup: the publishers are destroyed and every reference to the model is dropped (GPU
  memory returned); shutdown: the same from any state, then ``main`` exits.

All model work runs on one worker thread (the OpenGL context and the model belong to it);
callbacks only store messages, and the service callback awaits the worker, so a
single-threaded executor serves everything. Images wait in a small ring buffer; each
detections message is paired with the image of its stamp (exact, or nearest within
``sync_slop``); with ``use_depth`` the pair then waits, at most ``depth_wait`` seconds, for the
image's registered depth and CameraInfo (same rule); a complete pair becomes the one pending
pair: a newer pair replaces an unprocessed one, and a pair still waiting for depth never holds
a newer complete one (``sync.PairBuffer``), so latency never grows. Every input not used is
counted by reason (:class:`~..reasons.Reason`), logged at most once per reason every 5 s, and
reported on /diagnostics (see ``diagnostics.py``), which is published in every lifecycle state.
"""

from __future__ import annotations

import dataclasses
import gc
import threading
import time
from collections import Counter, deque
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from interactvlm_msgs.msg import InteractionArray
from interactvlm_msgs.srv import EstimateInteractions
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.exceptions import ParameterException
from rclpy.executors import SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.task import Future as RclpyFuture
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header
from vision_msgs.msg import Detection2DArray
from visualization_msgs.msg import MarkerArray

from ..reasons import Reason, Rejected
from .diagnostics import (OBJECTS_PLACED, PERSONS_POSED, PROCESSED, RECEIVED_DETECTIONS, RECEIVED_IMAGES, ReasonLog,
                          WindowedCounter, build_status)
from .images import SUPPORTED_ENCODINGS
from ..config import BY_NAME, PARAMETERS, refusal
from ..handover import check_task
from .parameters import ParameterRefused, parameter_descriptor
from .processing import FrameProcessor, ProcessingSettings, stamp_ns
from .qos import qos_profile
from .sync import DeadlineWaker, PairBuffer

#: Companion streams of a pair with ``use_depth`` (see ``sync.PairBuffer``).
DEPTH_COMPANIONS = ("depth", "camera_info")

NODE_NAME = "interactvlm_node"


class InteractVLMNode(LifecycleNode):
    """The InteractVLM lifecycle node (see the module docstring).

    Raises:
        ParameterRefused: a parameter value given to it (overrides, parameter files) that it
            refuses; the node is destroyed again.
    """

    def __init__(self, node_name: str = NODE_NAME, **kwargs):
        super().__init__(node_name, **kwargs)
        try:
            self._declare_parameters()
        except ParameterRefused:
            super().destroy_node()
            raise
        self.add_on_set_parameters_callback(self._validate_parameters)
        self.counter = WindowedCounter(float(self.p("diagnostics_window")))
        self._log_throttle = ReasonLog(LOG_PERIOD)
        self._timing_lock = threading.Lock()
        self._latencies_ms: deque[float] = deque(maxlen=50)
        self._inference_ms: deque[float] = deque(maxlen=50)
        self._output_times: deque[float] = deque(maxlen=50)
        self._image_times: deque[float] = deque(maxlen=50)
        self._depth_waits_ms: deque[float] = deque(maxlen=50)  # how long pairs waited for their depth
        self.estimator = None
        self._people = None  # the people stage (body_pose_source), from configure to cleanup
        self.device = "unconfigured"
        self._worker: ThreadPoolExecutor | None = None
        self._scheduled = False
        self._markers_published = -float("inf")  # monotonic time of the last MarkerArray
        self._schedule_lock = threading.Lock()
        self._outputs: dict = {}  # lifecycle publishers, from configure to cleanup
        self._entities: list = []  # subscriptions, service, guard condition while active
        self._sync_counts: Counter[str] = Counter()  # the pairing's counts, kept over cleanups like the totals
        self._buffer = PairBuffer()
        self._waker: DeadlineWaker | None = None  # wakes the buffer at a depth wait's deadline, while active
        self._processor: FrameProcessor | None = None
        self._tiny_dir = None  # temporary directory of a tiny checkpoint, kept while configured
        #: Set when the node reaches the finalized state (shutdown): ``main`` then exits.
        self.finalized = threading.Event()
        # /diagnostics in every state (an unconfigured or inactive node says so): a plain publisher.
        self._diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._diagnostics_timer = self.create_timer(float(self.p("diagnostics_period")), self._publish_diagnostics)

    # --------------------------------------------------------------------------- parameters
    def p(self, name: str):
        return self.get_parameter(name).value

    def _declare_parameters(self) -> None:
        """Declare every parameter of the table, taking the values given on the command line or
        in parameter files (launch files pass theirs as parameter files).

        Raises:
            ParameterRefused: a given value of the wrong type, outside its range or choices, or
                empty where that is refused (one line: ``config.refusal``).
        """
        for parameter in PARAMETERS:
            try:
                self.declare_parameter(parameter.name, parameter.default, parameter_descriptor(parameter))
            except ParameterException as error:  # rclpy refused the given value's type or range
                # Declared again without type or range, only to read back the value given.
                given = self.declare_parameter(parameter.name, parameter.default,
                                               ParameterDescriptor(dynamic_typing=True)).value
                raise ParameterRefused(refusal(parameter, given, strict_types=True)
                                       or " ".join(str(error).split())) from None
            problem = refusal(parameter, self.p(parameter.name), strict_types=True)  # choices, empty strings
            if problem is not None:
                raise ParameterRefused(problem)

    def _validate_parameters(self, parameters) -> SetParametersResult:
        """Run-time ``ros2 param set``: refused (all of them) when one value is refused."""
        for parameter in parameters:
            spec = BY_NAME.get(parameter.name)
            problem = refusal(spec, parameter.value, strict_types=True) if spec is not None else None
            if problem is not None:
                return SetParametersResult(successful=False, reason=problem)
        for parameter in parameters:
            if parameter.name == "sync_slop" and self._buffer is not None:
                self._buffer.slop_ns = int(float(parameter.value) * 1e9)
            if parameter.name == "depth_wait" and self._buffer is not None:
                self._buffer.wait_s = float(parameter.value)
                self._arm_expiry()  # a shorter wait ends earlier for the pairs waiting now
        return SetParametersResult(successful=True)

    # ---------------------------------------------------------------------------- lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._worker = self._worker or ThreadPoolExecutor(max_workers=1, thread_name_prefix="interactvlm_model")
        try:
            self._worker.submit(self._load).result()
        except Exception as error:  # noqa: BLE001 - every failure is reported, the node stays unconfigured
            self.get_logger().error(f"configure failed: {_one_line(error)}")
            self._free()
            return TransitionCallbackReturn.FAILURE
        self._buffer = self._new_buffer()
        self._processor = FrameProcessor(self.estimator, self._report, self._people)
        self._outputs = {
            "interactions": self.create_lifecycle_publisher(InteractionArray, "~/interactions", 10),
            "markers": self.create_lifecycle_publisher(MarkerArray, "~/markers", 1),
        }
        return TransitionCallbackReturn.SUCCESS

    def _load(self) -> None:
        """Runs on the worker thread: loads everything the pipeline needs.

        Raises:
            ConfigurationError: naming the parameter, its value and the cause.
        """
        from ..loading import build_estimator, build_people

        settings = {p.name: self.p(p.name) for p in PARAMETERS}
        self._people = build_people(settings, log=self.get_logger().warning)  # first: it fails fast
        estimator, self._tiny_dir = build_estimator(settings, log=self.get_logger().warning)
        self.estimator = estimator
        vision = sorted({m.vision_description for m in estimator.models} - {"torch"})
        self.device = (f"{' | '.join(m.placement for m in estimator.models)} ({settings['dtype']}"
                       f"{''.join(', vision ' + v for v in vision)})")
        people = f"body pose source {self.p('body_pose_source')}" if self._people is not None else "no body pose source"
        self.get_logger().info(f"configured: model {estimator.model_id}, body {estimator.body_model_name}, "
                               f"device {self.device}, renderer {estimator.renderer.rasterizer.renderer_name}, "
                               f"{people}")

    def _companions(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(companions, optional companions) of the pairing: depth and CameraInfo with
        ``use_depth``; else CameraInfo for the people stage, waited for once it has come (a
        camera without CameraInfo costs no wait; its people are not placed: no_camera_info)."""
        if self.p("use_depth"):
            return DEPTH_COMPANIONS, ()
        if self._people is not None:
            return ("camera_info",), ("camera_info",)
        return (), ()

    def _new_buffer(self) -> PairBuffer:
        """An empty pairing buffer for the current parameters (its counts keep adding up)."""
        companions, optional = self._companions()
        return PairBuffer(int(self.p("image_buffer_size")), int(float(self.p("sync_slop")) * 1e9),
                          companions=companions, optional=optional, wait_s=float(self.p("depth_wait")),
                          report=self._report, counts=self._sync_counts)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        depth = int(self.p("image_qos_depth"))
        events = SubscriptionEventCallbacks(incompatible_qos=self._incompatible_qos)
        image_type = CompressedImage if self.p("use_compressed") else Image
        self._buffer = self._new_buffer()  # nothing from before a deactivation is paired
        # Wakes the executor when the worker finishes a service request (rclpy does not wake
        # it when a Future is completed from another thread).
        # Own callback groups: a pending service request must not hold the default group,
        # which the subscriptions use.
        self._wake = self.create_guard_condition(lambda: None, callback_group=MutuallyExclusiveCallbackGroup())
        self._entities = [
            self._wake,
            self.create_subscription(image_type, self.p("image_topic"), self._on_image,
                                     qos_profile(self.p("image_qos"), depth), event_callbacks=events),
            self.create_subscription(Detection2DArray, self.p("detections_topic"), self._on_detections,
                                     qos_profile(self.p("detections_qos"), 50), event_callbacks=events),
            self.create_service(EstimateInteractions, "~/estimate_interactions", self._on_service,
                                callback_group=MutuallyExclusiveCallbackGroup()),
        ]
        if self.p("use_depth"):
            self._entities.append(self.create_subscription(Image, self.p("depth_topic"), self._on_depth,
                                                           qos_profile(self.p("image_qos"), depth),
                                                           event_callbacks=events))
        if "camera_info" in self._buffer.companions:
            self._entities.append(self.create_subscription(CameraInfo, self.p("camera_info_topic"),
                                                           self._on_camera_info, qos_profile("reliable", depth),
                                                           event_callbacks=events))
        image_topic = self.resolve_topic_name(self.p("image_topic"))
        self.get_logger().info(f"activated: {image_type.__name__} on {image_topic} ({self.p('image_qos')} QoS), "
                               f"detections on {self.resolve_topic_name(self.p('detections_topic'))}")
        if self._buffer.companions:  # last: nothing above can fail and leave the thread running
            self._waker = DeadlineWaker(self._on_expiry, on_error=lambda error: self.get_logger().error(
                f"waking the pairs waiting for depth failed: {error!r}"))
        return super().on_activate(state)  # enables the lifecycle publishers

    @property
    def pair_buffer(self) -> PairBuffer:
        """The image/detections pairing (its counts, pending and waiting pairs)."""
        return self._buffer

    @property
    def lifecycle_state(self) -> str:
        """The current lifecycle state's label ("unconfigured", "inactive", "active", ...)."""
        return self._state_machine.current_state[1]

    @property
    def active(self) -> bool:
        """Whether the node is active (its lifecycle publishers are enabled)."""
        publisher = self._outputs.get("interactions")
        return publisher is not None and publisher.is_activated

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        result = super().on_deactivate(state)  # disables the publishers: nothing more is published
        self._destroy_entities()
        self._cancel_expiry()
        self.get_logger().info("deactivated: subscriptions and service removed; the model stays loaded")
        return result

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._destroy_publishers()
        self._free()
        self.get_logger().info("cleaned up: the model and every buffer are released")
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._destroy_entities()
        self._cancel_expiry()
        self._destroy_publishers()
        self._free()
        self.get_logger().info("shut down: the process exits")
        self.finalized.set()
        return TransitionCallbackReturn.SUCCESS

    def _destroy_entities(self) -> None:
        from rclpy.guard_condition import GuardCondition
        from rclpy.service import Service
        from rclpy.subscription import Subscription

        destroy = {Subscription: self.destroy_subscription, Service: self.destroy_service,
                   GuardCondition: self.destroy_guard_condition}
        for entity in self._entities:
            for kind, function in destroy.items():
                if isinstance(entity, kind):
                    function(entity)
                    break
        self._entities = []

    def _destroy_publishers(self) -> None:
        for publisher in self._outputs.values():
            self.destroy_lifecycle_publisher(publisher)
        self._outputs = {}

    def _free(self) -> None:
        """Drop every reference to the estimator and its models (on the worker thread, which
        owns the OpenGL context and the model), then return cached GPU memory."""
        def free():
            self._processor = None
            self.estimator = None
            if self._people is not None:
                self._people.source.close()
            self._people = None
            self._buffer = PairBuffer(counts=self._sync_counts)
            gc.collect()
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()

        if self._worker is not None:
            self._worker.submit(free).result()
        else:
            free()
        self.device = "unconfigured"
        if self._tiny_dir is not None:
            self._tiny_dir.cleanup()
            self._tiny_dir = None

    def destroy_node(self):
        self._cancel_expiry()
        if self._worker is not None:
            self._worker.shutdown(wait=True, cancel_futures=True)
            self._worker = None
        super().destroy_node()

    # ---------------------------------------------------------------------------- callbacks
    def _incompatible_qos(self, event) -> None:
        self._report(Reason.INCOMPATIBLE_QOS, f"a publisher's QoS is incompatible with a subscription of this node "
                                              f"(policy {event.last_policy_kind}); no messages will arrive from it")

    def _report(self, reason: Reason, detail: str) -> None:
        """An input not used, or used with a caveat: counted, and logged by its severity
        (quiet: info; warn: warning; error: error), at most once per reason every 5 s."""
        reason = Reason(reason)
        now = time.monotonic()
        self.counter.count(reason, now)
        suppressed = self._log_throttle.admit(reason, now)
        if suppressed is None:
            return
        more = f" (+{suppressed} more since the last message)" if suppressed else ""
        verb = "failed" if reason.severity == "error" else "dropped" if reason.drops else "note"
        line = f"{verb} ({reason}): {detail}{more}"
        # One call site per severity: rclpy refuses a call site that changes its severity.
        if reason.severity == "quiet":
            self.get_logger().info(line)
        elif reason.severity == "warn":
            self.get_logger().warning(line)
        else:
            self.get_logger().error(line)

    def _on_image(self, msg) -> None:
        now = time.monotonic()
        self.counter.count(RECEIVED_IMAGES, now)
        with self._timing_lock:
            self._image_times.append(now)
        stamp = self._usable_stamp(msg, Reason.IMAGE_WITHOUT_STAMP, "an image")
        if stamp is None:
            return
        if isinstance(msg, Image) and msg.encoding not in SUPPORTED_ENCODINGS:
            self._report(Reason.UNSUPPORTED_ENCODING,
                         f"image encoding {msg.encoding!r}; supported: {', '.join(SUPPORTED_ENCODINGS)}")
            return
        self._buffer.add_image(stamp, msg)
        self._schedule()

    def _usable_stamp(self, msg, missing: Reason, what: str) -> int | None:
        """The header stamp (ns) of a message, or None (reported) when it is missing (0:
        nothing to pair by) or negative. ``what``: "an image", "a detections message"..."""
        stamp = stamp_ns(msg.header.stamp)
        if stamp == 0:
            self._report(missing, f"{what} without a header stamp cannot be paired")
        elif stamp < 0:
            self._report(Reason.NEGATIVE_STAMP, f"{what} stamped {msg.header.stamp.sec} s (negative)")
        return stamp if stamp > 0 else None

    def _on_depth(self, msg: Image) -> None:
        self.counter.count("depth_received", time.monotonic())
        self._add_companion("depth", msg, "a depth image")

    def _on_camera_info(self, msg: CameraInfo) -> None:
        self.counter.count("camera_info_received", time.monotonic())
        self._add_companion("camera_info", msg, "a CameraInfo")

    def _add_companion(self, name: str, msg, what: str) -> None:
        stamp = stamp_ns(msg.header.stamp)
        if stamp <= 0:  # nothing to pair it by: the images it belongs to go without depth
            self._report(Reason.BAD_DEPTH, f"{what} stamped {msg.header.stamp.sec} s cannot be paired (a header stamp "
                                           "> 0 is needed)")
            return
        if name not in self._buffer.companions:
            return
        self._buffer.add_companion(name, stamp, msg)
        self._schedule()

    def _camera_for(self, image_msg, depth_msg, info_msg, waited: bool = True):
        """(registered depth as a DepthFrame or None, CameraInfo intrinsics or None) of an image.
        With ``use_depth``: the depth, None (counted) when it did not come (``depth_msg`` /
        ``info_msg`` None) or is unusable. Without: the intrinsics for the people stage, None
        when no CameraInfo came (the people then count no_camera_info) or it is unusable
        (counted). ``waited``: the pair waited up to depth_wait (the stream), or not (the
        service)."""
        if self.p("use_depth"):
            missing = f"none within sync_slop ({self.p('sync_slop'):g} s) " + (
                f"arrived within depth_wait ({self.p('depth_wait'):g} s)" if waited
                else "had been received (a service request does not wait for depth)")
            return self._processor.depth(image_msg, depth_msg, info_msg, int(self.p("max_image_pixels")), missing), None
        return None, self._processor.intrinsics(info_msg)

    def _on_detections(self, msg: Detection2DArray) -> None:
        self.counter.count(RECEIVED_DETECTIONS, time.monotonic())
        stamp = self._usable_stamp(msg, Reason.DETECTIONS_WITHOUT_STAMP, "a detections message")
        if stamp is None:
            return
        if not msg.detections:
            self._report(Reason.EMPTY_DETECTIONS, "a detections message without detections")
            return
        self._buffer.add_detections(stamp, msg)
        self._schedule()

    def _schedule(self) -> None:
        """Queue one processing job on the worker unless one is already queued; arm the timer
        of the earliest depth wait."""
        self._arm_expiry()
        if not self.active or self._worker is None or not self._buffer.pending:
            return
        with self._schedule_lock:
            if self._scheduled:
                return
            self._scheduled = True
        self._worker.submit(self._process_newest)

    def _arm_expiry(self) -> None:
        """Wake at the earliest deadline of the pairs waiting for depth."""
        deadline = self._buffer.next_deadline()
        waker = self._waker
        if deadline is not None and waker is not None:
            waker.at(deadline)

    def _on_expiry(self) -> None:
        """On the waker's thread: complete the pairs whose wait is over, then schedule."""
        self._buffer.expire()
        self._schedule()

    def _cancel_expiry(self) -> None:
        waker, self._waker = self._waker, None
        if waker is not None:
            waker.close()

    # ------------------------------------------------------------------------------- worker
    def _process_newest(self) -> None:
        with self._schedule_lock:
            self._scheduled = False
        pair = self._buffer.take()
        if pair is None or not self.active or self._processor is None:
            return
        received = time.monotonic()
        settings = self._settings()
        if "depth" in pair.companions:
            with self._timing_lock:
                self._depth_waits_ms.append(pair.waited_s * 1e3)
        try:
            camera = self._camera_for(pair.image, pair.companions.get("depth"), pair.companions.get("camera_info"))
            result = self._estimate(pair.image, pair.detections, settings, *camera)
        except Rejected as error:
            self._report(error.reason, error.detail)
            return
        except Exception as error:  # noqa: BLE001 - the node must survive any model failure
            self._report(Reason.INFERENCE_ERROR, f"inference failed: {error!r}")
            return
        if result is None:
            return
        message = result.message
        publishers = self._outputs
        if not self.active:
            return
        publishers["interactions"].publish(message)
        published = time.monotonic()
        self.counter.count(PROCESSED, published)
        for person in message.persons:
            if person.body_model:
                self.counter.count(PERSONS_POSED, published)
        for interaction in message.interactions:
            if interaction.object_affordance.placement == "contact_fit":
                self.counter.count(OBJECTS_PLACED, published)
        with self._timing_lock:
            self._output_times.append(published)
            self._latencies_ms.append((published - received) * 1e3)
            self._inference_ms.append(message.inference_ms)
        # Markers after the interactions (planners first), at most markers_max_rate per second.
        rate = float(self.p("markers_max_rate"))
        if settings.markers and (rate <= 0.0 or published - self._markers_published >= 1.0 / rate):
            self._markers_published = published
            publishers["markers"].publish(self._processor.markers(result, settings))

    def _settings(self) -> ProcessingSettings:
        return ProcessingSettings.from_parameters(self.p)

    def _estimate(self, image_msg, detections_msg: Detection2DArray, settings: ProcessingSettings, depth,
                  intrinsics=None, notes: list | None = None):
        """Runs on the worker thread (see FrameProcessor.process)."""
        return self._processor.process(image_msg, detections_msg, settings, depth=depth, notes=notes,
                                       intrinsics=intrinsics)

    def _service_job(self, request, settings: ProcessingSettings, notes: list):
        """A service request on the worker: its image's depth and CameraInfo are the stream's
        nearest (no waiting)."""
        stamp = stamp_ns(request.image.header.stamp)
        camera = self._camera_for(request.image, self._buffer.companion_for("depth", stamp),
                                  self._buffer.companion_for("camera_info", stamp), waited=False)
        return self._estimate(request.image, request.detections, settings, *camera, notes=notes)

    # ------------------------------------------------------------------------------ service
    async def _on_service(self, request, response):
        """Answered without blocking the executor: the request is queued on the worker and the
        callback awaits its completion, so subscriptions keep being served meanwhile."""
        self.counter.count("service_requests", time.monotonic())
        if not self.active or self._processor is None or self._worker is None:
            response.success, response.message = False, "interactvlm_node is not active"
            return response
        try:
            settings = dataclasses.replace(self._settings(), task=check_task(request.task))
        except ValueError as error:
            response.success, response.message = False, str(error)
            return response
        done = RclpyFuture(executor=self.executor)
        notes: list = []
        job: Future = self._worker.submit(self._service_job, request, settings, notes)

        def finished(completed: Future) -> None:  # worker thread: complete, then wake the executor
            done.set_result(completed)
            self._wake.trigger()

        job.add_done_callback(finished)
        await done
        try:
            result = job.result()
        except Rejected as error:
            self._report(error.reason, f"service request: {error.detail}")
            response.success, response.message = False, str(error)
            return response
        except Exception as error:  # noqa: BLE001 - reported to the caller
            self._report(Reason.INFERENCE_ERROR, f"service request failed: {error!r}")
            response.success, response.message = False, f"inference failed: {error!r}"
            return response
        if result is None:
            dropped = "; ".join(f"{reason}: {detail}" for reason, detail in notes
                                if reason.drops and reason is not Reason.PAIRS_WITHOUT_VALID_DETECTIONS)
            response.success = False
            response.message = f"no valid detections in the request ({dropped or 'no object detection'})"
            response.interactions.header = request.image.header
            return response
        response.success, response.interactions = True, result.message
        return response

    # -------------------------------------------------------------------------- diagnostics
    def _publish_diagnostics(self) -> None:
        now = time.monotonic()
        totals, recent = self.counter.snapshot(now)
        totals.update({f"sync_{k}": v for k, v in self._buffer.counts_snapshot().items()})
        with self._timing_lock:
            latency = float(np.median(self._latencies_ms)) if self._latencies_ms else 0.0
            inference = float(np.median(self._inference_ms)) if self._inference_ms else 0.0
            output_rate, image_rate = _rate(self._output_times, now), _rate(self._image_times, now)
            depth_waits = list(self._depth_waits_ms)
        estimator = self.estimator
        values = {
            "device": self.device,
            "model_id": estimator.model_id if estimator is not None else "",
            "image_rate_hz": f"{image_rate:.2f}",
            "output_rate_hz": f"{output_rate:.2f}",
            "median_latency_ms": f"{latency:.1f}",
            "median_inference_ms": f"{inference:.1f}",
            "pending_pairs": str(self._buffer.pending),
            "waiting_detections": str(self._buffer.waiting_detections),
            "pairs_waiting_for_depth": str(self._buffer.waiting_pairs),
            # How long the last 50 pairs waited for depth: what depth_wait must cover.
            "median_depth_wait_ms": f"{np.median(depth_waits):.1f}" if depth_waits else "",
            "max_depth_wait_ms": f"{max(depth_waits):.1f}" if depth_waits else "",
            "lifecycle_state": self.lifecycle_state,
        }
        status = build_status(f"{self.get_name()}: pipeline", self.device, totals, recent, self.counter.window,
                              values, bool(estimator is not None and estimator.weights_are_random),
                              None if self.active else self.lifecycle_state)
        self._diagnostics.publish(DiagnosticArray(header=Header(stamp=self.get_clock().now().to_msg()), status=[status]))


#: Seconds between two log lines of the same drop reason.
LOG_PERIOD = 5.0


def _rate(times: deque, now: float, horizon: float = 10.0) -> float:
    """Events per second over the recent ones (at most ``horizon`` seconds old); 0 when fewer
    than two, so a stream that stopped reads 0 instead of its old rate."""
    recent = [t for t in times if t >= now - horizon]
    if len(recent) < 2 or recent[-1] <= recent[0]:
        return 0.0
    return (len(recent) - 1) / (recent[-1] - recent[0])


def _one_line(error: BaseException) -> str:
    """An exception as one log line: its type and message with line breaks folded."""
    from ..loading import ConfigurationError

    text = " ".join(str(error).split())
    return text if isinstance(error, ConfigurationError) else f"{type(error).__name__}: {text}"


def main(args=None) -> int:
    """``ros2 run interactvlm_ros interactvlm_node``: configures and activates by itself
    unless the parameter ``autostart`` is false (then drive it with lifecycle transitions)."""
    rclpy.init(args=args)
    try:
        node = InteractVLMNode()
    except ParameterRefused as error:  # one line, no traceback
        rclpy.logging.get_logger(NODE_NAME).fatal(f"parameter refused: {error}")
        rclpy.try_shutdown()
        return 1
    # Single-threaded on purpose: rclpy's MultiThreadedExecutor delayed callbacks by up to
    # seconds here (measured in benchmarks/node_overhead.py); the model runs on its own
    # worker thread and the service awaits it, so one executor thread is enough.
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        if node.p("autostart"):
            if node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
                if not rclpy.ok():  # SIGINT / SIGTERM while loading: a requested stop, not an error
                    return 0
                node.get_logger().fatal("could not configure (the error above says why); exiting")
                return 1
            if node.trigger_activate() != TransitionCallbackReturn.SUCCESS:
                node.get_logger().fatal("could not activate; exiting")
                return 1
        # Until SIGINT/SIGTERM, or the lifecycle shutdown transition (finalized): a lifecycle
        # node launched by a launch file is expected to exit then.
        while rclpy.ok() and not node.finalized.is_set():
            executor.spin_once(timeout_sec=0.1)
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass
    except RuntimeError:
        # SIGINT / SIGTERM between rclpy.ok() and the executor's wait: rclpy raises RCLError
        # ("the given context is not valid") instead of ExternalShutdownException.
        if rclpy.ok():
            raise
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
