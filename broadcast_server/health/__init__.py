"""Fleet health: presence from status, last will and heartbeat timeouts; technician views; alerts.

Pure parts (no I/O): ``presence_rules`` (how one message changes a cluster's presence),
``presence_timeline`` (uptime and flapping from presence events), ``deadlines`` (the timeout heap),
``alerts`` (when to alert, with storm suppression). Adapters and services: ``monitor`` (runs the
timeouts and alerts inside the ingest worker), ``webhook`` (POSTs alerts), ``fleet_view`` (queries).
"""
