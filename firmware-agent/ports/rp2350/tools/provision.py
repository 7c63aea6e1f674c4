#!/usr/bin/env python3
"""Build the identity image of one Pico 2 W running the RP2350 agent firmware.

The image holds what the device needs to reach and trust its server and to be trusted by it:
Wi-Fi credentials, the server's host and port, the pinned server CA, the device's certificate
and ECDSA P-256 private key, the fleet's provisioned root metadata envelope and the hardware
variant. The firmware reads it from the "identity" partition (partition_table.json) and never
writes it. Layout (identity.h): magic "FWAIDv1\\0", u32 record length, records (u8 tag, u8 0,
u16 length, value with a trailing NUL), u32 CRC-32 of everything before it; little-endian.

    provision.py --wifi-ssid lab --wifi-password-file psk.txt --server ota.example:8443 \\
        --hw-variant pico2_w --ca server-ca.pem --cert device.pem --key device.key \\
        --root root.json -o identity.bin
    picotool load -p 3 -t bin identity.bin      # the device in BOOTSEL mode

The output contains the device's private key: create it on the provisioning host, load it,
and delete it (docs/rp2350.md, "Provisioning").
"""
import argparse
import base64
import binascii
import json
import struct
import sys
import zlib

MAGIC = b"FWAIDv1\0"
MAX_RECORDS = 16384
PARTITION_SIZE = 32 * 1024
TAGS = {
    "wifi_ssid": 1,
    "wifi_password": 2,
    "server_host": 3,
    "server_port": 4,
    "hw_variant": 5,
    "server_ca": 6,
    "device_cert": 7,
    "device_key": 8,
    "root": 9,
}


def fail(msg):
    print(f"provision: {msg}", file=sys.stderr)
    sys.exit(1)


def read_text(path, what):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        fail(f"cannot read {what} {path}: {e.strerror}")
    if b"\0" in data:
        fail(f"{what} {path} contains a NUL byte")
    try:
        return data.decode("ascii")
    except UnicodeDecodeError:
        fail(f"{what} {path} is not ASCII text")


def pem_blocks(text, what, kinds):
    found = [line[11:-5] for line in text.splitlines() if line.startswith("-----BEGIN ") and line.endswith("-----")]
    if not found or any(k not in kinds for k in found):
        fail(f"{what} must be PEM of {' or '.join(kinds)} (found {', '.join(found) or 'nothing'})")
    return found


# DER of the prime256v1 (P-256) curve OID, present in both PKCS#8 and SEC1 EC private keys.
P256_OID = bytes.fromhex("06082a8648ce3d030107")


def pem_der(text, what):
    body = []
    inside = False
    for line in text.splitlines():
        if line.startswith("-----BEGIN "):
            inside = True
        elif line.startswith("-----END "):
            break
        elif inside and ":" not in line:
            body.append(line.strip())
    try:
        return base64.b64decode("".join(body), validate=True)
    except (binascii.Error, ValueError):
        fail(f"{what} is not valid PEM")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wifi-ssid", required=True)
    ap.add_argument("--wifi-password-file", help="file holding the WPA2 passphrase (omit for an open network)")
    ap.add_argument("--server", required=True, help="host:port of otad's device listener")
    ap.add_argument("--hw-variant", required=True, help="the hardware variant manifests must list")
    ap.add_argument("--ca", required=True, help="PEM CA certificate(s) the server certificate must chain to")
    ap.add_argument("--cert", required=True, help="PEM device certificate (clientAuth, CN = device id)")
    ap.add_argument("--key", required=True, help="PEM ECDSA P-256 private key of the device")
    ap.add_argument("--root", required=True, help="the provisioned root metadata envelope (JSON)")
    ap.add_argument("-o", "--output", required=True)
    a = ap.parse_args()

    host, sep, port = a.server.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        fail("--server must be host:port")
    if not 1 <= len(a.wifi_ssid) <= 32:
        fail("--wifi-ssid must be 1-32 characters")
    psk = ""
    if a.wifi_password_file:
        psk = read_text(a.wifi_password_file, "Wi-Fi passphrase").strip("\r\n")
        if not 8 <= len(psk) <= 63:
            fail("a WPA2 passphrase has 8 to 63 characters")
    if not (1 <= len(a.hw_variant) <= 32 and all(c.islower() or c.isdigit() or c in "._-" for c in a.hw_variant)):
        fail("--hw-variant must be 1-32 characters of [a-z0-9._-]")

    ca = read_text(a.ca, "CA")
    pem_blocks(ca, "--ca", ["CERTIFICATE"])
    cert = read_text(a.cert, "device certificate")
    pem_blocks(cert, "--cert", ["CERTIFICATE"])
    key = read_text(a.key, "device key")
    pem_blocks(key, "--key", ["PRIVATE KEY", "EC PRIVATE KEY"])
    if "ENCRYPTED" in key:
        fail("--key must not be encrypted: the device has no passphrase")
    if P256_OID not in pem_der(key, "--key"):
        fail("--key is not an ECDSA P-256 key")
    if P256_OID not in pem_der(cert, "--cert"):
        fail("--cert does not hold an ECDSA P-256 public key")
    root = read_text(a.root, "root metadata")
    try:
        env = json.loads(root)
    except ValueError as e:
        fail(f"--root is not JSON: {e}")
    if not isinstance(env, dict) or env.get("payloadType") != "application/vnd.ota.root+json":
        fail("--root is not a root metadata envelope (payloadType application/vnd.ota.root+json)")

    values = {
        "wifi_ssid": a.wifi_ssid,
        "wifi_password": psk,
        "server_host": host,
        "server_port": str(int(port)),
        "hw_variant": a.hw_variant,
        "server_ca": ca,
        "device_cert": cert,
        "device_key": key,
        "root": root.strip(),
    }
    records = b""
    for name, tag in TAGS.items():
        v = values[name].encode("ascii") + b"\0"
        if len(v) > 0xFFFF:
            fail(f"{name} is too long")
        records += struct.pack("<BBH", tag, 0, len(v)) + v
    if len(records) > MAX_RECORDS:
        fail(f"identity records are {len(records)} bytes, over {MAX_RECORDS}")
    image = MAGIC + struct.pack("<I", len(records)) + records
    image += struct.pack("<I", zlib.crc32(image) & 0xFFFFFFFF)
    # Pad to whole 4 KiB sectors with the erased value.
    image += b"\xff" * (-len(image) % 4096)
    if len(image) > PARTITION_SIZE:
        fail("identity image larger than the identity partition")
    with open(a.output, "wb") as f:
        f.write(image)
    print(f"provision: wrote {a.output} ({len(records)} bytes of records); load it with:")
    print(f"  picotool load -p 3 -t bin {a.output}")


if __name__ == "__main__":
    main()
