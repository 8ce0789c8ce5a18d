"""Launchers: how a sweep's trials reach workers. The LAUNCHERS registry is lazy,
so Ray and submitit are imported only by the launcher that needs them."""

from __future__ import annotations

from suite.common.registry import Registry

LAUNCHERS: Registry = Registry("launcher")
LAUNCHERS.add("local", "suite.launchers.local:LocalLauncher")
LAUNCHERS.add("ray", "suite.launchers.ray_tune:RayTuneLauncher")
LAUNCHERS.add("slurm", "suite.launchers.slurm:SlurmLauncher")
