"""The local control plane: one process per workspace home that makes deployments run.

``python -m byom.core.local.control_plane --home <home>`` (``__main__``).
It reads the desired state (deployment documents) from ``byom.db`` and
reconciles it once per tick (:meth:`plane.ControlPlane.tick`), by job:

* ``rollouts``: the rollout planner: documents → generations and instance
  counts; an update starts its new generation next to the old one and
  drains the old one once the new one is ready; outcomes.
* ``instances``: the instance supervisor, a state machine over model-server
  instances (start, probe, restart with backoff, drain and stop), which
  touches processes only through a runtime (``model_servers``).
* ``gateway_supervisor``: the gateway process, started and restarted here,
  told when routes change.
* ``traffic_rollouts``: progressive traffic rollouts (``byom online-endpoint
  rollout``), each advanced through a Workspace on the home
  (:func:`core.traffic_rollout.advance`).
* ``generations``: what a generation runs (code snapshot, model folder).
* the state file (:mod:`core.local.state`): what runs, written at the end of
  a tick; a control plane started again reads it back and adopts the
  instances that still run instead of starting them twice.

Outcomes (Succeeded/Failed and the reason) reach the deployment documents
through :func:`core.outcome.record_outcome`, after the state file and the
gateway's routes. Killing this process leaves instances and gateway serving,
and the gateway starts it again (:mod:`core.local.gateway.control_plane_watch`):
each of the two restarts the other.
"""
