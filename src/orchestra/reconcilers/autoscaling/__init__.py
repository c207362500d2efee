"""Autoscaling: the HorizontalPodAutoscaler controller (kube's pkg/controller/podautoscaler).

The parts: controller (the sync: scale subresource, status, conditions, events), sources (a metric
spec -> a replica proposal from the resource metrics API), replicas (the replica calculation:
readiness, requests, ratios, tolerance, missing and unready pods) and normalize (stabilization
windows, scaling policies, min/max).
Must not import: node, net, apiserver, cli, runtime.
"""

from orchestra.reconcilers.autoscaling.controller import (
    DEFAULT_HPA_TIMINGS,
    FAST_HPA_TIMINGS,
    HorizontalController,
    HpaTimings,
    hpa_controllers,
)

__all__ = ["DEFAULT_HPA_TIMINGS", "FAST_HPA_TIMINGS", "HorizontalController", "HpaTimings", "hpa_controllers"]
