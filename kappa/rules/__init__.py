"""Alert thresholds as versions in Kafka (`kappa rules`): each version of a rule key is valid from an
event time, so the alerting job applies to every reading the rule in force when it was taken."""
