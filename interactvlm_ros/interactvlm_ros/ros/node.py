"""``interactvlm_node``: the lifecycle node robots run.

Lifecycle (rclpy.lifecycle):

* configure: load the models (or a tiny RANDOM one), the body, the object map, and prepare the
  body renders and their SAM embeddings; a missing file fails the transition with a message
  naming it;
* activate: subscriptions (``image`` or its CompressedImage, ``detections``), publishers
  (``~/interactions``, ``~/markers``, ``/diagnostics``) and the ``~/estimate_interactions``
  service;
* deactivate: all of those are destroyed; cleanup / shutdown: the models are freed.

All model work runs on one worker thread (the OpenGL context and the model belong to it);
callbacks only store messages, and the service callback awaits the worker, so a
single-threaded executor serves everything. Images wait in a small ring buffer; each detections message is
paired with the image of its stamp (exact, or nearest within ``sync_slop``) and becomes the one
pending pair: a newer pair replaces an unprocessed one, so latency never grows. Every message
that is not used is counted by reason and reported on /diagnostics.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from interactvlm_msgs.msg import InteractionArray
from interactvlm_msgs.srv import EstimateInteractions
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.executors import SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rclpy.task import Future as RclpyFuture
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header
from vision_msgs.msg import Detection2DArray
from visualization_msgs.msg import MarkerArray

from .images import SUPPORTED_ENCODINGS, ImageRejected, depth_to_array
from .parameters import PARAMETERS
from .processing import QUIET_REASONS, DepthFrame, FrameProcessor, ProcessingSettings, stamp_ns
from .sync import PairBuffer

NODE_NAME = "interactvlm_node"


def _descriptor(parameter) -> ParameterDescriptor:
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


def _qos(name: str, depth: int) -> QoSProfile:
    if name == "sensor_data":
        profile = QoSProfile(**{k: getattr(qos_profile_sensor_data, k) for k in ("reliability", "durability")},
                             history=HistoryPolicy.KEEP_LAST, depth=depth)
        return profile
    reliability = ReliabilityPolicy.RELIABLE if name == "reliable" else ReliabilityPolicy.BEST_EFFORT
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=reliability)


class Statistics:
    """Counters and recent timings for /diagnostics (thread-safe)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.latencies_ms: deque[float] = deque(maxlen=50)
        self.inference_ms: deque[float] = deque(maxlen=50)
        self.outputs: deque[float] = deque(maxlen=50)
        self.images: deque[float] = deque(maxlen=50)

    def count(self, key: str, n: int = 1) -> None:
        with self.lock:
            self.counts[key] += n

    @staticmethod
    def rate(times: deque[float]) -> float:
        if len(times) < 2 or times[-1] <= times[0]:
            return 0.0
        return (len(times) - 1) / (times[-1] - times[0])


class InteractVLMNode(LifecycleNode):
    """The InteractVLM lifecycle node (see the module docstring)."""

    def __init__(self, node_name: str = NODE_NAME, **kwargs):
        super().__init__(node_name, **kwargs)
        for parameter in PARAMETERS:
            self.declare_parameter(parameter.name, parameter.default, _descriptor(parameter))
        self.add_on_set_parameters_callback(self._validate_parameters)
        self.stats = Statistics()
        self.estimator = None
        self.body = None
        self.device = "unconfigured"
        self._worker: ThreadPoolExecutor | None = None
        self._scheduled = False
        self._markers_published = -float("inf")  # monotonic time of the last MarkerArray
        self._schedule_lock = threading.Lock()
        self._active = False
        self._entities: list = []
        self._buffer = PairBuffer()
        self._processor: FrameProcessor | None = None
        self._depth: deque = deque(maxlen=10)  # (stamp_ns, depth Image), registered to the colour images
        self._camera_info = None
        self._tiny_dir = None  # temporary directory of a tiny checkpoint, kept while configured

    # --------------------------------------------------------------------------- parameters
    def p(self, name: str):
        return self.get_parameter(name).value

    def _validate_parameters(self, parameters) -> SetParametersResult:
        by_name = {p.name: p for p in PARAMETERS}
        for parameter in parameters:
            spec = by_name.get(parameter.name)
            if spec is not None and spec.choices and parameter.value not in spec.choices:
                return SetParametersResult(successful=False,
                                           reason=f"{parameter.name} must be one of {', '.join(spec.choices)}")
            if parameter.name == "sync_slop" and self._buffer is not None:
                self._buffer.slop_ns = int(float(parameter.value) * 1e9)
        return SetParametersResult(successful=True)

    # ---------------------------------------------------------------------------- lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._worker = self._worker or ThreadPoolExecutor(max_workers=1, thread_name_prefix="interactvlm_model")
        try:
            self._worker.submit(self._load).result()
        except (FileNotFoundError, ValueError, RuntimeError, MemoryError, ImportError) as error:
            self.get_logger().error(f"configure failed: {error}")
            self.estimator = None
            return TransitionCallbackReturn.FAILURE
        self._buffer = PairBuffer(int(self.p("image_buffer_size")), int(float(self.p("sync_slop")) * 1e9))
        self._processor = FrameProcessor(self.estimator, self._report)
        return TransitionCallbackReturn.SUCCESS

    def _load(self) -> None:
        """Runs on the worker thread: loads everything the pipeline needs."""
        from ..loading import build_estimator

        settings = {p.name: self.p(p.name) for p in PARAMETERS}
        estimator, self._tiny_dir = build_estimator(settings, log=self.get_logger().warning)
        self.estimator, self.body = estimator, estimator.body
        self.device = f"{' | '.join(m.placement for m in estimator.models)} ({settings['dtype']})"
        self.get_logger().info(f"configured: model {estimator.model_id}, body {estimator.body_model_name}, "
                               f"device {self.device}, renderer {estimator.renderer.rasterizer.renderer_name}")

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        depth = int(self.p("image_qos_depth"))
        events = SubscriptionEventCallbacks(incompatible_qos=self._incompatible_qos)
        image_type = CompressedImage if self.p("use_compressed") else Image
        self._depth.clear()
        self._camera_info = None
        # Wakes the executor when the worker finishes a service request (rclpy does not wake
        # it when a Future is completed from another thread).
        # Own callback groups: a pending service request must not hold the default group,
        # which the subscriptions use.
        self._wake = self.create_guard_condition(lambda: None, callback_group=MutuallyExclusiveCallbackGroup())
        self._entities = [
            self._wake,
            self.create_subscription(image_type, self.p("image_topic"), self._on_image,
                                     _qos(self.p("image_qos"), depth), event_callbacks=events),
            self.create_subscription(Detection2DArray, self.p("detections_topic"), self._on_detections,
                                     _qos(self.p("detections_qos"), 50), event_callbacks=events),
            self.create_service(EstimateInteractions, "~/estimate_interactions", self._on_service,
                                callback_group=MutuallyExclusiveCallbackGroup()),
            self.create_timer(float(self.p("diagnostics_period")), self._publish_diagnostics),
        ]
        if self.p("use_depth"):
            self._entities += [
                self.create_subscription(Image, self.p("depth_topic"), self._on_depth,
                                         _qos(self.p("image_qos"), depth), event_callbacks=events),
                self.create_subscription(CameraInfo, self.p("camera_info_topic"), self._on_camera_info,
                                         _qos("reliable", 1), event_callbacks=events),
            ]
        self._interactions = self.create_publisher(InteractionArray, "~/interactions", 10)
        self._marker_pub = self.create_publisher(MarkerArray, "~/markers", 1)
        self._diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._entities += [self._interactions, self._marker_pub, self._diagnostics]
        self._active = True
        image_topic = self.resolve_topic_name(self.p("image_topic"))
        self.get_logger().info(f"activated: {image_type.__name__} on {image_topic} ({self.p('image_qos')} QoS), "
                               f"detections on {self.resolve_topic_name(self.p('detections_topic'))}")
        return TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._active = False
        self._destroy_entities()
        return TransitionCallbackReturn.SUCCESS

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._free()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._active = False
        self._destroy_entities()
        self._free()
        return TransitionCallbackReturn.SUCCESS

    def _destroy_entities(self) -> None:
        from rclpy.publisher import Publisher
        from rclpy.service import Service
        from rclpy.subscription import Subscription
        from rclpy.guard_condition import GuardCondition
        from rclpy.timer import Timer

        destroy = {Subscription: self.destroy_subscription, Publisher: self.destroy_publisher,
                   Service: self.destroy_service, Timer: self.destroy_timer,
                   GuardCondition: self.destroy_guard_condition}
        for entity in self._entities:
            for kind, function in destroy.items():
                if isinstance(entity, kind):
                    function(entity)
                    break
        self._entities = []

    def _free(self) -> None:
        if self._worker is not None:
            def free():
                self.estimator = None
                import torch

                if torch.cuda.is_available():
                    torch.cuda.empty_cache()

            self._worker.submit(free).result()
        if self._tiny_dir is not None:
            self._tiny_dir.cleanup()
            self._tiny_dir = None

    def destroy_node(self):
        self._active = False
        if self._worker is not None:
            self._worker.shutdown(wait=True, cancel_futures=True)
            self._worker = None
        super().destroy_node()

    # ---------------------------------------------------------------------------- callbacks
    def _incompatible_qos(self, event) -> None:
        self.stats.count("incompatible_qos")
        self.get_logger().warning(f"a publisher's QoS is incompatible with a subscription of this node "
                                  f"(policy {event.last_policy_kind}); no messages will arrive from it",
                                  throttle_duration_sec=5.0)

    def _reject(self, reason: str, detail: str) -> None:
        self.stats.count(reason)
        self.get_logger().warning(f"dropped input ({reason}): {detail}", throttle_duration_sec=5.0)

    def _report(self, reason: str, detail: str) -> None:
        """An input the processor did not use: counted; logged unless routine."""
        if reason in QUIET_REASONS or reason.startswith("affordance_skipped") or reason.startswith("pairs_without"):
            self.stats.count(reason)
        else:
            self._reject(reason, detail)

    def _on_image(self, msg) -> None:
        self.stats.count("images_received")
        with self.stats.lock:
            self.stats.images.append(time.monotonic())
        stamp = stamp_ns(msg.header.stamp)
        if stamp == 0:
            self._reject("image_without_stamp", "images need a header stamp to be paired with detections")
            return
        if isinstance(msg, Image) and msg.encoding not in SUPPORTED_ENCODINGS:
            self._reject("unsupported_encoding",
                         f"image encoding {msg.encoding!r}; supported: {', '.join(SUPPORTED_ENCODINGS)}")
            return
        self._buffer.add_image(stamp, msg)
        self._schedule()

    def _on_depth(self, msg: Image) -> None:
        self.stats.count("depth_received")
        self._depth.append((stamp_ns(msg.header.stamp), msg))

    def _on_camera_info(self, msg: CameraInfo) -> None:
        self._camera_info = msg

    def _depth_for(self, image_msg):
        """The registered depth of an image (same stamp, or nearest within sync_slop) as a
        DepthFrame, or None (counted) when depth is configured but missing or unusable."""
        if not self.p("use_depth"):
            return None
        from ..geometry.depth import Intrinsics, depth_to_metres

        stamp = stamp_ns(image_msg.header.stamp)
        slop = int(float(self.p("sync_slop")) * 1e9)
        candidates = [(abs(s - stamp), m) for s, m in list(self._depth) if abs(s - stamp) <= slop]
        if not candidates or self._camera_info is None:
            self._report("no_depth_for_image", "no registered depth image or CameraInfo for this image's stamp")
            return None
        depth_msg = min(candidates, key=lambda c: c[0])[1]
        info = self._camera_info
        try:
            metres = depth_to_metres(depth_to_array(depth_msg), depth_msg.encoding)
            intrinsics = Intrinsics.from_camera_info(list(info.k), int(info.width), int(info.height))
        except (ImageRejected, ValueError) as error:
            self._report("bad_depth", str(error))
            return None
        return DepthFrame(metres, intrinsics, depth_msg.header.frame_id or image_msg.header.frame_id)

    def _on_detections(self, msg: Detection2DArray) -> None:
        self.stats.count("detections_received")
        stamp = stamp_ns(msg.header.stamp)
        if stamp == 0:
            self._reject("detections_without_stamp", "detections need the stamp of their image")
            return
        if not msg.detections:
            self.stats.count("empty_detections")
            return
        if self._buffer.add_detections(stamp, msg):
            self._schedule()

    def _schedule(self) -> None:
        """Queue one processing job on the worker unless one is already queued."""
        if not self._active or self._worker is None or not self._buffer.pending:
            return
        with self._schedule_lock:
            if self._scheduled:
                return
            self._scheduled = True
        self._worker.submit(self._process_newest)

    # ------------------------------------------------------------------------------- worker
    def _process_newest(self) -> None:
        with self._schedule_lock:
            self._scheduled = False
        pair = self._buffer.take()
        if pair is None or not self._active or self.estimator is None:
            return
        received = time.monotonic()
        settings = self._settings()
        try:
            result = self._estimate(pair.image, pair.detections, settings)
        except ImageRejected as error:
            self._reject(error.reason, str(error))
            return
        except Exception as error:  # noqa: BLE001 - the node must survive any model failure
            self.stats.count("inference_errors")
            self.get_logger().error(f"inference failed: {error!r}", throttle_duration_sec=5.0)
            return
        if result is None:
            return
        message, estimate = result
        if not self._active:
            return
        self._interactions.publish(message)
        published = time.monotonic()
        with self.stats.lock:
            self.stats.counts["pairs_processed"] += 1
            self.stats.outputs.append(published)
            self.stats.latencies_ms.append((published - received) * 1e3)
            self.stats.inference_ms.append(message.inference_ms)
        # Markers after the interactions (planners first), at most markers_max_rate per second.
        rate = float(self.p("markers_max_rate"))
        if settings.markers and (rate <= 0.0 or published - self._markers_published >= 1.0 / rate):
            self._markers_published = published
            self._marker_pub.publish(self._processor.markers(message, estimate, settings))

    def _settings(self) -> ProcessingSettings:
        return ProcessingSettings.from_parameters(self.p)

    def _estimate(self, image_msg, detections_msg: Detection2DArray, settings: ProcessingSettings | None = None):
        """Runs on the worker thread (see FrameProcessor.process)."""
        return self._processor.process(image_msg, detections_msg, settings or self._settings(),
                                       depth=self._depth_for(image_msg))

    # ------------------------------------------------------------------------------ service
    async def _on_service(self, request, response):
        """Answered without blocking the executor: the request is queued on the worker and the
        callback awaits its completion, so subscriptions keep being served meanwhile."""
        self.stats.count("service_requests")
        if not self._active or self.estimator is None or self._worker is None:
            response.success, response.message = False, "interactvlm_node is not active"
            return response
        done = RclpyFuture(executor=self.executor)
        job: Future = self._worker.submit(self._estimate, request.image, request.detections)

        def finished(completed: Future) -> None:  # worker thread: complete, then wake the executor
            done.set_result(completed)
            self._wake.trigger()

        job.add_done_callback(finished)
        await done
        try:
            result = job.result()
        except ImageRejected as error:
            response.success, response.message = False, str(error)
            return response
        except Exception as error:  # noqa: BLE001 - reported to the caller
            self.stats.count("inference_errors")
            response.success, response.message = False, f"inference failed: {error!r}"
            return response
        if result is None:
            response.success, response.message = False, "no valid detections in the request"
            response.interactions.header = request.image.header
            return response
        response.success, response.interactions = True, result[0]
        return response

    # -------------------------------------------------------------------------- diagnostics
    def _publish_diagnostics(self) -> None:
        stats = self.stats
        with stats.lock:
            counts = dict(stats.counts)
            latency = float(np.median(stats.latencies_ms)) if stats.latencies_ms else 0.0
            inference = float(np.median(stats.inference_ms)) if stats.inference_ms else 0.0
            output_rate, image_rate = stats.rate(stats.outputs), stats.rate(stats.images)
        counts.update({f"sync_{k}": v for k, v in self._buffer.counts.items()})
        random_weights = bool(self.estimator is not None and self.estimator.weights_are_random)
        level, text = DiagnosticStatus.OK, "running"
        if random_weights:
            level, text = DiagnosticStatus.WARN, "RANDOM WEIGHTS: outputs are meaningless"
        if counts.get("detections_received", 0) >= 5 and not counts.get("images_received"):
            level, text = DiagnosticStatus.WARN, ("detections arrive but no images: check the image topic, its QoS "
                                                  "and, for large raw images between processes, the DDS transport "
                                                  "(README: large images)")
        if counts.get("answer_limit_reached"):
            level, text = DiagnosticStatus.WARN, (f"{counts['answer_limit_reached']} answers reached max_new_tokens "
                                                  "without [SEG] (no mask): raise max_new_tokens")
        if counts.get("inference_errors"):
            level, text = DiagnosticStatus.ERROR if not counts.get("pairs_processed") else DiagnosticStatus.WARN, \
                f"{counts['inference_errors']} inference errors"
        values = {
            "device": self.device,
            "model_id": self.estimator.model_id if self.estimator is not None else "",
            "weights_are_random": str(random_weights).lower(),
            "image_rate_hz": f"{image_rate:.2f}",
            "output_rate_hz": f"{output_rate:.2f}",
            "median_latency_ms": f"{latency:.1f}",
            "median_inference_ms": f"{inference:.1f}",
            "pending_pairs": str(self._buffer.pending),
            "waiting_detections": str(self._buffer.waiting_detections),
            **{k: str(v) for k, v in sorted(counts.items())},
        }
        status = DiagnosticStatus(level=level, name=f"{self.get_name()}: pipeline", message=text,
                                  hardware_id=self.device,
                                  values=[KeyValue(key=k, value=v) for k, v in values.items()])
        self._diagnostics.publish(DiagnosticArray(header=Header(stamp=self.get_clock().now().to_msg()),
                                                  status=[status]))


def main(args=None) -> int:
    """``ros2 run interactvlm_ros interactvlm_node``: configures and activates by itself
    unless the parameter ``autostart`` is false (then drive it with lifecycle transitions)."""
    rclpy.init(args=args)
    node = InteractVLMNode()
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
                node.get_logger().fatal("could not configure; see the error above")
                return 1
            node.trigger_activate()
        executor.spin()
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
