"""``radar kafka up|down|status``: a single-node Apache Kafka (KRaft) for this machine.

The broker's jars come from Maven Central through Maven, once, into ``.local/kafka-dist``; the
broker (combined broker + controller) runs with ``java`` on 127.0.0.1, its config, data, log and
pid file under ``.local/kafka/broker-<port>``. ``down`` stops only the process whose pid it wrote.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from streams.settings import Settings

KAFKA_VERSION = "4.1.1"
SCALA_VERSION = "2.13"
LOG4J_VERSION = "2.24.3"
SLF4J_VERSION = "2.0.17"
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 30.0

POM = f"""<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.account-radar</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>{KAFKA_VERSION}</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_{SCALA_VERSION}</artifactId>
      <version>{KAFKA_VERSION}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-core</artifactId>
      <version>{LOG4J_VERSION}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j2-impl</artifactId>
      <version>{LOG4J_VERSION}</version>
    </dependency>
    <dependency>
      <groupId>org.slf4j</groupId>
      <artifactId>slf4j-api</artifactId>
      <version>{SLF4J_VERSION}</version>
    </dependency>
  </dependencies>
</project>
"""

LOG4J2 = """status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = ${sys:radar.broker.log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.file.ref = FILE
logger.kafka.name = kafka.server.KafkaRaftServer
logger.kafka.level = INFO
"""


class LocalKafkaError(RuntimeError):
    """Something the user must fix before the local broker can run; the message says what."""


@dataclass(frozen=True)
class BrokerPaths:
    root: Path

    @property
    def config(self) -> Path:
        return self.root / "server.properties"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "broker.log"

    @property
    def pid(self) -> Path:
        return self.root / "broker.pid"

    @property
    def log4j(self) -> Path:
        return self.root / "log4j2.properties"


def dist_dir(settings: Settings) -> Path:
    return settings.local / "kafka-dist" / KAFKA_VERSION


def broker_paths(settings: Settings) -> BrokerPaths:
    return BrokerPaths(settings.local / "kafka" / f"broker-{settings.kafka_port}")


def _require(tool: str, hint: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise LocalKafkaError(f"`{tool}` was not found on PATH. {hint}")
    return path


def check_java() -> str:
    java = _require("java", "Install Java 17 or newer (e.g. `apt-get install openjdk-17-jre`).")
    out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    match = re.search(r'version "(\d+)', out.stderr + out.stdout)
    if match is None or int(match.group(1)) < 17:
        raise LocalKafkaError(
            f"Kafka {KAFKA_VERSION} needs Java 17 or newer; `java -version` says: "
            f"{(out.stderr or out.stdout).strip().splitlines()[0] if (out.stderr or out.stdout) else '?'}"
        )
    return java


def ensure_jars(settings: Settings, say: Callable[[str], None] = print) -> Path:
    """Download the broker and its dependencies once; later calls return the cached folder."""
    dist = dist_dir(settings)
    libs = dist / "libs"
    stamp = dist / ".complete"
    if stamp.exists():
        return libs
    mvn = _require("mvn", "Install Maven (e.g. `apt-get install maven`); it fetches Kafka's jars.")
    dist.mkdir(parents=True, exist_ok=True)
    (dist / "pom.xml").write_text(POM)
    say(f"fetching Apache Kafka {KAFKA_VERSION} from Maven Central (once) into {dist} ...")
    tmp = dist / "libs.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    cmd = [
        mvn, "-B", "-q", "-f", str(dist / "pom.xml"),
        "dependency:copy-dependencies", f"-DoutputDirectory={tmp}", "-DincludeScope=runtime",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise LocalKafkaError(f"Maven could not fetch Kafka {KAFKA_VERSION}:\n{tail}")
    shutil.rmtree(libs, ignore_errors=True)
    tmp.rename(libs)
    stamp.write_text(f"kafka {KAFKA_VERSION}\n")
    say(f"fetched {len(list(libs.glob('*.jar')))} jars")
    return libs


def _server_properties(settings: Settings, paths: BrokerPaths) -> str:
    port, cport = settings.kafka_port, settings.controller_port
    return "\n".join(
        [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@127.0.0.1:{cport}",
            f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
            "controller.listener.names=CONTROLLER",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name=PLAINTEXT",
            f"log.dirs={paths.data}",
            f"num.partitions={settings.topic_partitions}",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=6",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            "auto.create.topics.enable=false",
            "",
        ]
    )


def read_pid(paths: BrokerPaths) -> int | None:
    try:
        pid = int(paths.pid.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _is_our_broker(pid, paths) else None


def _is_our_broker(pid: int, paths: BrokerPaths) -> bool:
    """True only for a live process running *our* broker config (pids get reused)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True  # no /proc (not Linux): trust the pid file
    return str(paths.config).encode() in cmdline


def port_answers(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _log_tail(paths: BrokerPaths, lines: int = 20) -> str:
    try:
        return "\n".join(paths.log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no broker log)"


def _cluster_id() -> str:
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def up(settings: Settings, say: Callable[[str], None] = print) -> int:
    """Start the broker if it is not running, wait until it answers, create the topics.

    Returns the broker's pid.
    """
    paths = broker_paths(settings)
    pid = read_pid(paths)
    if pid is not None:
        say(f"Kafka is already running (pid {pid}) on 127.0.0.1:{settings.kafka_port}")
        create_topics(settings, say)
        return pid
    java = check_java()
    for port, what in ((settings.kafka_port, "broker"), (settings.controller_port, "controller")):
        if not _port_free(port):
            raise LocalKafkaError(
                f"port {port} (the {what} port) is taken by another process; stop it or choose "
                f"another with RADAR_KAFKA_PORT (the controller uses RADAR_KAFKA_CONTROLLER_PORT, "
                f"default broker port + 1)"
            )
    libs = ensure_jars(settings, say)
    paths.root.mkdir(parents=True, exist_ok=True)
    paths.config.write_text(_server_properties(settings, paths))
    paths.log4j.write_text(LOG4J2)
    classpath = f"{libs}/*"
    jvm = [java, f"-Xmx{settings.kafka_heap}", f"-Xms{settings.kafka_heap}",
           "-XX:+UseG1GC",
           f"-Dlog4j2.configurationFile={paths.log4j}", f"-Dradar.broker.log={paths.log}",
           "-cp", classpath]
    if not (paths.data / "meta.properties").exists():
        fmt = subprocess.run(
            # "=" form: a random id may start with "-", which would read as an option
            [*jvm, "kafka.tools.StorageTool", "format", f"--cluster-id={_cluster_id()}",
             "-c", str(paths.config), "--ignore-formatted"],
            capture_output=True, text=True, check=False,
        )
        if fmt.returncode != 0:
            raise LocalKafkaError(f"formatting KRaft storage failed:\n{fmt.stdout}{fmt.stderr}")
    with open(paths.root / "broker.out", "ab") as out:
        proc = subprocess.Popen(
            [*jvm, "kafka.Kafka", str(paths.config)],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,  # survives the shell that ran `radar kafka up`
        )
    paths.pid.write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + START_TIMEOUT_S
    while not port_answers(settings.kafka_port):
        if proc.poll() is not None:
            paths.pid.unlink(missing_ok=True)
            raise LocalKafkaError(
                f"the broker exited with code {proc.returncode} while starting; log tail:\n"
                f"{_log_tail(paths)}"
            )
        if time.monotonic() > deadline:
            stop_pid(proc.pid)
            paths.pid.unlink(missing_ok=True)
            raise LocalKafkaError(
                f"the broker did not answer within {START_TIMEOUT_S:.0f}s; log tail:\n{_log_tail(paths)}"
            )
        time.sleep(0.2)
    create_topics(settings, say, deadline=deadline)
    say(f"Kafka {KAFKA_VERSION} is up (pid {proc.pid}) on 127.0.0.1:{settings.kafka_port}")
    return proc.pid


def ensure_running(settings: Settings, say: Callable[[str], None] = print) -> bool:
    """Start the local broker unless one (ours or anyone's) answers on the port; create the
    topics either way. Returns True when this call started it (the caller may stop it)."""
    if read_pid(broker_paths(settings)) is None and not port_answers(settings.kafka_port):
        up(settings, say)
        return True
    say(f"using the Kafka broker already running on port {settings.kafka_port}")
    create_topics(settings, say)
    return False


def create_topics(
    settings: Settings, say: Callable[[str], None] = print, deadline: float | None = None
) -> list[str]:
    """Create the topics of SPEC sections 2 and 5 that do not exist yet. Returns those created."""
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import KafkaError, TopicAlreadyExistsError

    deadline = deadline or time.monotonic() + START_TIMEOUT_S
    bootstrap = f"127.0.0.1:{settings.kafka_port}"
    while True:
        try:
            admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="radar-admin",
                                     request_timeout_ms=10_000)
            break
        except KafkaError as exc:
            if time.monotonic() > deadline:
                raise LocalKafkaError(f"cannot reach the broker at {bootstrap}: {exc}") from exc
            time.sleep(0.5)
    try:
        topics = settings.topics
        existing = set(admin.list_topics())
        wanted = [t for t in topics.all() if t not in existing]
        created: list[str] = []
        for name in wanted:
            configs = {"cleanup.policy": "compact"} if topics.is_compacted(name) else {}
            try:
                admin.create_topics([NewTopic(name, settings.topic_partitions, 1,
                                              topic_configs=configs)])
                created.append(name)
            except TopicAlreadyExistsError:
                pass
        if created:
            say(f"created {len(created)} topics ({settings.topic_partitions} partitions each)")
        return created
    finally:
        admin.close()


def stop_pid(pid: int, timeout: float = STOP_TIMEOUT_S) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        # reap it if it is our child
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)


def down(settings: Settings, say: Callable[[str], None] = print) -> bool:
    paths = broker_paths(settings)
    pid = read_pid(paths)
    if pid is None:
        paths.pid.unlink(missing_ok=True)
        say(f"no Kafka started by radar is running on port {settings.kafka_port}")
        return False
    say(f"stopping Kafka (pid {pid}) ...")
    stop_pid(pid)
    paths.pid.unlink(missing_ok=True)
    say("Kafka stopped")
    return True


def status(settings: Settings, say: Callable[[str], None] = print) -> bool:
    paths = broker_paths(settings)
    pid = read_pid(paths)
    answering = port_answers(settings.kafka_port)
    if pid is None:
        extra = " (but something else answers on that port)" if answering else ""
        say(f"Kafka: not started by radar on port {settings.kafka_port}{extra}")
        return False
    say(f"Kafka {KAFKA_VERSION}: running, pid {pid}, 127.0.0.1:{settings.kafka_port}, "
        f"{'answering' if answering else 'NOT answering yet'}; data in {paths.data}")
    return answering

