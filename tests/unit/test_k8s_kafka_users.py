"""deploy/k8s's Kafka security against the code, offline: Strimzi's listener (TLS, SCRAM-SHA-512, ACLs on)
and each KafkaUser's ACLs against what kappa/kafka_security.py says its role needs, for a live run and for
replays (the User Operator owns the ACLs, so prefixed ones must cover every version in advance)."""

from __future__ import annotations

import copy

import pytest

from kappa.config import Config
from tests.unit.test_k8s_manifests import Manifest, _job_config, _of, load_manifests

pytestmark = pytest.mark.unit


@pytest.fixture
def manifests() -> list[Manifest]:
    return [doc for _, doc in load_manifests()]


def test_kafka_is_one_tls_listener_with_scram_logins_and_acls(manifests: list[Manifest]) -> None:
    """As the local stack: SASL_SSL with SCRAM-SHA-512, verified against the CA the pods mount, ACLs on."""
    config = _job_config(manifests, _of(manifests, "FlinkDeployment")[0])
    kafka = config.kafka
    (cluster,) = _of(manifests, "Kafka")
    (listener,) = cluster["spec"]["kafka"]["listeners"]  # no plain listener beside it
    assert listener["tls"] is True and listener["authentication"] == {"type": "scram-sha-512"}
    assert listener["port"] == kafka.port and listener["type"] == "internal"
    assert (kafka.security_protocol, kafka.sasl_mechanism) == ("SASL_SSL", "SCRAM-SHA-512")
    assert kafka.ca_file == "/etc/kappa/kafka-ca/ca.crt" and kafka.acls == "operator"
    assert cluster["spec"]["kafka"]["authorization"] == {"type": "simple", "superUsers": [kafka.user]}
    assert cluster["spec"]["entityOperator"]["userOperator"] == {}


def _user_acls(user: Manifest) -> list[tuple[str, str, str, str]]:
    """(resource type, name, pattern, operation) of each ACL operation a KafkaUser is given."""
    acls = []
    for acl in user["spec"].get("authorization", {}).get("acls", []):
        resource = acl["resource"]
        assert acl.get("type", "allow") == "allow" and acl.get("host", "*") == "*", acl
        for operation in acl.get("operations", [acl.get("operation")]):
            acls.append((resource["type"], resource.get("name", "kafka-cluster"),
                         resource.get("patternType", "literal"), operation))
    return acls


_TYPES = {"TOPIC": "topic", "GROUP": "group", "TRANSACTIONAL_ID": "transactionalId", "BROKER": "cluster"}


def _needed(config: Config, role: str, suffix: str) -> set[tuple[str, str, str, str]]:
    """What a run of `role` needs (kafka_security.acl_bindings), as (type, name, pattern, operation); plus,
    with an operator owning the ACLs, Create on the outputs the run makes itself (kafka_setup.prepare_run)."""
    from kappa import kafka_security, sqlfiles

    params = sqlfiles.params_from_config(config, include_secrets=False).with_values(job_name=role,
                                                                                      output_suffix=suffix)
    needed = {(_TYPES[b.restype.name], b.name, b.resource_pattern_type.name.lower().replace("prefixed", "prefix"),
               "".join(part.title() for part in b.operation.name.split("_")))
              for b in kafka_security.acl_bindings(config, role, params)}
    if role in kafka_security.JOB_ROLES:
        needed |= {("topic", topic, "literal", "Create") for topic in kafka_security.output_topics(role, params)}
    return needed


def _covers(acl: tuple[str, str, str, str], need: tuple[str, str, str, str]) -> bool:
    kind, name, pattern, operation = acl
    if (kind, operation) != (need[0], need[3]):
        return False
    if pattern == "prefix":
        return need[1].startswith(name)
    return need[2] == "literal" and need[1] == name


def test_each_kafka_user_has_exactly_what_its_role_needs_live_and_replayed(manifests: list[Manifest]) -> None:
    """Every ACL a live run or a replay (`_v2`, `_v17`) of the role needs is covered by the KafkaUser's; each
    of the user's ACLs is needed by one of those runs (no All, no Delete, no `*`)."""
    from kappa import kafka_security

    config = _job_config(manifests, _of(manifests, "FlinkDeployment")[0])
    users = {u["metadata"]["name"]: u for u in _of(manifests, "KafkaUser")}
    for user in users.values():
        assert user["spec"]["authentication"] == {"type": "scram-sha-512"}
        assert user["metadata"]["labels"]["strimzi.io/cluster"] == _of(manifests, "Kafka")[0]["metadata"]["name"]
    assert "authorization" not in users[kafka_security.user(config, kafka_security.ADMIN)]["spec"]  # a super user
    for role in ("bridge", *kafka_security.JOB_ROLES):
        name = kafka_security.user(config, role)
        if role == "smoke":  # the smoke job is not deployed
            assert name not in users
            continue
        acls = _user_acls(users[name])
        runs = [_needed(config, role, suffix) for suffix in ("", "_v2", "_v17")]
        for needed in runs:
            missing = [need for need in needed if not any(_covers(acl, need) for acl in acls)]
            assert missing == [], (name, missing)
        unused = [acl for acl in acls if not any(_covers(acl, need) for needed in runs for need in needed)]
        assert unused == [], (name, unused)


def test_a_kafka_user_missing_a_replay_right_is_caught(manifests: list[Manifest]) -> None:
    """The check above fails when an output's ACL is literal: a replay's `_v2` topic would be refused."""
    config = _job_config(manifests, _of(manifests, "FlinkDeployment")[0])
    user = copy.deepcopy(next(u for u in _of(manifests, "KafkaUser") if u["metadata"]["name"] == "kappa-alerts"))
    for acl in user["spec"]["authorization"]["acls"]:
        if acl["resource"].get("name") == "alerts":
            acl["resource"]["patternType"] = "literal"
    acls = _user_acls(user)
    missing = [need for need in _needed(config, "alerts", "_v2") if not any(_covers(acl, need) for acl in acls)]
    assert ("topic", "alerts_v2", "literal", "Write") in missing
