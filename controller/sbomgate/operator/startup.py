"""The operator's start-up: policies, trust and quarantine from custom resources, reloaded
live, with the background audit and the certificate rotation on the elected replica."""

from __future__ import annotations

import datetime as dt
import os
import socket
import threading
from collections.abc import Callable

from sbomgate.admission import AdmissionController, Observer
from sbomgate.config import ServeConfig
from sbomgate.operator.live import Compiled, LivePolicySet
from sbomgate.runtime import (
    ColdPathHost,
    file_policies,
    file_trust_policies,
    make_controller,
    own_namespace,
    shared_parts,
)


def start_live_policy_set(
    config: ServeConfig,
    observer: Observer,
    *,
    install: Callable[[AdmissionController], None],
    current: Callable[[], AdmissionController | None],
    ready: threading.Event,
    stop: threading.Event,
    cold: ColdPathHost | None = None,
) -> LivePolicySet:
    """Load the complete set (raises, and the process exits, when the API cannot be read),
    `install` it and set `ready`; then watch the resources, rebuild on change and audit, on
    threads of their own until `stop`. `current` is the controller in force, for the audit."""
    from kubernetes import client as k8s
    from kubernetes import config as k8s_config

    from sbomgate.operator.audit import Auditor, LeaseElection
    from sbomgate.operator.certs import CertificateRotator, RotationSettings
    from sbomgate.operator.live import ClusterSideEffects, run_kopf

    if config.kubeconfig is not None:
        os.environ["KUBECONFIG"] = str(config.kubeconfig)  # kopf's login reads it too
        k8s_config.load_kube_config(config_file=str(config.kubeconfig))
    else:
        try:
            k8s_config.load_incluster_config()
        except k8s_config.ConfigException:
            k8s_config.load_kube_config()
    api = k8s.ApiClient()
    shared = shared_parts(config, observer, cold=cold)
    base_policies = file_policies(config)
    base_trust = file_trust_policies(config)
    identity = f"{socket.gethostname()}-{os.getpid()}"
    effects = ClusterSideEffects(api, identity)

    def factory(compiled: Compiled) -> AdmissionController:
        return make_controller(
            shared,
            [*base_policies, *compiled.policies],
            [*base_trust, *compiled.trust_policies],
            quarantine=compiled.quarantine,
            side_effects=effects,
            namespace_labels=compiled.namespace_labels,
        )

    live = LivePolicySet(factory, install, api)
    live.load_initial()  # raises (and the process exits) when the API cannot be read
    ready.set()
    kopf_ready = threading.Event()
    threading.Thread(
        target=run_kopf,
        args=(live, stop, kopf_ready, identity),
        name="sbomgate-kopf",
        daemon=True,
    ).start()
    threading.Thread(target=live.run_rebuilds, name="sbomgate-rebuild", daemon=True).start()
    election = LeaseElection(api, own_namespace() or "default", identity)
    auditor = Auditor(
        api,
        current,
        interval=config.audit_interval,
        election=election,
        owner=config.webhook_configuration,
    )
    election.owner_reference = auditor.owner_reference
    election.owner_alive = auditor.owner_alive
    election.owner_gone = lambda: auditor.owner_gone
    live.on_rebuilt.append(auditor.trigger)
    if config.certificate_secret and config.webhook_configuration:
        rotator = CertificateRotator(
            api,
            RotationSettings(
                namespace=own_namespace() or "default",
                secret=config.certificate_secret,
                webhook_configuration=config.webhook_configuration,
                renew_before=dt.timedelta(days=config.renew_before_days),
            ),
        )
        auditor.leader_chores.append(rotator.rotate_if_due)
    threading.Thread(target=auditor.run, args=(stop,), name="sbomgate-audit", daemon=True).start()
    return live
