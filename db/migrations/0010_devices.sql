-- The device registry (`kappa devices ...`): which devices exist, where they are, and whether they may
-- connect. Mosquitto's password and ACL files are rendered from the active rows (credential_hash is the
-- broker's own `$7$` PBKDF2-SHA512 entry; the password itself is never stored). The MQTT bridge reads
-- the active ids to dead-letter readings of unknown or decommissioned devices as UNKNOWN_DEVICE.
CREATE TABLE IF NOT EXISTS devices (
  device_id TEXT PRIMARY KEY,
  site_id TEXT NOT NULL,
  device_type TEXT NOT NULL,
  model TEXT,
  firmware TEXT,
  location TEXT,
  installed_at TIMESTAMPTZ,
  status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'decommissioned')),
  credential_hash TEXT,
  created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS devices_site_idx ON devices (site_id);
CREATE INDEX IF NOT EXISTS devices_active_idx ON devices (device_id) WHERE status = 'active';
