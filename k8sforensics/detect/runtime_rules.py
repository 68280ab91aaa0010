"""Built-in rules over the runtime table: process executions (Tetragon, Tracee, Falco
fields) inside containers, plus Falco's own alerts mapped onto the Threat Matrix."""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

from ..context.networks import cluster_networks, external_mask
from .engine import (
    TACTIC_PHASES,
    Evidence,
    FlowRows,
    Rule,
    hits_from_rows,
    pod_entity,
    set_where,
    tactic_name,
)
from .facts import (
    SA_TOKEN_PATHS,
    SHELLS,
    STATIC_MANIFEST,
    STATIC_MANIFEST_WRITE,
    basename,
    command_lines,
    container_execs,
)

RUNTIME_PARENTS = frozenset(
    {"runc", "containerd-shim", "containerd-shim-runc-v2", "conmon", "crun", "docker-init", "containerd"}
)
APP_PARENTS = re.compile(
    r"^(?:java|node|nodejs|python[0-9.]*|php[0-9.]*|php-fpm[0-9.]*|ruby|nginx|httpd|apache2|uwsgi|gunicorn|tomcat.*|"
    r"dotnet|perl|postgres|mysqld|mongod|redis-server|catalina\.sh|puma|unicorn|beam\.smp)$"
)
MINERS = re.compile(
    r"(?:^|/)(?:xmrig|xmr-stak|minerd|cpuminer|ccminer|t-rex|nbminer|ethminer|lolminer|cgminer|bfgminer|kdevtmpfsi|kinsing)$"
)
MINER_ARGS = re.compile(r"stratum\+(?:tcp|ssl|tls)://|--donate-level|\bcryptonight\b|\brandomx\b|-a\s+rx/0")
NET_TOOLS = re.compile(
    r"(?:^|/)(?:nmap|masscan|zmap|nc|ncat|netcat|tcpdump|tshark|socat|hping3?|arp-scan|kdigger|amicontained|peirates)$"
)
REVERSE_SHELL = re.compile(
    r"/dev/tcp/|/dev/udp/|\bnc(?:at)?\b.*\s-e\s|\bmkfifo\b|\bbash\s+-i\b|socat\b.*\bexec:|\bpty\.spawn\b"
)
# container escapes (ATT&CK T1611): the host's PID 1 namespaces, the cgroup v1 release_agent
# (CVE-2022-0492; a cgroup hierarchy mounted inside the container, notify_on_release set),
# core_pattern, kernel modules, the host's disks mounted or debugged, a chroot into the host's root
HOST_ESCAPE = re.compile(
    r"\bnsenter\b.*(?:-t\s*1\b|--target[= ]1\b)|release_agent|notify_on_release|core_pattern|\b(?:insmod|modprobe)\s|"
    r"\bmount\s+/dev/|\bmount\b[^|;&]*\s-t\s*cgroup\b|\bdebugfs\b|\bchroot\s+/host\b"
)
# the cgroup v1 release_agent escape alone (a hierarchy mounted by hand, release_agent or notify_on_release written)
CGROUP_ESCAPE = re.compile(r"release_agent|notify_on_release|\bmount\b[^|;&]*\s-t\s*cgroup\b")
# the same, as a file a container wrote
HOST_ESCAPE_FILES = re.compile(r"/release_agent$|/notify_on_release$|/proc/sys/kernel/core_pattern$")
DOWNLOAD = re.compile(r"(?:^|/)(?:curl|wget|fetch|aria2c)$")
URL_HOST = re.compile(r"https?://([^/:\s\"']+)")
DEV_TCP_HOST = re.compile(r"/dev/(?:tcp|udp)/([0-9a-fA-F.:]+)/\d+")
IMDS = re.compile(
    r"169\.254\.169\.254|fd00:ec2::254|metadata\.google\.internal|/metadata/identity/oauth2/token|100\.100\.100\.200"
)
IMDS_CREDS = re.compile(r"security-credentials|/token|identity/oauth2|service-accounts/.*/token")
CRED_SEARCH = re.compile(
    r"\b(?:grep|egrep|rg|find|ag)\b.*(?:password|passwd|BEGIN .*PRIVATE|aws_secret|id_rsa|\.pem\b|secret_key)|"
    r"\.aws/credentials|azure\.json|\.kube/config|/etc/shadow|\.docker/config\.json",
    re.IGNORECASE,
)
CLEAR_LOGS = re.compile(
    r"\b(?:rm|shred|truncate|unlink)\b.*(?:/var/log/|\.bash_history|\.ash_history|\.zsh_history)|history\s+-c|>\s*/var/log/"
)
PACKAGE_INSTALL = re.compile(r"(?:^|/)(?:apt|apt-get|yum|dnf|apk|pip[0-9.]*|npm|gem|zypper)$")
# container runtime sockets: whoever talks to one runs containers on the node outside Kubernetes
# (KubeHound's EXPLOIT_CONTAINERD_SOCK; kubernetes.io/docs/setup/production-environment/container-runtimes/)
RUNTIME_SOCKETS = re.compile(
    r"/(?:var/)?run/(?:containerd/containerd|docker|crio/crio|cri-dockerd|podman/podman|k3s/containerd/containerd)\.sock\b"
)
RUNTIME_CLIENTS = re.compile(r"(?:^|/)(?:crictl|ctr|nerdctl|docker|podman)$")
# cron on the host (ATT&CK T1053.003): the system crontab, cron.d and the periodic folders, the spools
CRON_PATHS = re.compile(r"/etc/cron(?:tab\b|\.d/|\.(?:hourly|daily|weekly|monthly)/)|/var/spool/cron/")
CRON_WRITE = re.compile(
    r"(?:>|\b(?:cp|mv|tee|install|dd|ln|sed\s+-i)\b|\bcrontab\s+(?!-l))[^|;&]*(?:/etc/cron(?:tab\b|\.d/|\.(?:hourly|daily|weekly|monthly)/)|"
    r"/var/spool/cron/)|\bcrontab\s+(?:-u\s+\S+\s+)?[^-\s]\S*"
)
AUTHORIZED_KEYS = re.compile(r"authorized_keys")
KUBE_API = re.compile(r"kubernetes\.default|:6443\b|KUBERNETES_SERVICE_HOST|/api/v1/|/apis/")
KUBELET_ARGS = re.compile(r":1025[05]\b")
WRITABLE_DIRS = re.compile(r"^(?:/tmp/|/dev/shm/|/var/tmp/|/run/user/)")
CLUSTER_HOSTS = re.compile(
    r"^(?:localhost|127\.|\[::1\]|.*\.svc(?:\.cluster\.local)?$|.*\.cluster\.local$|.*\.internal$)"
)


def _pod_hits(rows: pd.DataFrame, summary: Any, *, gap: Any = None, **kw: Any) -> pd.DataFrame:
    if rows.empty:
        return pd.DataFrame()
    entity = pod_entity(rows["namespace"], rows["pod"])
    # no pod: the container, else the host it ran on
    other = ("container " + rows["container_id"].astype(str).str[:12]).where(
        rows["container_id"].notna(), "node " + rows["node"].astype(str)
    )
    entity = entity.where(entity.notna(), other.where(rows["container_id"].notna() | rows["node"].notna(), None))
    user = rows["service_account"] if "service_account" in rows.columns else None
    return hits_from_rows(
        rows,
        entity_type="pod",
        entity=entity,
        namespace=rows["namespace"],
        pod=rows["pod"],
        user=user,
        summary=summary,
        table="runtime",
        gap=gap,
        **kw,
    )


def _match(
    ev: Evidence, pattern: re.Pattern[str], summary: Any, *, process: re.Pattern[str] | None = None, gap: bool = True
) -> pd.DataFrame:
    x = container_execs(ev)
    m = x["command"].str.contains(pattern)
    if process is not None:
        m &= x["process"].fillna("").str.contains(process)
    return _pod_hits(x[m], summary, gap=ev.settings["session_gap"] if gap else None)


# connections from outside the cluster to a pod: who reached the application that spawned the shell
INBOUND_ROWS = FlowRows(
    "from outside to a pod",
    keep=lambda c: c.rows.loc[
        c.rows["dst_pod"].notna() & c.src_out, ["time", "event_id", "src_ip", "dst_namespace", "dst_pod"]
    ],
)


def shell_from_app(ev: Evidence) -> pd.DataFrame:
    """A shell or downloader whose parent is an application server: remote code execution.
    If the pod took inbound traffic from outside the cluster in the 15 minutes before, it is
    the internet-facing foothold (MS-TA9004); otherwise an in-cluster app exploit (MS-TA9009)."""
    x = container_execs(ev)
    proc, parent = basename(x["process"]), basename(x["parent_process"])
    rows = x[(proc.isin(SHELLS) | proc.isin({"curl", "wget"})) & parent.str.match(APP_PARENTS)]
    if rows.empty:
        return pd.DataFrame()
    inbound = ev.flow_rows(INBOUND_ROWS)
    attacker = []
    for _, row in rows.iterrows():
        near = (
            inbound[
                (inbound["dst_pod"] == row["pod"])
                & (inbound["dst_namespace"] == row["namespace"])
                & (inbound["time"] <= row["time"])
                & (inbound["time"] >= row["time"] - pd.Timedelta(minutes=15))
            ]
            if len(inbound)
            else inbound
        )
        attacker.append((near["src_ip"].iloc[-1], near["event_id"].iloc[-1]) if len(near) else (None, None))
    fetched = _fetched_from(ev, rows["command"])
    rows = rows.assign(attacker=[a for a, _ in attacker], inbound_event=[e for _, e in attacker], fetched=fetched)
    hits = _pod_hits(
        rows,
        lambda r: (
            f"{r.parent_process} spawned {r.command} in pod {r.entity}"
            + (f" right after inbound traffic from {r.attacker}" if r.attacker else "")
        ),
        source_ip=rows["attacker"],
        destination_ip=rows["fetched"],
        linked=rows["inbound_event"],
    )
    ext = hits["source_ip"].notna().to_numpy()
    set_where(hits, ~ext, technique_id="MS-TA9009", tactic="Execution")
    return set_where(hits, ext, severity="critical", source_table="runtime,flows")


def shell_from_runtime(ev: Evidence) -> pd.DataFrame:
    x = container_execs(ev)
    rows = x[basename(x["process"]).isin(SHELLS) & basename(x["parent_process"]).isin(RUNTIME_PARENTS)]
    return _pod_hits(
        rows,
        lambda r: (
            f"{'interactive ' if r.tty else ''}shell started in pod {r.entity} by the container runtime "
            f"(kubectl exec): {r.command}"
        ),
        gap=ev.settings["session_gap"],
    )


def token_read(ev: Evidence) -> pd.DataFrame:
    r = ev.runtime
    x = container_execs(ev)
    by_exec = x[x["command"].str.contains(SA_TOKEN_PATHS)]
    files = r[
        (r["event_type"] == "file")
        & r["file_path"].fillna("").str.contains(SA_TOKEN_PATHS)
        & basename(r["process"]).isin(
            SHELLS | {"cat", "curl", "wget", "head", "tail", "less", "more", "base64", "cp", "tar", "python", "python3"}
        )
    ]
    rows = pd.concat(
        [by_exec, files.assign(command=files["process"].fillna("") + " " + files["file_path"])], ignore_index=True
    )
    return _pod_hits(
        rows, lambda r: f"service-account token read in pod {r.entity}: {r.command}", gap=ev.settings["session_gap"]
    )


def _container_files(ev: Evidence, pattern: re.Pattern[str]) -> pd.DataFrame:
    """Events inside containers (not the host's own processes) other than executions that name a
    file ``pattern`` matches — file events, alerts that carry the file (Falco's ``fd.name``) or
    the command that wrote it (``proc.cmdline``) — with ``command`` = that command, else process
    and path."""
    r = ev.runtime
    cmd = r["cmdline"].fillna("") if "cmdline" in r.columns else pd.Series("", index=r.index)
    m = (
        (r["event_type"] != "exec")
        & (r["container_id"].notna() | r["pod"].notna())
        & (r["file_path"].fillna("").str.contains(pattern) | cmd.str.contains(pattern))
    )
    files = r[m]
    return files.assign(
        command=cmd[m].where(
            cmd[m] != "", files["process"].fillna("") + " " + files["file_path"].fillna("").astype(str)
        )
    )


def _host_execs(ev: Evidence) -> pd.DataFrame:
    """Process executions with no container or pod: the node's own, or a container's whose
    metadata the sensor lost (Tetragon's pod info is filled from its Kubernetes watcher and can
    be missing for a short-lived or just-started container)."""
    r = ev.runtime
    m = (r["event_type"] == "exec") & r["container_id"].isna() & r["pod"].isna() & r["node"].notna()
    return r[m].assign(command=command_lines)


def host_escape(ev: Evidence) -> pd.DataFrame:
    """Container escapes (``HOST_ESCAPE``) run in a container — an exec, or an alert naming the
    command (Falco's ``proc.cmdline``) or the file — and the cgroup v1 release_agent technique
    (CVE-2022-0492) seen with no container at all: no node's own software mounts a cgroup
    hierarchy by hand and writes its release_agent (systemd sets it itself, as PID 1), so that is
    an escape whose container the sensor did not name; reported about the node."""
    x = container_execs(ev)
    host = _host_execs(ev)
    host = host[host["command"].str.contains(CGROUP_ESCAPE) & ~basename(host["process"]).isin({"systemd", "init"})]
    rows = pd.concat(
        [
            x[x["command"].str.contains(HOST_ESCAPE)],
            _container_files(ev, HOST_ESCAPE_FILES),
            _container_files(ev, HOST_ESCAPE),
        ],
        ignore_index=True,
    ).drop_duplicates("event_id")
    hits = [
        _pod_hits(
            rows,
            lambda r: (
                f"container escape attempt in pod {r.entity}: {r.command}" + (f" (node {r.node})" if r.node else "")
            ),
            gap=ev.settings["session_gap"],
        ),
        hits_from_rows(
            host,
            entity_type="node",
            entity=host["node"],
            summary=lambda r: (
                f"container escape technique on node {r.entity} with no "
                f"container named (the sensor lost its metadata, or it ran on the host): {r.command}"
            ),
            table="runtime",
            gap=ev.settings["session_gap"],
        ),
    ]
    hits = [h for h in hits if len(h)]
    return (
        pd.concat(hits, ignore_index=True).sort_values("time", kind="stable").reset_index(drop=True)
        if hits
        else pd.DataFrame()
    )


def host_takeovers(ev: Evidence) -> pd.DataFrame:
    """Commands run in a pod that hand its node over (columns time, event_id, namespace, pod,
    node, command): an escape (``HOST_ESCAPE``), a static-pod manifest written, the container
    runtime's socket used, or a crontab written on the node (through a hostPath of its /etc or
    cron spool: the node's cron runs it as root) — from executions and from alerts naming the
    command. The graph's ``host_escape`` edges."""
    x = container_execs(ev)
    cmd = pd.concat(
        [
            x,
            _container_files(ev, HOST_ESCAPE),
            _container_files(ev, STATIC_MANIFEST_WRITE),
            _container_files(ev, RUNTIME_SOCKETS),
            _container_files(ev, CRON_PATHS),
        ],
        ignore_index=True,
    ).drop_duplicates("event_id")
    cmd = cmd[cmd["pod"].notna() & cmd["namespace"].notna() & cmd["node"].notna()]
    if cmd.empty:
        return cmd.assign(command=pd.Series(dtype=object))[["time", "event_id", "namespace", "pod", "node", "command"]]
    c = cmd["command"].fillna("")
    cron = c.str.contains(CRON_WRITE) | c.str.contains(CRON_PATHS)
    on_host = pd.Series(
        [
            bool(HOST_ROOT_CRON.search(str(k))) or _host_mount(ev, n, p, ("/etc/cron", "/var/spool/cron"))
            for k, n, p in zip(c, cmd["namespace"], cmd["pod"])
        ],
        index=cmd.index,
        dtype=bool,
    )
    m = (
        c.str.contains(HOST_ESCAPE)
        | c.str.contains(STATIC_MANIFEST_WRITE)
        | c.str.contains(RUNTIME_SOCKETS)
        | (cron & on_host)
    )
    return cmd[m][["time", "event_id", "namespace", "pod", "node", "command"]]


def runtime_socket(ev: Evidence) -> pd.DataFrame:
    """A container runtime's socket used from a container (a hostPath mount of it): containerd,
    Docker, CRI-O — a privileged container started next to Kubernetes, the node taken (T1611)."""
    x = container_execs(ev)
    m = x["command"].str.contains(RUNTIME_SOCKETS) | (
        basename(x["process"]).str.match(RUNTIME_CLIENTS) & x["container_id"].notna()
    )
    rows = pd.concat([x[m], _container_files(ev, RUNTIME_SOCKETS)], ignore_index=True)
    return _pod_hits(
        rows,
        lambda r: f"container runtime socket used from pod {r.entity}: {r.command}",
        gap=ev.settings["session_gap"],
    )


def _host_mount(ev: Evidence, namespace: Any, pod: Any, prefixes: tuple[str, ...]) -> bool:
    """The pod mounts one of ``prefixes`` (or a folder above it) from the host (``pods`` context)."""

    def lookup() -> dict[tuple[Any, Any], list[str]]:
        pods = ev.context("pods")
        return {
            (n, p): [str(h) for h in h_ if h]
            for n, p, h_ in zip(pods["namespace"], pods["name"], pods["host_paths"])
            if h_ is not None and not isinstance(h_, float)
        }

    paths = ev.memo("pods.host_paths", lookup).get((namespace, pod), [])
    return any(
        pre.startswith(h.rstrip("/") + "/") or h.rstrip("/").startswith(pre.rstrip("/")) or h == "/"
        for h in paths
        for pre in prefixes
    )


# a cron path under another root (``/host/etc/cron.d``): the node's, mounted into the container
HOST_ROOT_CRON = re.compile(r"/\w[^\s]*/etc/cron|/\w[^\s]*/var/spool/cron")


def host_cron(ev: Evidence) -> pd.DataFrame:
    """A crontab written from a container (ATT&CK T1053.003). Through a hostPath that holds the
    node's /etc or cron spool (``pods`` context), or at a path under another root (``/host/etc/cron.d``),
    it runs on the node: high; a container's own cron: medium."""
    x = container_execs(ev)
    rows = pd.concat([x[x["command"].str.contains(CRON_WRITE)], _container_files(ev, CRON_PATHS)], ignore_index=True)
    if rows.empty:
        return pd.DataFrame()
    hits = _pod_hits(
        rows, lambda r: f"crontab written from pod {r.entity}: {r.command}", gap=ev.settings["session_gap"]
    )
    host = [
        bool(HOST_ROOT_CRON.search(str(s))) or _host_mount(ev, n, p, ("/etc/cron", "/var/spool/cron"))
        for s, n, p in zip(hits["summary"], hits["namespace"], hits["pod"])
    ]
    return set_where(hits, host, severity="high", technique_id="MS-TA9013")


def _fetched_from(ev: Evidence, commands: pd.Series) -> pd.Series:
    """The outside address a command line fetches from (``http://<address>/…``), else None:
    where a payload came from, for the checklist to block."""
    host = commands.str.extract(URL_HOST, expand=False)
    host = host.fillna(commands.str.extract(DEV_TCP_HOST, expand=False))  # a reverse shell's /dev/tcp/<address>/<port>
    is_ip = host.fillna("").str.match(r"^[0-9.]+$|^[0-9a-f:]+$")
    return host.where(is_ip & external_mask(host.where(is_ip), cluster_networks(ev.context("nodes"))))


def download_tool(ev: Evidence) -> pd.DataFrame:
    x = container_execs(ev)
    host = x["command"].str.extract(URL_HOST, expand=False)
    # the downloader itself, or a shell running it (``sh -c "curl … | sh"``, as droppers do)
    via_shell = basename(x["process"]).isin(SHELLS) & x["command"].str.contains(r"\b(?:curl|wget)\b", regex=True)
    rows = x[(basename(x["process"]).str.match(DOWNLOAD) | via_shell) & host.notna()]
    if rows.empty:
        return pd.DataFrame()
    host = host[rows.index]
    nets = cluster_networks(ev.context("nodes"))
    is_ip = host.str.match(r"^[0-9.]+$|^[0-9a-f:]+$")
    outside = ~host.str.match(CLUSTER_HOSTS) & (~is_ip | external_mask(host.where(is_ip), nets))
    rows = rows[outside].assign(host=host[outside])
    return _pod_hits(
        rows, lambda r: f"{r.process} fetched {r.host} from pod {r.entity}: {r.command}", destination_ip=rows["host"]
    )


def reverse_shell(ev: Evidence) -> pd.DataFrame:
    return _match(ev, REVERSE_SHELL, lambda r: f"reverse shell in pod {r.entity}: {r.command}")


def miner(ev: Evidence) -> pd.DataFrame:
    x = container_execs(ev)
    rows = x[x["process"].fillna("").str.contains(MINERS) | x["command"].str.contains(MINER_ARGS)]
    return _pod_hits(rows, lambda r: f"cryptominer in pod {r.entity}: {r.command}", gap=ev.settings["session_gap"])


def network_tool(ev: Evidence) -> pd.DataFrame:
    x = container_execs(ev)
    rows = x[x["process"].fillna("").str.contains(NET_TOOLS) & ~x["command"].str.contains(REVERSE_SHELL)]
    return _pod_hits(
        rows,
        lambda r: f"network scanning or sniffing tool in pod {r.entity}: {r.command}",
        gap=ev.settings["session_gap"],
    )


def api_from_container(ev: Evidence) -> pd.DataFrame:
    x = container_execs(ev)
    rows = x[
        (basename(x["process"]) == "kubectl")
        | (basename(x["process"]).isin({"curl", "wget"}) & x["command"].str.contains(KUBE_API))
    ]
    return _pod_hits(
        rows, lambda r: f"Kubernetes API called from inside pod {r.entity}: {r.command}", gap=ev.settings["session_gap"]
    )


def kubelet_from_container(ev: Evidence) -> pd.DataFrame:
    return _match(ev, KUBELET_ARGS, lambda r: f"kubelet API called from inside pod {r.entity}: {r.command}")


def imds_from_container(ev: Evidence) -> pd.DataFrame:
    x = container_execs(ev)
    rows = x[x["command"].str.contains(IMDS) & ~x["command"].str.contains(IMDS_CREDS)]
    return _pod_hits(
        rows,
        lambda r: f"cloud metadata service queried from pod {r.entity}: {r.command}",
        gap=ev.settings["session_gap"],
    )


def imds_credentials(ev: Evidence) -> pd.DataFrame:
    x = container_execs(ev)
    rows = x[x["command"].str.contains(IMDS) & x["command"].str.contains(IMDS_CREDS)]
    return _pod_hits(
        rows,
        lambda r: f"cloud credentials fetched from the metadata service in pod {r.entity}: {r.command}",
        gap=ev.settings["session_gap"],
    )


def credential_search(ev: Evidence) -> pd.DataFrame:
    return _match(ev, CRED_SEARCH, lambda r: f"credential files searched or read in pod {r.entity}: {r.command}")


def clear_logs(ev: Evidence) -> pd.DataFrame:
    return _match(ev, CLEAR_LOGS, lambda r: f"logs or shell history cleared in pod {r.entity}: {r.command}")


def package_install(ev: Evidence) -> pd.DataFrame:
    x = container_execs(ev)
    rows = x[x["process"].fillna("").str.contains(PACKAGE_INSTALL) & x["command"].str.contains(r"\b(?:install|add)\b")]
    return _pod_hits(
        rows, lambda r: f"package installed at run time in pod {r.entity}: {r.command}", gap=ev.settings["session_gap"]
    )


def static_manifest(ev: Evidence) -> pd.DataFrame:
    """The kubelet's static-pod folder touched from a container (a hostPath of it): a manifest
    there runs as a pod no controller or admission sees (MS-TA9017). The kubelet's own reads are
    host processes and not matched."""
    x = container_execs(ev)
    rows = pd.concat(
        [x[x["command"].str.contains(STATIC_MANIFEST)], _container_files(ev, STATIC_MANIFEST)], ignore_index=True
    )
    return _pod_hits(rows, lambda r: f"kubelet static-pod manifest written from pod {r.entity}: {r.command}")


def ssh_keys(ev: Evidence) -> pd.DataFrame:
    return _match(ev, AUTHORIZED_KEYS, lambda r: f"SSH authorized_keys touched in pod {r.entity}: {r.command}")


def exec_from_writable_dir(ev: Evidence) -> pd.DataFrame:
    x = container_execs(ev)
    rows = x[x["process"].fillna("").str.match(WRITABLE_DIRS)]
    return _pod_hits(
        rows,
        lambda r: f"binary run from a writable directory in pod {r.entity}: {r.command}",
        gap=ev.settings["session_gap"],
    )


# Falco rule → (technique, ATT&CK, tactic, phase); other Falco rules keep the ATT&CK id of their tags
FALCO_MAP: dict[str, tuple[str | None, str, str, str]] = {
    "Terminal shell in container": ("MS-TA9006", "T1609", "Execution", "Exploitation"),
    "Run shell untrusted": ("MS-TA9007", "T1059.004", "Execution", "Exploitation"),
    "Read sensitive file untrusted": (None, "T1552.001", "Credential Access", "Actions on Objectives"),
    "Read sensitive file trusted after startup": (None, "T1552.001", "Credential Access", "Actions on Objectives"),
    "Launch Privileged Container": ("MS-TA9018", "T1611", "Privilege Escalation", "Exploitation"),
    "Contact cloud metadata service from container": ("MS-TA9033", "T1552.005", "Discovery", "Actions on Objectives"),
    "Contact K8S API Server From Container": ("MS-TA9029", "T1613", "Discovery", "Actions on Objectives"),
    "Detect crypto miners using the Stratum protocol": ("MS-TA9039", "T1496", "Impact", "Actions on Objectives"),
    "Detect outbound connections to common miner pool ports": ("MS-TA9039", "T1496", "Impact", "Actions on Objectives"),
    "Packet socket created in container": ("MS-TA9036", "T1557", "Lateral Movement", "Actions on Objectives"),
    "Clear Log Activities": ("MS-TA9021", "T1070", "Defense Evasion", "Installation"),
    "Redirect STDOUT/STDIN to Network Connection in Container": (
        "MS-TA9007",
        "T1059",
        "Execution",
        "Command & Control",
    ),
    "Netcat Remote Code Execution in Container": ("MS-TA9007", "T1059", "Execution", "Command & Control"),
    "Launch Suspicious Network Tool in Container": ("MS-TA9031", "T1046", "Discovery", "Actions on Objectives"),
    "Drop and execute new binary in container": ("MS-TA9007", "T1105", "Execution", "Installation"),
    "Detect release_agent File Container Escapes": ("MS-TA9018", "T1611", "Privilege Escalation", "Exploitation"),
    "Linux Kernel Module Injection Detected": ("MS-TA9018", "T1611", "Privilege Escalation", "Exploitation"),
    "Mount Launched in Privileged Container": ("MS-TA9018", "T1611", "Privilege Escalation", "Exploitation"),
    "Search Private Keys or Passwords": ("MS-TA9026", "T1552.001", "Credential Access", "Actions on Objectives"),
    "Exfiltrating Artifacts via Kubernetes Control Plane": (
        "MS-TA9041",
        "T1005",
        "Collection",
        "Actions on Objectives",
    ),
    "Launch Ingress Remote File Copy Tools in Container": ("MS-TA9007", "T1105", "Execution", "Delivery"),
    "Adding ssh keys to authorized_keys": (None, "T1098.004", "Persistence", "Installation"),
    "Write below etc": (None, "T1098", "Persistence", "Installation"),
}
FALCO_SEVERITY = {
    "emergency": "critical",
    "alert": "critical",
    "critical": "critical",
    "error": "high",
    "warning": "high",
    "notice": "medium",
    "informational": "low",
    "info": "low",
    "debug": "low",
}


def falco_alerts(ev: Evidence) -> pd.DataFrame:
    """Every Falco alert as a finding, mapped onto the Threat Matrix where its rule is known."""
    r = ev.runtime
    rows = r[(r["source"] == "falco") & r["rule"].notna()]
    if rows.empty:
        return pd.DataFrame()
    hits = _pod_hits(
        rows,
        lambda r: f"Falco: {r.rule} in {r.entity}: {r.output or r.cmdline}",
        destination_ip=_fetched_from(ev, rows["cmdline"].fillna("")),
    )
    first = rows.set_index("event_id").loc[[i[0] for i in hits["event_ids"]]]
    mapped = []
    for rule, tags, path, prio in zip(
        first["rule"], first["tags"], first["file_path"].fillna(""), first["priority"].fillna("")
    ):
        tags = list(tags) if tags is not None else []
        m = FALCO_MAP.get(rule)
        if m is None:
            attack = next((t for t in tags if re.fullmatch(r"T\d{4}(?:\.\d{3})?", str(t))), "")
            tactic = next((n for n in map(tactic_name, map(str, tags)) if n), "Execution")
            m = (None, attack, tactic, TACTIC_PHASES[tactic])
        if SA_TOKEN_PATHS.search(path):
            m = ("MS-TA9016", "T1528", "Credential Access", "Actions on Objectives")
        mapped.append((*m, FALCO_SEVERITY.get(str(prio).lower(), "medium"), f"falco:{rule}"))
    hits[["technique_id", "attack_id", "tactic", "kill_chain_phase", "severity", "rule_source"]] = pd.DataFrame(
        mapped, index=hits.index
    )
    return hits


RUNTIME_RULES = [
    Rule(
        id="rt-shell-from-app",
        title="Shell spawned by an application (remote code execution)",
        severity="high",
        technique_id="MS-TA9004",
        attack_id="T1190",
        tactic="Initial Access",
        kill_chain_phase="Exploitation",
        table="runtime",
        logic=shell_from_app,
        reads="reduced",
        row_local=True,
        flow_rows=(INBOUND_ROWS,),
        description="A web, database or JVM process starts a shell or downloader; joined with inbound flows.",
    ),
    Rule(
        id="rt-shell-from-runtime",
        title="Shell started in a container by the runtime (exec)",
        severity="medium",
        technique_id="MS-TA9006",
        attack_id="T1609",
        tactic="Execution",
        kill_chain_phase="Exploitation",
        table="runtime",
        logic=shell_from_runtime,
        reads="reduced",
        row_local=True,
    ),
    Rule(
        id="rt-sa-token-read",
        title="Service-account token read inside a container",
        severity="high",
        technique_id="MS-TA9016",
        attack_id="T1528",
        tactic="Credential Access",
        kill_chain_phase="Actions on Objectives",
        table="runtime",
        logic=token_read,
        reads="reduced",
        row_local=True,
    ),
    Rule(
        id="rt-host-escape",
        title="Container escape: nsenter, release_agent, core_pattern, module load, device mount",
        severity="critical",
        technique_id="MS-TA9018",
        attack_id="T1611",
        tactic="Privilege Escalation",
        kill_chain_phase="Exploitation",
        table="runtime",
        logic=host_escape,
        reads="reduced",
    ),
    Rule(
        id="rt-download",
        title="Download from outside the cluster with curl or wget",
        severity="medium",
        technique_id="MS-TA9007",
        attack_id="T1105",
        tactic="Execution",
        kill_chain_phase="Delivery",
        table="runtime",
        logic=download_tool,
        reads="reduced",
        row_local=True,
    ),
    Rule(
        id="rt-reverse-shell",
        title="Reverse shell",
        severity="critical",
        technique_id="MS-TA9007",
        attack_id="T1059",
        tactic="Execution",
        kill_chain_phase="Command & Control",
        table="runtime",
        logic=reverse_shell,
        reads="reduced",
        row_local=True,
    ),
    Rule(
        id="rt-miner",
        title="Cryptominer running",
        severity="high",
        technique_id="MS-TA9039",
        attack_id="T1496",
        tactic="Impact",
        kill_chain_phase="Actions on Objectives",
        table="runtime",
        logic=miner,
        reads="reduced",
        row_local=True,
    ),
    Rule(
        id="rt-network-tool",
        title="Network scanning or sniffing tool",
        severity="medium",
        technique_id="MS-TA9031",
        attack_id="T1046",
        tactic="Discovery",
        kill_chain_phase="Actions on Objectives",
        table="runtime",
        logic=network_tool,
        reads="reduced",
        row_local=True,
    ),
    Rule(
        id="rt-api-from-container",
        title="Kubernetes API called from a container shell",
        severity="medium",
        technique_id="MS-TA9029",
        attack_id="T1613",
        tactic="Discovery",
        kill_chain_phase="Actions on Objectives",
        table="runtime",
        logic=api_from_container,
        reads="reduced",
        row_local=True,
    ),
    Rule(
        id="rt-kubelet-from-container",
        title="Kubelet API called from a container",
        severity="high",
        technique_id="MS-TA9030",
        attack_id="T1613",
        tactic="Discovery",
        kill_chain_phase="Actions on Objectives",
        table="runtime",
        logic=kubelet_from_container,
        reads="reduced",
        row_local=True,
    ),
    Rule(
        id="rt-imds",
        title="Cloud metadata service queried from a container",
        severity="medium",
        technique_id="MS-TA9033",
        attack_id="T1552.005",
        tactic="Discovery",
        kill_chain_phase="Actions on Objectives",
        table="runtime",
        logic=imds_from_container,
        reads="reduced",
        row_local=True,
    ),
    Rule(
        id="rt-imds-credentials",
        title="Cloud credentials fetched from the metadata service",
        severity="high",
        technique_id="MS-TA9028",
        attack_id="T1552.005",
        tactic="Credential Access",
        kill_chain_phase="Actions on Objectives",
        table="runtime",
        logic=imds_credentials,
        reads="reduced",
        row_local=True,
    ),
    Rule(
        id="rt-credential-search",
        title="Credential files searched or read",
        severity="medium",
        technique_id="MS-TA9026",
        attack_id="T1552.001",
        tactic="Credential Access",
        kill_chain_phase="Actions on Objectives",
        table="runtime",
        logic=credential_search,
        reads="reduced",
        row_local=True,
    ),
    Rule(
        id="rt-clear-logs",
        title="Logs or shell history cleared",
        severity="medium",
        technique_id="MS-TA9021",
        attack_id="T1070",
        tactic="Defense Evasion",
        kill_chain_phase="Installation",
        table="runtime",
        logic=clear_logs,
        reads="reduced",
        row_local=True,
    ),
    Rule(
        id="rt-package-install",
        title="Package installed in a running container",
        severity="low",
        technique_id="MS-TA9007",
        attack_id="T1059",
        tactic="Execution",
        kill_chain_phase="Installation",
        table="runtime",
        logic=package_install,
        reads="reduced",
        row_local=True,
    ),
    Rule(
        id="rt-static-pod-manifest",
        title="Kubelet static-pod manifest written",
        severity="critical",
        technique_id="MS-TA9017",
        attack_id="T1543",
        tactic="Persistence",
        kill_chain_phase="Installation",
        table="runtime",
        logic=static_manifest,
        reads="reduced",
        row_local=True,
    ),
    Rule(
        id="rt-runtime-socket",
        title="Container runtime socket used from a container",
        severity="critical",
        technique_id="MS-TA9013",
        attack_id="T1611",
        tactic="Privilege Escalation",
        kill_chain_phase="Exploitation",
        table="runtime",
        logic=runtime_socket,
        reads="reduced",
    ),
    Rule(
        id="rt-host-cron",
        title="Crontab written from a container",
        severity="medium",
        technique_id=None,
        attack_id="T1053.003",
        tactic="Persistence",
        kill_chain_phase="Installation",
        table="runtime",
        logic=host_cron,
        reads="reduced",
    ),
    Rule(
        id="rt-ssh-keys",
        title="SSH authorized_keys touched",
        severity="high",
        technique_id=None,
        attack_id="T1098.004",
        tactic="Persistence",
        kill_chain_phase="Installation",
        table="runtime",
        logic=ssh_keys,
        reads="reduced",
        row_local=True,
    ),
    Rule(
        id="rt-exec-from-writable-dir",
        title="Binary run from a writable directory (drift)",
        severity="medium",
        technique_id=None,
        attack_id="T1105",
        tactic="Execution",
        kill_chain_phase="Installation",
        table="runtime",
        logic=exec_from_writable_dir,
        reads="reduced",
        row_local=True,
    ),
    Rule(
        id="rt-falco-alert",
        title="Falco alert",
        severity="medium",
        technique_id=None,
        attack_id="",
        tactic="Execution",
        kill_chain_phase="Exploitation",
        table="runtime",
        logic=falco_alerts,
        reads="reduced",
        row_local=True,
        description="Each Falco alert, mapped by rule name (FALCO_MAP) or by its mitre tags.",
    ),
]
