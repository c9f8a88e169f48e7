"""A real Kubernetes node on this machine, for the chart's end-to-end tests.

On top of a control plane made for a node (`start_kube_cluster(node_ip=...)`): containerd and
runc from Debian, kubelet, kube-controller-manager, kube-scheduler and kube-proxy built from the
same wrapper module as kube-apiserver, the sandbox image built from `pause.c`, and Debian's CNI
plugins (a bridge of its own, host-local addresses). Everything is built or unpacked by
`make node-tools` into .cache/ (see the Makefile).

What this machine needs (facts gathered in the project's notes, NODE.md):
* cgroup v1 only: kubelet runs with ``failCgroupV1: false`` and the cgroupfs driver;
* CAP_SYS_RESOURCE is missing from the bounding set, so containerd must not write negative
  ``oom_score_adj`` values (``restrict_oom_score_adj``), or every sandbox fails to start;
* in-cluster clients reach the API server's ClusterIP through kube-proxy's iptables rules.

Everything runs as root in the host's namespaces, so the node changes the host: sysctls (kubelet
sets overcommit and panic settings, the bridge plugin enables forwarding), iptables chains and
rules (kubelet, kube-proxy, the bridge plugin's masquerading), a bridge, network namespaces,
mounts, cgroups, and files under /run and /var/log. `HostState` records all of that before the
node starts; `KubeNode.stop` stops Pods, components and containerd, then puts each back, and
returns what it could not (the fixture fails on any).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from ociimage import image, tar_layer

from support.kube_cluster import (
    CACHE_BIN,
    KubeCluster,
    _child_env,
    _Process,
    _require,
    _spawn,
    _tail,
    _write_kubeconfig,
    kube_version,
    start_kube_cluster,
)
from support.net import free_port
from support.oci_builder import PushedImage
from support.paths import ROOT
from support.registry_servers import RegistryServer

__all__ = ["HostState", "KubeNode", "NodeToolsMissing", "host_ip", "start_kube_node"]

NODE_DIR = ROOT / ".cache" / "node"
NODE_BIN = NODE_DIR / "bin"
CNI_BIN = NODE_DIR / "root" / "usr" / "lib" / "cni"
PAUSE_BIN = NODE_DIR / "pause"
NODE_BINS = {
    name: CACHE_BIN / name
    for name in ("kubelet", "kube-controller-manager", "kube-scheduler", "kube-proxy")
}
NODE_NAME = "sbomgate-node"
# The Pods' addresses: a bridge of the node's own, not Docker's or another CNI's.
POD_SUBNET = "10.244.0.0/24"
CLUSTER_CIDR = "10.244.0.0/16"
BRIDGE = "sbg0"
READY_TIMEOUT = 120.0
# What kubelet, kube-proxy and the bridge plugin may change, restored afterwards.
SYSCTLS = (
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
    "net/ipv4/ip_forward",
    "net/ipv4/conf/all/route_localnet",
    "net/bridge/bridge-nf-call-iptables",
    "net/bridge/bridge-nf-call-ip6tables",
    "net/netfilter/nf_conntrack_max",
    "net/netfilter/nf_conntrack_tcp_timeout_established",
    "net/netfilter/nf_conntrack_tcp_timeout_close_wait",
)
IPTABLES_TABLES = ("filter", "nat", "mangle", "raw")
# Host folders the runtime and kubelet write to whatever they are told (shim sockets, runc's
# state, network namespaces, Pod logs, libcni's cache).
HOST_FOLDERS = (
    Path("/run/containerd"),
    Path("/run/netns"),
    Path("/var/run/netns"),
    Path("/var/log/pods"),
    Path("/var/log/containers"),
    Path("/var/lib/cni"),
    Path("/run/runc"),
)
CGROUP_ROOT = Path("/sys/fs/cgroup")


class NodeToolsMissing(RuntimeError):
    """`make node-tools` has not run."""


def host_ip() -> str:
    """The address of the interface the default route leaves through: reachable from the host
    and from Pods (through the bridge), unlike loopback."""
    done = subprocess.run(
        ["ip", "-o", "route", "get", "192.0.2.255"], capture_output=True, text=True, check=True
    )
    found = re.search(r"\bsrc (\S+)", done.stdout)
    if found is None:
        raise RuntimeError(f"no source address in `ip route get`: {done.stdout!r}")
    return found.group(1)


def _node_env() -> dict[str, str]:
    env = _child_env()
    env["PATH"] = f"{NODE_BIN}:{env.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}"
    return env


def _run(*args: str, check: bool = False, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args), capture_output=True, text=True, check=check, timeout=timeout, env=_node_env()
    )


# --------------------------------------------------------------------------- host state


def _read_sysctl(name: str) -> str | None:
    try:
        return (Path("/proc/sys") / name).read_text().strip()
    except OSError:
        return None


def _iptables_rules(table: str) -> list[str]:
    done = _run(str(NODE_BIN / "iptables-save"), "-t", table)
    return [line for line in done.stdout.splitlines() if line.startswith((":", "-A "))]


def _mounts() -> list[str]:
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        points.append(point)
    return points


def _cgroup_dirs() -> set[Path]:
    """Every cgroup two levels deep under each v1 hierarchy (kubepods/…, k8s.io/…)."""
    found: set[Path] = set()
    for hierarchy in CGROUP_ROOT.iterdir():
        if not hierarchy.is_dir() or hierarchy.is_symlink():
            continue
        for child in hierarchy.iterdir():
            if child.is_dir():
                found.add(child)
    return found


def _links() -> set[str]:
    done = _run("ip", "-o", "link", "show")
    return {line.split(":")[1].strip().split("@")[0] for line in done.stdout.splitlines()}


def _entries(folder: Path) -> set[Path] | None:
    if not folder.exists():
        return None
    return set(folder.iterdir())


@dataclass
class HostState:
    """What the node may change on the host, as it was before it started."""

    sysctls: dict[str, str | None]
    iptables: dict[str, list[str]]
    mounts: list[str]
    cgroups: set[Path]
    links: set[str]
    folders: dict[Path, set[Path] | None]

    @classmethod
    def record(cls) -> HostState:
        return cls(
            sysctls={name: _read_sysctl(name) for name in SYSCTLS},
            iptables={table: _iptables_rules(table) for table in IPTABLES_TABLES},
            mounts=_mounts(),
            cgroups=_cgroup_dirs(),
            links=_links(),
            folders={folder: _entries(folder) for folder in HOST_FOLDERS},
        )

    def restore(self, node_dir: Path) -> list[str]:
        """Undo every change found; returns what is still different afterwards."""
        self._unmount(node_dir)
        for name, value in self.sysctls.items():
            if value is not None and _read_sysctl(name) != value:
                with contextlib.suppress(OSError):
                    (Path("/proc/sys") / name).write_text(value)
        self._restore_iptables()
        for link in _links() - self.links:
            _run("ip", "link", "delete", link)
        self._remove_cgroups()
        for folder, before in self.folders.items():
            now = _entries(folder)
            if now is None:
                continue
            for entry in now - (before or set()):
                _remove(entry)
            if before is None:
                with contextlib.suppress(OSError):
                    folder.rmdir()
        return self.differences()

    def differences(self) -> list[str]:
        """What differs from the recorded state, one line each."""
        left: list[str] = []
        for name, value in self.sysctls.items():
            if _read_sysctl(name) != value:
                left.append(f"sysctl {name} is {_read_sysctl(name)}, was {value}")
        for table, rules in self.iptables.items():
            added = set(_iptables_rules(table)) - set(rules)
            left += [f"iptables -t {table}: {rule}" for rule in sorted(added)]
        left += [f"mount {m}" for m in sorted(set(_mounts()) - set(self.mounts))]
        left += [f"cgroup {c}" for c in sorted(_cgroup_dirs() - self.cgroups)]
        left += [f"link {link}" for link in sorted(_links() - self.links)]
        for folder, before in self.folders.items():
            now = _entries(folder)
            if before is None and now is not None:
                left.append(f"folder {folder}")
            elif now is not None:
                left += [f"file {p}" for p in sorted(now - (before or set()))]
        return left

    def _unmount(self, node_dir: Path) -> None:
        """Unmount what appeared under the node's folder and the runtime's host folders, the
        deepest first (lazily: a mount still busy goes when it is released)."""
        roots = (str(node_dir), *(str(f) for f in HOST_FOLDERS), "/var/lib/kubelet")
        before = set(self.mounts)
        for point in sorted(set(_mounts()) - before, key=len, reverse=True):
            if point.startswith(roots):
                subprocess.run(["umount", "-l", point], capture_output=True, check=False)

    def _restore_iptables(self) -> None:
        """Delete the rules added (in every table), then flush and delete the chains added."""
        for table, rules in self.iptables.items():
            now = _iptables_rules(table)
            added_rules = [r for r in now if r.startswith("-A ") and r not in rules]
            for rule in reversed(added_rules):
                _run(str(NODE_BIN / "iptables"), "-t", table, "-D", *_split(rule[3:]))
            chains_before = {r.split()[0][1:] for r in rules if r.startswith(":")}
            added_chains = [
                r.split()[0][1:]
                for r in now
                if r.startswith(":") and r.split()[0][1:] not in chains_before
            ]
            for chain in added_chains:
                _run(str(NODE_BIN / "iptables"), "-t", table, "-F", chain)
            for chain in added_chains:
                _run(str(NODE_BIN / "iptables"), "-t", table, "-X", chain)

    def _remove_cgroups(self) -> None:
        for top in sorted(_cgroup_dirs() - self.cgroups):
            # Children before parents: only empty cgroups can be removed.
            for folder, _, _ in sorted(os.walk(top), key=lambda w: -len(w[0])):
                with contextlib.suppress(OSError):
                    os.rmdir(folder)


def _split(rule: str) -> list[str]:
    import shlex

    return shlex.split(rule)


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        with contextlib.suppress(OSError):
            path.unlink()
    elif path.is_dir():
        shutil.rmtree(path, ignore_errors=True)


# --------------------------------------------------------------------------- the node


@dataclass
class KubeNode:
    """A running node (containerd, kubelet, controller-manager, scheduler, kube-proxy) joined
    to ``cluster``, whose API server advertises ``ip``."""

    cluster: KubeCluster
    ip: str
    directory: Path
    host_state: HostState
    ready_seconds: float = 0.0
    _processes: list[_Process] = field(default_factory=list, repr=False)

    @property
    def containerd_socket(self) -> Path:
        return self.directory / "containerd" / "containerd.sock"

    def ctr(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """containerd's `ctr` in the Kubernetes namespace."""
        return _run(
            str(NODE_BIN / "ctr"),
            "--address",
            str(self.containerd_socket),
            "--namespace",
            "k8s.io",
            *args,
            timeout=timeout,
        )

    def log_tails(self) -> str:
        return "\n".join(
            f"--- {p.name} ({p.log_file}):\n{_tail(p.log_file, 25)}" for p in self._processes
        )

    def stop(self) -> list[str]:
        """Remove every Pod, stop the components and containerd, and put the host back as it
        was. Returns what is still different on the host (nothing, when all went well)."""
        # First what would make Pods again, then the Pods (kubelet tears each down), then the rest.
        for process in self._processes:
            if process.name in ("kube-controller-manager", "kube-scheduler"):
                process.stop()
        with contextlib.suppress(Exception):
            self._drain()
        for process in reversed(self._processes):
            if process.name != "containerd":
                process.stop()
        self._remove_containers()
        for process in self._processes:
            if process.name == "containerd":
                process.stop()
        self._kill_leftovers()
        self._processes.clear()
        return self.host_state.restore(self.directory)

    def _drain(self) -> None:
        """Delete every Pod while kubelet runs, so that each sandbox is torn down as in a
        cluster (CNI DEL: addresses, masquerading rules, veths)."""
        self.cluster.kubectl(
            "delete", "pods", "--all", "--all-namespaces", "--grace-period=0", "--force",
            "--wait=false", timeout=60,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            running = [line for line in self.ctr("tasks", "list").stdout.splitlines()
                       if line.split()[-1:] == ["RUNNING"]]  # fmt: skip
            if not running:
                return
            time.sleep(0.5)

    def _remove_containers(self) -> None:
        """Whatever kubelet left: kill each task, delete it and its container."""
        for task in self.ctr("tasks", "list", "-q").stdout.split():
            self.ctr("tasks", "kill", "--all", "--signal", "SIGKILL", task)
        deadline = time.monotonic() + 20
        for task in self.ctr("tasks", "list", "-q").stdout.split():
            while time.monotonic() < deadline:
                if self.ctr("tasks", "delete", "--force", task).returncode == 0:
                    break
                time.sleep(0.2)
        for container in self.ctr("containers", "list", "-q").stdout.split():
            self.ctr("containers", "delete", container)

    def _kill_leftovers(self) -> None:
        """Any process still naming the node's folder (a shim whose container was not deleted)."""
        marker = str(self.directory)
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if marker in command:
                with contextlib.suppress(OSError):
                    os.kill(int(proc.name), signal.SIGKILL)


def push_pause_image(registry: RegistryServer, work: Path) -> PushedImage:
    """The sandbox image: the `pause` binary `make node-tools` built from pause.c, alone in one
    layer, run as 65535 as the upstream image is."""
    from support.real_image import push_image_blobs

    _need_node_tools()
    tree = work / "pause-tree"
    shutil.rmtree(tree, ignore_errors=True)
    tree.mkdir(parents=True)
    shutil.copy(PAUSE_BIN, tree / "pause")
    layer = tar_layer(tree, work / "pause.tar.gz", epoch=0)
    built = image(
        [layer],
        epoch=0,
        history=["gcc -Os -static pause.c"],
        config={"User": "65535:65535", "Entrypoint": ["/pause"]},
    )
    return push_image_blobs(registry, "node/pause", kube_version(), built)


def _need_node_tools() -> None:
    needed = [*NODE_BINS.values(), PAUSE_BIN, NODE_BIN / "containerd", NODE_BIN / "iptables"]
    for path in needed:
        if not path.exists():
            raise NodeToolsMissing(f"{path} is missing: run `make tools` (node-tools)")
    if os.geteuid() != 0:
        raise NodeToolsMissing("a node runs as root (containers, mounts, iptables)")


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _containerd_config(directory: Path, sandbox_image: str, registries: Path) -> Path:
    """containerd 1.6's configuration: everything in the node's folder, the CRI plugin with the
    node's sandbox image, runc, the CNI plugins and per-registry trust (hosts.toml)."""
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    text = f"""version = 2
root = "{directory}/root"
state = "{directory}/state"
disabled_plugins = [
  "io.containerd.internal.v1.opt",
  "io.containerd.internal.v1.tracing",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
]

[grpc]
  address = "{directory}/containerd.sock"

[ttrpc]
  address = "{directory}/containerd.sock.ttrpc"

[{cri}]
  sandbox_image = "{sandbox_image}"
  # This VM's bounding set lacks CAP_SYS_RESOURCE: a negative oom_score_adj is refused.
  restrict_oom_score_adj = true
  enable_selinux = false

[{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[{cri}.containerd.runtimes.runc.options]
  BinaryName = "{NODE_BIN / "runc"}"
  SystemdCgroup = false

[{cri}.cni]
  bin_dir = "{CNI_BIN}"
  conf_dir = "{directory.parent / "cni" / "net.d"}"

[{cri}.registry]
  config_path = "{registries}"
"""
    return _write(directory / "config.toml", text)


def _cni_config(directory: Path) -> None:
    conflist = {
        "cniVersion": "1.0.0",
        "name": "sbomgate-test",
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": True,
                "ipMasq": True,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_SUBNET}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(directory / "ipam"),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }
    _write(directory / "net.d" / "10-sbomgate.conflist", json.dumps(conflist, indent=2))


def trust_registry(node_directory: Path, host: str, ca_file: Path | None) -> None:
    """containerd's hosts.toml for a registry: over TLS with `ca_file`, else plain HTTP."""
    scheme = "https" if ca_file is not None else "http"
    lines = [f'server = "{scheme}://{host}"', "", f'[host."{scheme}://{host}"]']
    lines.append('  capabilities = ["pull", "resolve"]')
    if ca_file is not None:
        lines.append(f'  ca = "{ca_file}"')
    _write(node_directory / "registries" / host / "hosts.toml", "\n".join(lines) + "\n")


def _wait_for(what: str, check: Any, process: _Process | None, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and not process.alive():
            raise process.failure(f"exited while waiting for {what}")
        if check():
            return
        time.sleep(0.25)
    detail = f"; log {process.log_file}:\n{_tail(process.log_file)}" if process else ""
    raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}{detail}")


def _component_kubeconfig(cluster: KubeCluster, directory: Path, name: str, user: str,
                          group: str | None = None) -> Path:  # fmt: skip
    pki = directory / "pki"
    cert, key = cluster.ca.issue(pki, name, common_name=user, organization=group, client=True)
    path = directory / f"{name}.kubeconfig"
    _write_kubeconfig(path, cluster.server, cluster.ca_file, cert, key)
    return path


def start_kube_node(directory: Path, sandbox_image: str, registries: Path) -> KubeNode:
    """Start a control plane made for a node, then containerd and the node's components, and
    wait until the node is Ready. `sandbox_image` must be pullable by containerd (its registry
    trusted through `registries`, see `trust_registry`). The caller must `stop()` it."""
    _need_node_tools()
    for binary in NODE_BINS.values():
        _require(binary)
    ip = host_ip()
    state = HostState.record()
    cluster = start_kube_cluster(directory / "control-plane", node_ip=ip)
    node = KubeNode(cluster=cluster, ip=ip, directory=directory / "node", host_state=state)
    started = time.monotonic()
    try:
        _start_components(node, sandbox_image, registries)
    except BaseException:
        with contextlib.suppress(Exception):
            node.stop()
        cluster.stop()
        raise
    node.ready_seconds = time.monotonic() - started
    return node


def _start_components(node: KubeNode, sandbox_image: str, registries: Path) -> None:
    cluster, directory, env = node.cluster, node.directory, _node_env()
    directory.mkdir(parents=True, exist_ok=True)
    runtime = directory / "containerd"
    _cni_config(directory / "cni")
    config = _containerd_config(runtime, sandbox_image, registries)
    containerd = _spawn(
        "containerd", [str(NODE_BIN / "containerd"), "--config", str(config)],
        directory / "containerd.log", env,
    )  # fmt: skip
    node._processes.append(containerd)
    _wait_for(
        "containerd's socket",
        lambda: node.ctr("version").returncode == 0,
        containerd,
        30,
    )
    pki = cluster.directory / "pki"
    controller_kubeconfig = _component_kubeconfig(
        cluster, directory, "controller-manager", "system:kube-controller-manager"
    )
    node._processes.append(_spawn("kube-controller-manager", [
        str(NODE_BINS["kube-controller-manager"]),
        f"--kubeconfig={controller_kubeconfig}",
        f"--authentication-kubeconfig={controller_kubeconfig}",
        f"--authorization-kubeconfig={controller_kubeconfig}",
        f"--service-account-private-key-file={pki / 'sa.key'}",
        f"--root-ca-file={cluster.ca_file}",
        "--use-service-account-credentials=true",
        "--leader-elect=false",
        "--bind-address=127.0.0.1",
        f"--secure-port={free_port()}",
        "--v=1",
    ], directory / "kube-controller-manager.log", env))  # fmt: skip
    scheduler_kubeconfig = _component_kubeconfig(
        cluster, directory, "scheduler", "system:kube-scheduler"
    )
    node._processes.append(_spawn("kube-scheduler", [
        str(NODE_BINS["kube-scheduler"]),
        f"--kubeconfig={scheduler_kubeconfig}",
        f"--authentication-kubeconfig={scheduler_kubeconfig}",
        f"--authorization-kubeconfig={scheduler_kubeconfig}",
        "--leader-elect=false",
        "--bind-address=127.0.0.1",
        f"--secure-port={free_port()}",
        "--v=1",
    ], directory / "kube-scheduler.log", env))  # fmt: skip
    kubelet_kubeconfig = _component_kubeconfig(
        cluster, directory, "kubelet", f"system:node:{NODE_NAME}", "system:nodes"
    )
    kubelet_dir = directory / "kubelet"
    kubelet_config = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        # This VM's hierarchy is cgroup v1 and cannot be switched.
        "failCgroupV1": False,
        "cgroupDriver": "cgroupfs",
        "containerRuntimeEndpoint": f"unix://{node.containerd_socket}",
        "address": node.ip,  # the API server calls it there (logs, exec)
        "port": free_port(),
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": free_port(),
        "authentication": {"anonymous": {"enabled": True}, "webhook": {"enabled": False}},
        "authorization": {"mode": "AlwaysAllow"},
        "failSwapOn": False,
        "resolvConf": "/etc/resolv.conf",
        "clusterDomain": "cluster.local",
        # A test machine's disk may be fuller than a node's: never evict the test's Pods.
        "evictionHard": {
            "memory.available": "50Mi",
            "nodefs.available": "1%",
            "imagefs.available": "1%",
        },
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "serializeImagePulls": False,
        "syncFrequency": "10s",
        "fileCheckFrequency": "5s",
        "nodeStatusReportFrequency": "10s",
        "shutdownGracePeriod": "0s",
    }
    config_file = _write(directory / "kubelet.yaml", yaml.safe_dump(kubelet_config))
    kubelet = _spawn("kubelet", [
        str(NODE_BINS["kubelet"]),
        f"--config={config_file}",
        f"--kubeconfig={kubelet_kubeconfig}",
        f"--root-dir={kubelet_dir}",
        f"--cert-dir={directory / 'kubelet-pki'}",
        f"--hostname-override={NODE_NAME}",
        f"--node-ip={node.ip}",
        "--v=1",
    ], directory / "kubelet.log", env)  # fmt: skip
    node._processes.append(kubelet)
    proxy_kubeconfig = _component_kubeconfig(cluster, directory, "kube-proxy", "system:kube-proxy")
    proxy_config = {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "iptables",
        "clientConnection": {"kubeconfig": str(proxy_kubeconfig)},
        "hostnameOverride": NODE_NAME,
        "clusterCIDR": CLUSTER_CIDR,
        "healthzBindAddress": f"127.0.0.1:{free_port()}",
        "metricsBindAddress": f"127.0.0.1:{free_port()}",
        # Leave the host's conntrack table sizes alone, and 127.0.0.1 unrouted.
        "conntrack": {"maxPerCore": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
        "iptables": {"localhostNodePorts": False},
    }
    proxy_file = _write(directory / "kube-proxy.yaml", yaml.safe_dump(proxy_config))
    node._processes.append(_spawn("kube-proxy", [
        str(NODE_BINS["kube-proxy"]), f"--config={proxy_file}", "--v=1",
    ], directory / "kube-proxy.log", env))  # fmt: skip

    def ready() -> bool:
        done = cluster.kubectl("get", "node", NODE_NAME, "-o", "json")
        if done.returncode != 0:
            return False
        conditions = json.loads(done.stdout).get("status", {}).get("conditions", [])
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    _wait_for(f"node {NODE_NAME} Ready", ready, kubelet, READY_TIMEOUT)

    def default_account() -> bool:
        return cluster.kubectl("get", "serviceaccount", "default").returncode == 0

    _wait_for("the default ServiceAccount", default_account, None, 60)
    for process in node._processes:
        if not process.alive():
            raise process.failure("exited")


@contextlib.contextmanager
def running_node(directory: Path, sandbox_image: str, registries: Path) -> Iterator[KubeNode]:
    """A node for a test module; fails the module if it leaves anything behind on the host."""
    try:
        node = start_kube_node(directory, sandbox_image, registries)
    except NodeToolsMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield node
    finally:
        left = node.stop()
        node.cluster.stop()
        if left:
            pytest.fail("the node left this on the host:\n" + "\n".join(left), pytrace=False)
