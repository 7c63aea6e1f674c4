-- 0070: device certificate renewal. A certificate otad issued on a device's request waits here
-- as pending until the device first connects with it; that connection pins it (devices.
-- fingerprint) and removes the row, so the old certificate works until then and never after.
CREATE TABLE device_cert_pending (
	device_id   TEXT PRIMARY KEY REFERENCES devices (id),
	fingerprint TEXT NOT NULL UNIQUE,          -- SHA-256 of the issued certificate's DER
	issued_at   INTEGER NOT NULL,              -- Unix seconds
	not_after   INTEGER NOT NULL
) STRICT;
