"""Lifecycle transitions of a running node without the ``ros2`` command (the wheel setup has
none): ``interactvlm-ros lifecycle /interactvlm_node configure``, the equivalent of
``ros2 lifecycle set``. Uses the node's standard ``lifecycle_msgs`` services
(``<node>/change_state``, ``<node>/get_state``, ``<node>/get_available_transitions``).
"""

from __future__ import annotations

#: Transition labels as ``ros2 lifecycle set`` takes them.
TRANSITIONS = ("configure", "activate", "deactivate", "cleanup", "shutdown")


def change_state(node_name: str, transition: str, timeout: float = 30.0) -> str:
    """Trigger ``transition`` ("configure", ..., "shutdown") on ``node_name`` or, with
    "get", read its state. Returns a line for the user.

    Raises:
        ValueError: an unknown transition, one the node cannot take from its state (the
            available ones are named), or a node that does not answer within ``timeout``.
    """
    import rclpy
    from lifecycle_msgs.srv import ChangeState, GetAvailableTransitions, GetState
    from rclpy.executors import SingleThreadedExecutor

    if transition not in (*TRANSITIONS, "get"):
        raise ValueError(f"transition must be one of {', '.join((*TRANSITIONS, 'get'))}, got {transition!r}")
    node_name = "/" + node_name.strip("/")
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("interactvlm_lifecycle_client", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    try:
        def call(service_type, service, request):
            client = node.create_client(service_type, f"{node_name}/{service}")
            if not client.wait_for_service(timeout_sec=timeout):
                raise ValueError(f"no lifecycle node {node_name} answers (service {node_name}/{service})")
            future = client.call_async(request)
            executor.spin_until_future_complete(future, timeout_sec=timeout)
            if future.result() is None:
                raise ValueError(f"{node_name}/{service} did not answer within {timeout:g} s")
            return future.result()

        state = call(GetState, "get_state", GetState.Request()).current_state.label
        if transition == "get":
            return f"{node_name}: {state}"
        available = call(GetAvailableTransitions, "get_available_transitions",
                         GetAvailableTransitions.Request()).available_transitions
        matching = [t.transition for t in available if t.transition.label == transition]
        if not matching:
            names = sorted({t.transition.label for t in available})
            raise ValueError(f"{node_name} is {state}: cannot {transition} (available: {', '.join(names)})")
        result = call(ChangeState, "change_state", ChangeState.Request(transition=matching[0]))
        if not result.success:
            raise ValueError(f"{node_name}: {transition} failed (see the node's log for why)")
        after = call(GetState, "get_state", GetState.Request()).current_state.label if transition != "shutdown" \
            else "finalized"
        return f"{node_name}: {transition} succeeded, now {after}"
    finally:
        executor.shutdown()
        node.destroy_node()
        context.try_shutdown()
