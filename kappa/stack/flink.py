"""A Flink standalone cluster (one JobManager, or two with HA; `flink.taskmanagers` TaskManagers) from the
apache-flink pip install.

The pip package carries the Flink distribution but no cluster layout, so we build one in the data
folder: a lib folder of links to `pyflink/lib` plus `flink-python` (the JobManager needs it for Python
operators), our own config rendered from `deploy/flink/config.yaml`, and log/PID folders. Each daemon
runs in the foreground under our PID tracking, so `down` stops exactly what `up` started.

TaskManager i (0-based) listens on the configured TaskManager ports + TM_PORT_STEP * i and has its own
log file, Flink log folder and temporary folder: several TaskManagers on one host, as on several hosts.
With flink.ha = "zookeeper" a standby JobManager runs beside the first (kappa/stack/flink_ha.py).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from pathlib import Path
from string import Template

import requests

from kappa.config import PROJECT_ROOT, Config
from kappa.jars import flink_lib_classpath, s3_plugin_jar
from kappa.registry import READ, ca_file, credentials
from kappa.stack import flink_ha
from kappa.stack.base import Service
from kappa.stack.process import ManagedProcess, ServiceError

TEMPLATE = PROJECT_ROOT / "deploy" / "flink" / "config.yaml"
# The variable names the Java decoder reads (fixed there, whatever registry.user_env/password_env say).
REGISTRY_USER_ENV = "KAPPA_REGISTRY_USER"
REGISTRY_PASSWORD_ENV = "KAPPA_REGISTRY_PASSWORD"
# ... and the CA it verifies the registry's certificate against: the config's own variable for registry.ca_file,
# so one setting serves the Python code and the decoder (a Kubernetes pod's ConfigMap names the mounted file)
REGISTRY_CA_FILE_ENV = "KAPPA_REGISTRY__CA_FILE"
# Set by the JVM for a local MiniCluster's Python workers (pyflink/fn_execution/beam/beam_boot.py)
LOOPBACK_ENV = "PYTHON_LOOPBACK_SERVER_ADDRESS"
# TaskManager i uses taskmanager_rpc_port/taskmanager_data_port + TM_PORT_STEP * i (and the metrics query
# ports after its data port): room for the 4 query ports between two TaskManagers' ports
TM_PORT_STEP = 10


# Beam's bundle factory logs the whole environment of each Python worker it closes (at INFO, and again
# in a WARN "Error cleaning up servers" at shutdown): the TaskManager's environment, which holds the
# registry password the Java decoder reads (docs/design.md). Found by the leak check of
# tests/integration/test_smoke_job.py after the alerting job ran on the cluster. A Python worker's
# failures still reach the job's exceptions (REST, `kappa status`), which do not carry that environment.
QUIET_LOGGERS = """
logger.beam_bundles.name = org.apache.beam.runners.fnexecution.control.DefaultJobBundleFactory
logger.beam_bundles.level = OFF
"""


def pyflink_home() -> Path:
    import pyflink

    return Path(pyflink.__file__).resolve().parent


def flink_env(config: Config) -> dict[str, str]:
    """Environment for Flink's scripts (`flink run`, daemons) pointing at the stack's layout."""
    base = config.data_dir / "flink"
    # Not PyFlink's loopback address: a local MiniCluster's Python worker copies its environment into the
    # process that ran it (Beam's loopback worker pool updates os.environ), so after one local run this
    # process holds the address. A daemon or `flink run` client inheriting it would run its Python
    # functions inside this process instead of its own workers, and copy its own environment into it (seen:
    # the TaskManager's read-role registry credential replaced a test session's admin one).
    env = {k: v for k, v in os.environ.items() if k != LOOPBACK_ENV}
    env.update(
        FLINK_HOME=str(pyflink_home()),
        FLINK_CONF_DIR=str(base / "conf"),
        FLINK_LIB_DIR=str(base / "lib"),
        FLINK_LOG_DIR=str(base / "log"),
        FLINK_PID_DIR=str(base / "run"),
        FLINK_PLUGINS_DIR=str(base / "plugins"),
        PYFLINK_CLIENT_EXECUTABLE=sys.executable,
        # Flink's scripts put HADOOP_CLASSPATH on every daemon's and the client's class path
        HADOOP_CLASSPATH=flink_lib_classpath(config),
    )
    # The Java decoder's registry credentials (udfs/java RegistrySchemaLookup): the read role (it only
    # fetches writer schemas by id), under the two names the decoder reads. In the daemons' environment,
    # readable only by their own user, never in argv, SQL text or job parameters. (A Python process in
    # this environment that asks for the registry's admin credential gets these: less, never more.)
    with contextlib.suppress(KeyError):  # no secrets yet (before the first `kappa stack up`)
        env[REGISTRY_USER_ENV], env[REGISTRY_PASSWORD_ENV] = credentials(config, READ)
    env[REGISTRY_CA_FILE_ENV] = ca_file(config)  # resolved: '' would mean the JVM's default trust store there
    return env


def daemon_env(config: Config) -> dict[str, str]:
    """The JobManagers' and TaskManagers' environment: flink_env plus, with flink.ha, the S3 keys of the HA
    storage and checkpoints, the same way. Not the `flink run` client's: it needs no S3, and it logs the
    environment of the Python process it starts (hiding *SECRET* and *PASSWORD* values, not the access key)."""
    return {**flink_env(config), **flink_ha.s3_environment(config)}


def prepare_layout(config: Config) -> Path:
    """Create lib/conf/log folders and render the config; returns the flink base folder."""
    home = pyflink_home()
    base = config.data_dir / "flink"
    lib = base / "lib"
    for folder in ("lib", "conf", "log", "run", "plugins", "checkpoints", "savepoints"):
        (base / folder).mkdir(parents=True, exist_ok=True)
    wanted = sorted(home.glob("lib/*.jar")) + sorted(home.glob("opt/flink-python-*.jar"))
    if not any(jar.name.startswith("flink-python") for jar in wanted):
        raise ServiceError(f"flink: flink-python jar not found in {home / 'opt'}; reinstall apache-flink")
    for stale in lib.iterdir():
        stale.unlink()
    for jar in wanted:
        (lib / jar.name).symlink_to(jar)
    reporter = base / "plugins" / "metrics-prometheus"  # the Pushgateway reporter (deploy/flink/config.yaml)
    if not reporter.exists():
        reporter.symlink_to(home / "plugins" / "metrics-prometheus")
    s3_plugin = base / "plugins" / "s3-fs-presto"  # s3:// for HA storage and checkpoints (flink_ha.py)
    shutil.rmtree(s3_plugin, ignore_errors=True)
    if flink_ha.enabled(config):
        s3_plugin.mkdir()
        jar = s3_plugin_jar(config)
        (s3_plugin / jar.name).symlink_to(jar.resolve())
    for name in ("log4j-console.properties", "log4j-cli.properties", "logback-console.xml"):
        shutil.copy(home / "conf" / name, base / "conf" / name)
    with (base / "conf" / "log4j-console.properties").open("a") as log_config:
        log_config.write(QUIET_LOGGERS)
    flink = config.flink
    rendered = Template(TEMPLATE.read_text()).substitute(
        host=flink.host,
        rpc_port=flink.rpc_port,
        rest_port=flink.rest_port,
        blob_port=flink.blob_port,
        taskmanager_rpc_port=flink.taskmanager_rpc_port,
        taskmanager_data_port=flink.taskmanager_data_port,
        query_ports=query_ports(flink.taskmanager_data_port),
        slots=flink.slots,
        parallelism=flink.parallelism,
        jobmanager_memory=flink.jobmanager_memory,
        taskmanager_memory=flink.taskmanager_memory,
        checkpoint_interval_ms=flink.checkpoint_interval_ms,
        checkpoint_dir=flink_ha.checkpoint_uri(config),
        restart_max_failures=config.job.restart_max_failures,
        restart_interval_s=config.job.restart_interval_s,
        restart_delay_s=config.job.restart_delay_s,
        data_dir=base,
        python=sys.executable,
        pushgateway_url=config.metrics.pushgateway_url,
        profile=config.profile,
        metrics_interval_s=config.metrics.scrape_interval_s,
    )
    (base / "conf" / "config.yaml").write_text(rendered + flink_ha.config_lines(config))
    return base


def reporter_settings(config: Config) -> dict[str, str]:
    """The Pushgateway reporter of deploy/flink/config.yaml as flat Flink options, for a local MiniCluster
    that should report like the cluster (bench/reporter_overhead.py); a unit test keeps the two equal."""
    prefix = "metrics.reporter.promgateway."
    return {
        "metrics.reporters": "promgateway",
        prefix + "factory.class": "org.apache.flink.metrics.prometheus.PrometheusPushGatewayReporterFactory",
        prefix + "hostUrl": config.metrics.pushgateway_url,
        prefix + "jobName": "kappa-flink",
        prefix + "randomJobNameSuffix": "true",
        prefix + "deleteOnShutdown": "true",
        prefix + "groupingKey": f"profile={config.profile}",
        prefix + "interval": f"{config.metrics.scrape_interval_s} SECONDS",
    }


def query_ports(data_port: int) -> str:
    """The metrics query service's port range of the TaskManager whose data port is `data_port`."""
    return f"{data_port + 1}-{data_port + 4}"


def taskmanager_ports(config: Config, index: int) -> tuple[int, int]:
    """(rpc port, data port) of TaskManager `index`: the configured ones shifted by TM_PORT_STEP * index."""
    flink = config.flink
    shift = TM_PORT_STEP * index
    return flink.taskmanager_rpc_port + shift, flink.taskmanager_data_port + shift


def taskmanager_settings(config: Config, index: int) -> list[str]:
    """The `-D` options that give TaskManager `index` its own ports and temporary folder (the rendered
    config.yaml holds TaskManager 0's ports; the others override them on their command line)."""
    rpc_port, data_port = taskmanager_ports(config, index)
    tmp = config.data_dir / "flink" / "tmp" / f"tm-{index}"
    tmp.mkdir(parents=True, exist_ok=True)
    return ["-D", f"taskmanager.rpc.port={rpc_port}", "-D", f"taskmanager.data.port={data_port}",
            "-D", f"metrics.internal.query-service.port={query_ports(data_port)}",
            "-D", f"io.tmp.dirs={tmp}"]


class FlinkService(Service):
    name = "flink"
    start_timeout_s = 120.0

    @property
    def host(self) -> str:
        return self.config.flink.host

    @property
    def ports(self) -> list[int]:
        flink = self.config.flink
        tm_ports = [port for i in range(flink.taskmanagers) for port in taskmanager_ports(self.config, i)]
        jm_ports = [port for i in range(1, flink_ha.jobmanager_count(self.config))
                    for port in flink_ha.jobmanager_ports(self.config, i)]
        return [flink.rest_port, flink.rpc_port, flink.blob_port, *jm_ports, *tm_ports]

    @property
    def enabled(self) -> bool:
        return self.config.flink.start

    @property
    def jobmanager(self) -> ManagedProcess:
        """JobManager 0: the only one, or the first of the two with flink.ha (not always the leader)."""
        return self.jobmanager_process(0)

    def jobmanager_process(self, index: int) -> ManagedProcess:
        """JobManager `index`: 0 keeps the single JobManager's names, the standby (1) is numbered."""
        if index == 0:
            return ManagedProcess("flink-jobmanager", self.config.data_dir / "run", self.log_file)
        name = f"flink-jobmanager-{index}"
        return ManagedProcess(name, self.config.data_dir / "run", self.config.data_dir / "logs" / f"{name}.log")

    def jobmanager_processes(self) -> list[ManagedProcess]:
        """Every JobManager that may run: the configured ones and any other with a PID file (a standby
        started while flink.ha was on), so `down` stops them all."""
        run = self.config.data_dir / "run"
        extra = {int(p.stem.rsplit("-", 1)[1]) for p in run.glob("flink-jobmanager-*.pid")
                 if p.stem.rsplit("-", 1)[1].isdigit()} if run.exists() else set()
        wanted = set(range(flink_ha.jobmanager_count(self.config))) | extra
        return [self.jobmanager_process(i) for i in sorted(wanted)]

    @property
    def taskmanager(self) -> ManagedProcess:
        """TaskManager 0 (the only one by default)."""
        return self.taskmanager_process(0)

    def taskmanager_process(self, index: int) -> ManagedProcess:
        """TaskManager `index`: 0 keeps the single-TaskManager names, the others are numbered."""
        name = "flink-taskmanager" if index == 0 else f"flink-taskmanager-{index}"
        return ManagedProcess(name, self.config.data_dir / "run", self.config.data_dir / "logs" / f"{name}.log")

    def taskmanager_processes(self) -> list[ManagedProcess]:
        """Every TaskManager that may run: the configured ones, and any other with a PID file (one a test
        or a bench added), so `down` stops them all."""
        run = self.config.data_dir / "run"
        extra = {int(p.stem.rsplit("-", 1)[1]) for p in run.glob("flink-taskmanager-*.pid")
                 if p.stem.rsplit("-", 1)[1].isdigit()} if run.exists() else set()
        return [self.taskmanager_process(i) for i in sorted(set(range(self.config.flink.taskmanagers)) | extra)]

    @property
    def process(self) -> ManagedProcess:
        return self.jobmanager

    def running(self) -> bool:
        return any(p.pid() is not None for p in [*self.jobmanager_processes(), *self.taskmanager_processes()])

    @property
    def launch_early(self) -> bool:
        """Its JVMs take the longest to start (27 s of a test stack's 60), and without HA nothing must be
        up first: the metrics reporter retries its pushes, and checkpoints reach S3 only once a job runs.
        With HA, the JobManagers need ZooKeeper and the S3 HA storage at start."""
        return not flink_ha.enabled(self.config)

    def _launch(self) -> None:
        prepare_layout(self.config)
        for index in range(flink_ha.jobmanager_count(self.config)):
            self.start_jobmanager(index)
        for index in range(self.config.flink.taskmanagers):
            self.start_taskmanager(index)

    def start_jobmanager(self, index: int = 0) -> None:
        """(Re)start JobManager `index` (1: the standby of flink.ha, on the ports + JM_PORT_STEP)."""
        process = self.jobmanager_process(index)
        if process.pid() is None:
            env = daemon_env(self.config)
            if index:
                env["FLINK_LOG_DIR"] = str(self.config.data_dir / "flink" / "log" / f"jm-{index}")
            process.start(["bash", str(pyflink_home() / "bin" / "jobmanager.sh"), "start-foreground",
                           *flink_ha.jobmanager_settings(self.config, index)], env=env)

    def start_taskmanager(self, index: int = 0) -> None:
        """(Re)start TaskManager `index`, e.g. after a fault-injection test killed it, or one more than
        configured (tests and the bench of parallel jobs add one to a running cluster)."""
        process = self.taskmanager_process(index)
        if process.pid() is None:
            bin_dir = pyflink_home() / "bin"
            env = daemon_env(self.config)
            env["FLINK_LOG_DIR"] = str(self.config.data_dir / "flink" / "log" / f"tm-{index}")
            process.start(["bash", str(bin_dir / "taskmanager.sh"), "start-foreground",
                           *taskmanager_settings(self.config, index)], env=env)

    def registered_taskmanagers(self) -> int:
        return int(self.overview().get("taskmanagers", 0))

    def overview(self) -> dict:
        response = requests.get(f"{self.config.flink.rest_url}/overview", timeout=3)
        response.raise_for_status()
        return dict(response.json())

    def ready(self) -> bool:
        """Every TaskManager registered and, with HA, every JobManager's REST answering (the standby's
        forwards to the leader), so the standby is there before anyone relies on it."""
        if self.registered_taskmanagers() < self.config.flink.taskmanagers:
            return False
        for index in range(1, flink_ha.jobmanager_count(self.config)):
            rest_port = flink_ha.jobmanager_ports(self.config, index)[0]
            requests.get(f"http://{self.host}:{rest_port}/overview", timeout=3).raise_for_status()
        return True

    def wait_ready(self) -> None:
        """With flink.ha, `stack up` on a running cluster first brings back a JobManager that died (the old
        leader returns as the standby), then waits for both as usual."""
        if flink_ha.enabled(self.config) and self.running():
            for index in range(flink_ha.jobmanager_count(self.config)):
                self.start_jobmanager(index)  # a running one is left alone
        super().wait_ready()

    def processes(self) -> list[ManagedProcess]:
        """TaskManagers first, so `stop` ends them before the JobManagers they report to."""
        return [*self.taskmanager_processes(), *self.jobmanager_processes()]

    def purge(self) -> None:
        shutil.rmtree(self.config.data_dir / "flink", ignore_errors=True)
