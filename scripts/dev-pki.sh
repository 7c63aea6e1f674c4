#!/usr/bin/env bash
# The development and test PKI of otad, ECDSA P-256 throughout, made with the openssl CLI.
#
#   dev-pki.sh DIR                     create DIR (if absent) with, unless already there:
#       device-ca.pem/.key             CA of device certificates
#       operator-ca.pem/.key           CA of operator certificates
#       server.pem/.key                otad's certificate: localhost, 127.0.0.1, ::1
#       device-0001..0003.pem/.key     device certificates (CN = device id, clientAuth)
#       admin, operator, auditor       operator certificates (CN = name, OU = role, clientAuth)
#       device-crl.pem                 the device CA's CRL (empty until something is revoked)
#   server.pem is issued by the device CA: devices and operators verify otad with device-ca.pem.
#   dev-pki.sh DIR device FILE [CN]            one more device certificate (CN defaults to FILE)
#   dev-pki.sh DIR operator FILE ROLE [CN]     one more operator certificate
#   dev-pki.sh DIR expired FILE [CN]           a device certificate that expired in 2020
#   dev-pki.sh DIR noclientauth FILE [CN]      a device certificate with serverAuth only
#   dev-pki.sh DIR noeku FILE [CN]             a device certificate with no extendedKeyUsage
#   dev-pki.sh DIR manyeku FILE [CN]           a device certificate with clientAuth among others
#   dev-pki.sh DIR otherca FILE [CN]           a client certificate from another CA (other-ca.pem)
#   dev-pki.sh DIR revoke FILE                 revoke FILE.pem and rewrite device-crl.pem
#   dev-pki.sh DIR renewal                     device-issuer.pem/.key (an intermediate of the
#                                              device CA that otad issues renewed device
#                                              certificates with) and time.key/.pub (otad's
#                                              time key)
#   dev-pki.sh DIR aged FILE [CN]              a device certificate valid 2020-2040 (over a
#                                              quarter of its lifetime gone: due for renewal)
#
# Idempotent: existing files are kept. Files are FILE.pem and FILE.key in DIR. Private keys are
# made here, for development and tests only; never use them anywhere else.
set -euo pipefail

die() { echo "dev-pki: $*" >&2; exit 1; }
[ $# -ge 1 ] || die "usage: dev-pki.sh DIR [device|operator|expired|noclientauth|noeku|manyeku|otherca|revoke ...]"
DIR=$1; shift
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
command -v openssl >/dev/null || die "openssl is not installed"

# One writer at a time per folder: tests may share one.
exec 9>"$DIR/.lock"
flock 9

genkey() { # FILE.key
	[ -f "$1" ] || (umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
		-out "$1" 2>/dev/null)
}

ca_init() { # NAME "CN"
	local name=$1 cn=$2 d="$DIR/.ca/$1"
	[ -f "$DIR/$name.pem" ] && [ -d "$d" ] && return 0
	mkdir -p "$d/newcerts"
	: >"$d/index.txt"
	echo 1000 >"$d/serial"
	echo 1000 >"$d/crlnumber"
	cat >"$d/openssl.cnf" <<CNF
[ ca ]
default_ca = ca_default
[ ca_default ]
dir = $d
database = \$dir/index.txt
new_certs_dir = \$dir/newcerts
serial = \$dir/serial
crlnumber = \$dir/crlnumber
default_md = sha256
default_days = 3650
default_crl_days = 3650
policy = policy_any
unique_subject = no
copy_extensions = none
[ policy_any ]
organizationName = optional
organizationalUnitName = optional
commonName = supplied
[ client ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ noclient ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ server ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost,IP:127.0.0.1,IP:::1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
CNF
	genkey "$DIR/$name.key"
	openssl req -x509 -new -key "$DIR/$name.key" -subj "/O=ota dev/CN=$cn" -days 3650 -sha256 \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" \
		-addext "subjectKeyIdentifier=hash" \
		-out "$DIR/$name.pem" 2>/dev/null
	openssl ca -batch -config "$d/openssl.cnf" -keyfile "$DIR/$name.key" -cert "$DIR/$name.pem" \
		-gencrl -out "$DIR/${name%-ca}-crl.pem" 2>/dev/null
}

issue() { # CA FILE SUBJECT EXT [startdate enddate]
	local ca=$1 file=$2 subj=$3 ext=$4 d="$DIR/.ca/$1"
	[ -f "$DIR/$file.pem" ] && return 0
	genkey "$DIR/$file.key"
	local dates=()
	[ $# -ge 6 ] && dates=(-startdate "$5" -enddate "$6")
	openssl req -new -key "$DIR/$file.key" -subj "$subj" -out "$DIR/$file.csr" 2>/dev/null
	openssl ca -batch -notext -config "$d/openssl.cnf" -keyfile "$DIR/$ca.key" \
		-cert "$DIR/$ca.pem" -extensions "$ext" "${dates[@]}" -in "$DIR/$file.csr" \
		-out "$DIR/$file.pem" 2>/dev/null || die "cannot issue $file"
	rm -f "$DIR/$file.csr"
}

check_name() {
	[[ $1 =~ ^[A-Za-z0-9._-]{1,64}$ ]] || die "invalid name \"$1\" (1-64 of A-Z a-z 0-9 . _ -)"
}

base() {
	ca_init device-ca "ota dev device CA"
	ca_init operator-ca "ota dev operator CA"
	issue device-ca server "/O=ota dev/CN=localhost" server
	for n in device-0001 device-0002 device-0003; do
		issue device-ca "$n" "/O=ota dev/CN=$n" client
	done
	for r in admin operator auditor; do
		issue operator-ca "$r" "/O=ota dev/OU=$r/CN=$r" client
	done
}

issue_eku() { # FILE CN EKU: a device certificate with that extendedKeyUsage ("" for none)
	local f="$DIR/.ca/device-ca/eku-$1.cnf"
	[ -f "$DIR/$1.pem" ] && return 0
	{
		echo "[ leaf ]"
		echo "basicConstraints = critical,CA:FALSE"
		echo "keyUsage = critical,digitalSignature"
		[ -n "$3" ] && echo "extendedKeyUsage = $3"
		echo "subjectKeyIdentifier = hash"
		echo "authorityKeyIdentifier = keyid"
	} >"$f"
	genkey "$DIR/$1.key"
	openssl req -new -key "$DIR/$1.key" -subj "/O=ota dev/CN=$2" -out "$DIR/$1.csr" 2>/dev/null
	openssl ca -batch -notext -config "$DIR/.ca/device-ca/openssl.cnf" \
		-keyfile "$DIR/device-ca.key" -cert "$DIR/device-ca.pem" -extfile "$f" \
		-extensions leaf -in "$DIR/$1.csr" -out "$DIR/$1.pem" 2>/dev/null ||
		die "cannot issue $1"
	rm -f "$DIR/$1.csr" "$f"
}

renewal() { # the issuing intermediate and the time key
	local f="$DIR/.ca/device-ca/intermediate.cnf"
	if [ ! -f "$DIR/device-issuer.pem" ]; then
		printf '%s\n' "[ intermediate ]" "basicConstraints = critical,CA:TRUE,pathlen:0" \
			"keyUsage = critical,keyCertSign,cRLSign" "subjectKeyIdentifier = hash" \
			"authorityKeyIdentifier = keyid" >"$f"
		genkey "$DIR/device-issuer.key"
		openssl req -new -key "$DIR/device-issuer.key" -subj "/O=ota dev/CN=ota dev device issuer" \
			-out "$DIR/device-issuer.csr" 2>/dev/null
		openssl ca -batch -notext -config "$DIR/.ca/device-ca/openssl.cnf" \
			-keyfile "$DIR/device-ca.key" -cert "$DIR/device-ca.pem" -extfile "$f" \
			-extensions intermediate -in "$DIR/device-issuer.csr" \
			-out "$DIR/device-issuer.pem" 2>/dev/null || die "cannot issue device-issuer"
		rm -f "$DIR/device-issuer.csr" "$f"
	fi
	genkey "$DIR/time.key"
	[ -f "$DIR/time.pub" ] || openssl pkey -in "$DIR/time.key" -pubout -out "$DIR/time.pub" 2>/dev/null
}

base
cmd=${1:-}
case "$cmd" in
"") ;;
device)
	[ $# -ge 2 ] || die "usage: dev-pki.sh DIR device FILE [CN]"
	check_name "$2"; cn=${3:-$2}; check_name "$cn"
	issue device-ca "$2" "/O=ota dev/CN=$cn" client ;;
operator)
	[ $# -ge 3 ] || die "usage: dev-pki.sh DIR operator FILE ROLE [CN]"
	check_name "$2"; cn=${4:-$2}; check_name "$cn"
	issue operator-ca "$2" "/O=ota dev/OU=$3/CN=$cn" client ;;
expired)
	[ $# -ge 2 ] || die "usage: dev-pki.sh DIR expired FILE [CN]"
	check_name "$2"; cn=${3:-$2}
	issue device-ca "$2" "/O=ota dev/CN=$cn" client 20200101000000Z 20200201000000Z ;;
noclientauth)
	[ $# -ge 2 ] || die "usage: dev-pki.sh DIR noclientauth FILE [CN]"
	check_name "$2"; cn=${3:-$2}
	issue device-ca "$2" "/O=ota dev/CN=$cn" noclient ;;
otherca)
	[ $# -ge 2 ] || die "usage: dev-pki.sh DIR otherca FILE [CN]"
	check_name "$2"; cn=${3:-$2}
	ca_init other-ca "ota dev other CA"
	issue other-ca "$2" "/O=ota dev/CN=$cn" client ;;
revoke)
	[ $# -ge 2 ] || die "usage: dev-pki.sh DIR revoke FILE"
	[ -f "$DIR/$2.pem" ] || die "no certificate $2.pem"
	d="$DIR/.ca/device-ca"
	# Revoking twice is refused by openssl ca; the CRL is rewritten either way.
	openssl ca -batch -config "$d/openssl.cnf" -keyfile "$DIR/device-ca.key" \
		-cert "$DIR/device-ca.pem" -revoke "$DIR/$2.pem" 2>/dev/null || true
	openssl ca -batch -config "$d/openssl.cnf" -keyfile "$DIR/device-ca.key" \
		-cert "$DIR/device-ca.pem" -gencrl -out "$DIR/device-crl.pem" 2>/dev/null ;;
noeku)
	[ $# -ge 2 ] || die "usage: dev-pki.sh DIR noeku FILE [CN]"
	check_name "$2"; cn=${3:-$2}; check_name "$cn"
	issue_eku "$2" "$cn" "" ;;
manyeku)
	[ $# -ge 2 ] || die "usage: dev-pki.sh DIR manyeku FILE [CN]"
	check_name "$2"; cn=${3:-$2}; check_name "$cn"
	issue_eku "$2" "$cn" "serverAuth,clientAuth,codeSigning" ;;
renewal) renewal ;;
aged)
	[ $# -ge 2 ] || die "usage: dev-pki.sh DIR aged FILE [CN]"
	check_name "$2"; cn=${3:-$2}; check_name "$cn"
	issue device-ca "$2" "/O=ota dev/CN=$cn" client 20200101000000Z 20400101000000Z ;;
*) die "unknown command \"$cmd\"" ;;
esac
