#!/usr/bin/env bash
# One-time (idempotent) set-up of a fresh Debian 12 machine for kappa-iot, run by `make setup`
# (and so by `make demo` / `make test`): system packages, the Python venv, and the JVM jars from
# Maven Central. Each step is skipped when its result is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '\n==> %s\n' "$*"; }

# 1. System packages: Java for Flink and Kafka, Maven for the jars, PostgreSQL 15 for the stack.
need=()
command -v java >/dev/null || need+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || need+=(maven)
[ -x /usr/lib/postgresql/15/bin/postgres ] || need+=(postgresql-15)
command -v make >/dev/null || need+=(make)
command -v npm >/dev/null || need+=(nodejs npm)
command -v mosquitto >/dev/null && command -v mosquitto_pub >/dev/null || need+=(mosquitto mosquitto-clients)
for tool in prometheus prometheus-pushgateway prometheus-postgres-exporter; do
  command -v "$tool" >/dev/null || need+=("$tool")
done
if [ ${#need[@]} -gt 0 ]; then
  say "installing system packages: ${need[*]}"
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${need[@]}"
  # Debian's packages start a default PostgreSQL cluster on 5432 and a Mosquitto on 1883; the
  # project runs its own of each, so stop those.
  if [[ " ${need[*]} " == *" postgresql-15 "* ]] && command -v pg_ctlcluster >/dev/null; then
    $SUDO pg_ctlcluster 15 main stop 2>/dev/null || true
  fi
  # The same for Mosquitto (1883) and the Prometheus packages (9090, 9091, 9187).
  for unit in mosquitto prometheus prometheus-pushgateway prometheus-postgres-exporter; do
    if [[ " ${need[*]} " == *" $unit "* ]]; then
      $SUDO systemctl disable --now "$unit" 2>/dev/null || $SUDO service "$unit" stop 2>/dev/null || true
    fi
  done
else
  say "system packages present (java, mvn, postgresql-15)"
fi

# 2. Python venv with the project (editable) and its dev tools.
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
stamp=.venv/.installed-$(sha1sum pyproject.toml | cut -c1-12)
if [ ! -f "$stamp" ]; then
  say "creating the Python venv (.venv) and installing kappa-iot with apache-flink (a few minutes)"
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[dev]'
  rm -f .venv/.installed-* && touch "$stamp"
else
  say "Python venv up to date (.venv)"
fi

# 3. JVM jars from Maven Central: Flink connectors/formats, the Kafka broker, and Flink's S3 plugin and
#    ZooKeeper (these two only for flink.ha = "zookeeper", README).
for pom in flink flink-lib flink-plugins kafka zookeeper; do
  if [ ! -f ".kappa/jars/$pom/.resolved-$(sha1sum deploy/$pom/pom.xml | cut -c1-12)" ]; then
    say "resolving $pom jars from Maven Central (deploy/$pom/pom.xml)"
    mvn -q -B -f "deploy/$pom/pom.xml" dependency:copy-dependencies -Djars.dir="$PWD/.kappa/jars/$pom"
    rm -f .kappa/jars/$pom/.resolved-* && touch ".kappa/jars/$pom/.resolved-$(sha1sum deploy/$pom/pom.xml | cut -c1-12)"
  else
    say "$pom jars present (.kappa/jars/$pom)"
  fi
done
# 3b. The Kubernetes operators' CRD schemas, for the offline validation of deploy/k8s/
# (tests/unit/test_k8s_manifests.py): the Flink operator's API jar carries its CRDs; Strimzi's CRDs are
# generated from its api jar by its own crd-generator, with the arguments of Strimzi's build.
crd_stamp=".kappa/crds/.resolved-$(sha1sum deploy/k8s/crds/pom.xml | cut -c1-12)"
if [ ! -f "$crd_stamp" ]; then
  say "resolving the Flink operator's and Strimzi's CRDs (deploy/k8s/crds/pom.xml)"
  rm -rf .kappa/crds && mkdir -p .kappa/crds/strimzi
  mvn -q -B -f deploy/k8s/crds/pom.xml dependency:copy-dependencies -Djars.dir="$PWD/.kappa/crds/lib"
  strimzi_crds() {
    java -cp ".kappa/crds/lib/*" io.strimzi.crdgenerator.CrdGenerator --crd-api-version v1 \
      --storage-version v1beta2 --yaml "$@" 2> >(grep -v '^SLF4J' >&2)
  }
  strimzi_crds --api-versions v1beta2 \
    io.strimzi.api.kafka.model.kafka.Kafka=.kappa/crds/strimzi/kafka.yaml \
    io.strimzi.api.kafka.model.nodepool.KafkaNodePool=.kappa/crds/strimzi/kafkanodepool.yaml
  strimzi_crds --api-versions v1alpha1,v1beta1,v1beta2 \
    io.strimzi.api.kafka.model.topic.KafkaTopic=.kappa/crds/strimzi/kafkatopic.yaml \
    io.strimzi.api.kafka.model.user.KafkaUser=.kappa/crds/strimzi/kafkauser.yaml
  touch "$crd_stamp"
else
  say "Kubernetes CRD schemas present (.kappa/crds)"
fi
# 4. The project's own Java functions (udfs/java): built from source into .kappa/jars/flink.
udf_hash=$(cat udfs/java/pom.xml $(find udfs/java/src/main -type f | sort) schemas/avro/telemetry/*.avsc schemas/avro/telemetry/limits.json | sha1sum | cut -c1-12)
if [ ! -f ".kappa/jars/flink/.udfs-$udf_hash" ]; then
  say "building the Java UDFs (udfs/java/pom.xml)"
  mvn -q -B -f udfs/java/pom.xml clean package -DskipTests -Djars.dir="$PWD/.kappa/jars/flink"
  rm -f .kappa/jars/flink/.udfs-* && touch ".kappa/jars/flink/.udfs-$udf_hash"
else
  say "Java UDFs up to date"
fi

# 5. The TimescaleDB test harness (PostgreSQL + TimescaleDB in WebAssembly, from npm).
if [ ! -d tests/timescale/node_modules ]; then
  say "installing the TimescaleDB test harness (npm ci in tests/timescale)"
  npm ci --prefix tests/timescale --no-audit --no-fund --loglevel=error
fi
say "set-up complete"
