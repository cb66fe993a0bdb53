"""What `stack up` and each job run set up on Kafka with the admin client: SCRAM users, topics, ACLs.

The rights themselves are declared in kappa/kafka_security.py; this module only applies them. Topics
are never auto-created (`auto.create.topics.enable=false`): the standard ones are created here at
`stack up`, a job's own outputs (a replay's `_v2`, a test's suffix) just before the job starts.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    NewTopic,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialAlteration,
    UserScramCredentialUpsertion,
)

from kappa import kafka_clients, kafka_security, waiting
from kappa.config import Config
from kappa.kafka_security import ADMIN, PRINCIPALS

if TYPE_CHECKING:
    from kappa.sqlfiles import SqlParams

_LOG = logging.getLogger("kappa.stack.kafka")
SCRAM_ITERATIONS = 8192


def _mechanism(config: Config) -> ScramMechanism:
    return ScramMechanism.SCRAM_SHA_512 if config.kafka.sasl_mechanism.upper().endswith("512") \
        else ScramMechanism.SCRAM_SHA_256


def upsert_users(config: Config) -> None:
    """Every principal's SCRAM credential from its secret (the admin's is bootstrapped at format)."""
    info = ScramCredentialInfo(_mechanism(config), SCRAM_ITERATIONS)
    upserts: list[UserScramCredentialAlteration] = [
        UserScramCredentialUpsertion(kafka_security.user(config, role), info,
                                     config.secret(kafka_security.password_env(config, role)).encode())
        for role in PRINCIPALS]
    admin = kafka_clients.admin(config, _LOG)
    for user, future in admin.alter_user_scram_credentials(upserts).items():
        try:
            future.result(30)
        except KafkaException as exc:
            raise KafkaException(f"SCRAM credential of {user}: {exc.args[0].str()}") from None


def ensure_topics(config: Config, topics: list[str], role: str = ADMIN) -> None:
    """Create the topics that do not exist yet (partitions and replication factor from the config), as
    `role` (the admin, unless an operator owns the ACLs and the run creates its outputs itself)."""
    admin = kafka_clients.admin(config, _LOG, role=role)
    present = admin.list_topics(timeout=10).topics
    missing = [t for t in dict.fromkeys(topics) if t not in present]
    if not missing:
        return
    # a cluster whose ACLs an operator owns is not the stack's: its brokers' default replication factor
    replication = -1 if config.kafka.acls == "operator" else config.kafka.replication_factor
    new = [NewTopic(t, config.kafka.partitions, replication) for t in missing]
    for topic, future in admin.create_topics(new).items():
        try:
            future.result(30)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise KafkaException(f"cannot create topic {topic}: {exc.args[0].str()}") from None


def recreate_topic(config: Config, topic: str) -> None:
    """The topic empty: deleted if it exists (waiting until the broker no longer lists it), then created
    as ensure_topics does. The demo and the benches start from one, so what they read is what they wrote."""
    from kappa.waiting import wait_until

    admin = kafka_clients.admin(config, _LOG)  # held: a collected client fails its pending futures
    if topic in admin.list_topics(timeout=10).topics:
        admin.delete_topics([topic])[topic].result(30)
        wait_until(lambda: topic not in admin.list_topics(timeout=10).topics, timeout_s=60,
                   what=f"topic {topic} deleted")
    # a deletion still in progress refuses the creation (TOPIC_ALREADY_EXISTS is not raised then)
    def created() -> bool:
        ensure_topics(config, [topic])
        return True

    wait_until(created, timeout_s=30, what=f"topic {topic} created", retry_on=(KafkaException,))


def grant(config: Config, role: str, params: SqlParams) -> None:
    """Create `role`'s ACLs for the names in `params` (creating an existing binding is a no-op)."""
    bindings = kafka_security.acl_bindings(config, role, params)
    admin = kafka_clients.admin(config, _LOG)
    for binding, future in admin.create_acls(bindings).items():
        try:
            future.result(30)
        except KafkaException as exc:
            raise KafkaException(f"ACL {binding}: {exc.args[0].str()}") from None
    if config.kafka.brokers > 1:
        _await_on_every_broker(config, bindings)


def _await_on_every_broker(config: Config, bindings: list[AclBinding], timeout_s: float = 30.0) -> None:
    """KRaft brokers apply ACL changes from the metadata log asynchronously: a client that writes at once
    can reach a broker that has not applied them yet and get TOPIC_AUTHORIZATION_FAILED. Wait until every
    live broker has described every new binding.

    librdkafka sends DescribeAcls to the "controller" of its latest metadata, which a KRaft broker picks at
    random among the live brokers (a client bootstrapped on one broker alone is no pin): each round reads
    the metadata, then asks the broker it names, until each broker has answered with all the bindings."""
    filters = [AclBindingFilter(b.restype, b.name, b.resource_pattern_type, b.principal, b.host, b.operation,
                                b.permission_type) for b in bindings]
    # no background metadata refresh: only this loop's requests set the controller the next request goes to
    admin = kafka_clients.admin(config, _LOG, **{"topic.metadata.refresh.interval.ms": -1})
    applied: set[int] = set()
    live: set[int] = set()

    def every_broker() -> bool:
        metadata = admin.list_topics(timeout=10)
        live.clear()
        live.update(metadata.brokers)
        if all(admin.describe_acls(f).result(10) for f in filters):
            applied.add(metadata.controller_id)
        return live <= applied

    waiting.wait_until(every_broker, timeout_s=timeout_s, interval_s=0.1, what="every broker to apply the new ACLs",
                       retry_on=(KafkaException,), on_timeout=lambda error: KafkaException(
                           f"brokers {sorted(live - applied)} did not apply "
                           f"the new ACLs within {timeout_s:.0f} s" + (f" ({error})" if error else "")))


def _key(binding: AclBinding) -> tuple[object, ...]:
    return (binding.restype, binding.name, binding.resource_pattern_type, binding.operation)


def revoke_version(config: Config, role: str, params: SqlParams) -> list[str]:
    """Delete the ACLs a run of `role` with `params` (a replay version's output_suffix) got for its own
    names only: its output topics, consumer group and transactional ids. The bindings the same run
    without the suffix would have (its input and reference topics, the cluster) are shared with the
    live job and stay. Returns a line per deleted binding."""
    if (role not in PRINCIPALS or not params.values.get("output_suffix") or not config.kafka.secure
            or config.kafka.acls == "operator"):  # the operator's ACLs: prefixed, they cover every version
        return []
    shared = {_key(b) for b in kafka_security.acl_bindings(config, role, params.with_values(output_suffix=""))}
    own = [b for b in kafka_security.acl_bindings(config, role, params) if _key(b) not in shared]
    if not own:
        return []
    filters = [AclBindingFilter(b.restype, b.name, b.resource_pattern_type, b.principal, b.host, b.operation,
                                b.permission_type) for b in own]
    gone = []
    admin = kafka_clients.admin(config, _LOG)  # held: a collected client fails its pending futures
    for _, future in admin.delete_acls(filters).items():
        try:
            deleted = future.result(30)
        except KafkaException as exc:
            raise KafkaException(f"deleting ACLs: {exc.args[0].str()}") from None
        gone += [f"acl {b.principal} {b.operation.name} {b.restype.name.lower()} {b.name}" for b in deleted]
    return gone


def creator(config: Config, role: str) -> str:
    """The principal that creates a run's topics: the admin, or, when an operator owns the ACLs (Strimzi's
    User Operator), the run's own principal, whose prefixed ACLs allow creating its outputs (a job's pods
    then hold no admin password)."""
    return role if config.kafka.acls == "operator" and role in PRINCIPALS else ADMIN


def prepare_run(config: Config, role: str, params: SqlParams) -> None:
    """Before a run of `role` with `params`: its topics exist and its principal may use them.

    With `kafka.acls = "operator"` the operator's ACLs are the principal's (a binding added here would be
    removed at its next reconciliation): only the run's own outputs are created, as itself; its inputs and
    reference topics are the operator's (KafkaTopic resources) too."""
    from kappa.reference_log import ensure_topic

    if config.kafka.acls == "operator" and role in PRINCIPALS:
        ensure_topics(config, kafka_security.output_topics(role, params), role=role)
        return
    plain, references = kafka_security.topics_to_create(role, params)
    if role not in kafka_security.JOB_ROLES:
        references = []  # only the jobs read reference topics; `kappa rules|devices` create them
    ensure_topics(config, plain)
    for topic in references:
        ensure_topic(config, topic)  # full retention: every reference version is kept
    if role != ADMIN and config.kafka.secure:
        grant(config, role, params)


def apply(config: Config) -> None:
    """At `stack up`: users, the standard topics and every principal's ACLs for the live names."""
    from kappa.sqlfiles import params_from_config

    if config.kafka.secure:
        upsert_users(config)
    base = params_from_config(config, include_secrets=False)
    for role in PRINCIPALS:
        prepare_run(config, role, base.with_values(job_name=role))
