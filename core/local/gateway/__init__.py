"""The local gateway: one async HTTP server per workspace home, run as ``python -m byom.core.local.gateway``.

* ``proxy``: ``Gateway``, Azure ML's managed-endpoint semantics over the routes
  (:mod:`core.routing`): keys, traffic, limits, forwarding, mirrors, admin pages;
  and the process (``serve``, ``main``).
* ``http_server``: the small HTTP/1.1 server it answers on.
* ``upstream``: kept-alive connections to the model servers.
* ``metrics``: Prometheus counters and histograms.
* ``limits``: what one client may take (times, connections, body size).
* ``admin_token``: the token the admin routes ask for.
* ``control_plane_watch``: starts the control plane again when it crashed.
"""
