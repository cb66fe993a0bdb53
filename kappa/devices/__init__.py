"""The device registry: who may connect to the MQTT broker, and under which topic each may publish."""
