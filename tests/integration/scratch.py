"""Test support in one place: each run's own names, a fresh topic, fresh versioned outputs, and a job run
bounded over one topic into them. Integration tests share the session's stack, so every run writes to
names of its own and never to the live topics and tables (except where a test says why)."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping

from confluent_kafka.admin import NewTopic

from kappa import jobrunner, kafka_clients, outputs
from kappa.config import Config
from kappa.flinkenv import JobOptions
from kappa.stack.postgres import connect


@dataclasses.dataclass(frozen=True)
class Names:
    """One run's names: topic `telemetry-<name>-<tag>`, output suffix `_<name>_<tag>` (a fresh tag per `new`)."""

    name: str
    tag: str

    @classmethod
    def new(cls, name: str) -> Names:
        return cls(name, uuid.uuid4().hex[:6])

    @property
    def topic(self) -> str:
        return self.topic_of("telemetry")

    @property
    def suffix(self) -> str:
        return f"_{self.name.replace('-', '_')}_{self.tag}"

    def topic_of(self, kind: str) -> str:
        """Another topic of this run, e.g. its own empty `device-metadata-<name>-<tag>`."""
        return f"{kind}-{self.name}-{self.tag}"


def fresh_topic(config: Config, topic: str, partitions: int | None = None) -> str:
    """`topic`, created empty with the config's partitions (unless given) and replication factor: the broker
    does not create topics on first use."""
    admin = kafka_clients.admin(config)  # held until the answer: a collected client fails its pending futures
    new = NewTopic(topic, partitions or config.kafka.partitions, config.kafka.replication_factor)
    admin.create_topics([new])[topic].result(30)
    return topic


def versioned_outputs(config: Config, suffix: str, job: str = "aggregate") -> str:
    """`job`'s tables for output suffix `suffix`, created empty (its Kafka outputs are created by the run)."""
    with connect(config) as conn:
        outputs.create_versioned_tables(conn, suffix, job)
    return suffix


def run_bounded(config: Config, job: str, topic: str, suffix: str, *, lake: bool = False,
                extra: Mapping[str, str] | None = None) -> None:
    """`job` in a local MiniCluster over `topic` up to its end offsets at the start, into the outputs of
    `suffix`; returns when it has finished. `lake=False` leaves out the Iceberg inserts, whose commits at
    every checkpoint dominate a small run's time; `extra` are more SQL placeholders."""
    placeholders = {"telemetry_topic": topic, **(extra or {})}
    options = JobOptions(bounded=True, output_suffix=suffix, lake=lake, extra=placeholders)
    jobrunner.run_local(config, job, options, wait=True)
