"""The operator: sbomgate's custom resources as the policy set, kept live, plus the background
audit and the serving certificate's rotation. `serve` starts it (startup.py) when
`watchResources` is set; it runs in the webhook's process.

resources.py  PackagePolicy, TrustPolicy and PackageQuarantine resources -> engine inputs
live.py       the live policy set: list, watch (kopf), rebuild the AdmissionController
audit.py      the background audit on the elected replica, written as PolicyReports
certs.py      rotation of the self-signed serving certificate
startup.py    wiring the above together at start-up
"""
