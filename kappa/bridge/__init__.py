"""`kappa bridge`: MQTT (Mosquitto, TLS, per-device identity) -> Kafka, losing nothing.

Modules: `payload` (the device payload contract and its rejection reasons), `codec` (registry-bound
Avro serialization), `deadletters` (rejected payloads as DeadLetter records), `acks` (in-order
acknowledgement), `devices` (which devices may send), `runtime` (the run loop), `status` (health
file), `main` (process entry: logging, signals).
"""
