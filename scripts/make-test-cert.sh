#!/usr/bin/env bash
# Test certificates for Tidegate's TLS, HTTP/2 and gRPC tests (and the README's TLS quick start).
#
#   scripts/make-test-cert.sh DIR [--expired] [--client NAME] [--mismatched NAME] NAME...
#
# Makes a test CA once (DIR/ca.pem, DIR/ca.key), then, signed by it, for each
#   NAME               a server certificate: DIR/NAME.pem (leaf + CA chain), DIR/NAME.key
#   --expired          (a flag) also, for each NAME, DIR/NAME.expired.pem/.key, whose notAfter
#                      is in the past (valid from 30 days ago to yesterday)
#   --client NAME      a client certificate (clientAuth EKU, CN=NAME) for mTLS:
#                      DIR/NAME.client.pem/.key
#   --mismatched NAME  a valid server certificate whose key file holds a different key:
#                      DIR/NAME.mismatched.pem/.key
# The SAN is the name itself (DNS:, or IP: for an address); '*.example.com' is allowed and is
# written as wildcard.example.com.pem. Keys are EC P-256, unencrypted. Files that already exist
# and still verify against DIR/ca.pem are kept, so running it again changes nothing.
#
# Quick start: scripts/make-test-cert.sh /tmp/tidegate-tls localhost
#              curl --cacert /tmp/tidegate-tls/ca.pem https://localhost:8443/
set -euo pipefail

usage() { sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
(($# >= 2)) || usage
dir=$1; shift
expired=0; servers=(); clients=(); mismatched=()
while (($#)); do
  case $1 in
    --expired) expired=1 ;;
    --client) (($# >= 2)) || usage; clients+=("$2"); shift ;;
    --mismatched) (($# >= 2)) || usage; mismatched+=("$2"); shift ;;
    -h|--help|-*) usage ;;
    *) servers+=("$1") ;;
  esac
  shift
done
((${#servers[@]} + ${#clients[@]} + ${#mismatched[@]})) || usage
command -v openssl >/dev/null || { echo "make-test-cert: openssl is not installed" >&2; exit 1; }

mkdir -p "$dir"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
umask 077   # keys are private; certificates are made readable below

newkey() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
utc() { date -u -d "$1" +%Y%m%d%H%M%SZ; }   # a date as `openssl ca` takes it

# The CA, once.
if [[ -s $dir/ca.pem && -s $dir/ca.key ]]; then
  echo "kept    $dir/ca.pem"
else
  newkey "$dir/ca.key"
  openssl req -x509 -new -key "$dir/ca.key" -sha256 -days 3650 -subj "/CN=Tidegate Test CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$dir/ca.pem"
  chmod 644 "$dir/ca.pem"
  echo "made    $dir/ca.pem  $dir/ca.key  (test CA, 10 years)"
fi

# `openssl ca` (not `x509 -req`) because OpenSSL 3.0 has no -not_before/-not_after there and
# an expired certificate needs an explicit -startdate/-enddate.
: >"$work/index.txt"
cat >"$work/ca.cnf" <<EOF
[ca]
default_ca = test
[test]
database = $work/index.txt
new_certs_dir = $work
serial = $work/serial
certificate = $dir/ca.pem
private_key = $dir/ca.key
default_md = sha256
policy = any
unique_subject = no
copy_extensions = none
[any]
commonName = supplied
EOF

# sign KEY OUT CN SAN EKU [FROM UNTIL]: a leaf for KEY, written as leaf + CA chain; valid from
# an hour ago (a little clock skew is fine) for 825 days unless FROM/UNTIL (openssl dates) say.
sign() {
  local key=$1 out=$2 cn=$3 san=$4 eku=$5 from=${6:-$(utc '1 hour ago')} until=${7:-$(utc '825 days')}
  cat >"$work/ext.cnf" <<EOF
[leaf]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = $eku
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
${san:+subjectAltName = $san}
EOF
  openssl req -new -key "$key" -subj "/CN=$cn" -out "$work/leaf.csr"
  openssl ca -batch -notext -config "$work/ca.cnf" -rand_serial -startdate "$from" -enddate "$until" \
    -extfile "$work/ext.cnf" -extensions leaf -in "$work/leaf.csr" -out "$work/leaf.pem" 2>"$work/ca.log" \
    || { cat "$work/ca.log" >&2; exit 1; }
  cat "$work/leaf.pem" "$dir/ca.pem" >"$out"
  chmod 644 "$out"
}

file_of() { local n=${1//\*/wildcard}; echo "$dir/${n//\//_}"; }
san_of() {
  if [[ $1 =~ ^[0-9.]+$ || $1 == *:* ]]; then echo "IP:$1"; else echo "DNS:$1"; fi
}
# fresh BASE [-no_check_time]: BASE.pem and BASE.key exist and the certificate still
# verifies against DIR/ca.pem (and, without the flag, is within its dates).
fresh() {
  [[ -s $1.pem && -s $1.key ]] && openssl verify -CAfile "$dir/ca.pem" ${2:-} "$1.pem" >/dev/null 2>&1
}

for name in "${servers[@]}"; do
  base=$(file_of "$name")
  if fresh "$base"; then echo "kept    $base.pem"; else
    newkey "$base.key"; sign "$base.key" "$base.pem" "$name" "$(san_of "$name")" serverAuth
    echo "made    $base.pem  $base.key  (server, SAN $(san_of "$name"))"
  fi
  if ((expired)); then
    if fresh "$base.expired" -no_check_time; then echo "kept    $base.expired.pem"; else
      newkey "$base.expired.key"
      sign "$base.expired.key" "$base.expired.pem" "$name" "$(san_of "$name")" serverAuth "$(utc '30 days ago')" "$(utc '1 day ago')"
      echo "made    $base.expired.pem  $base.expired.key  (server, SAN $(san_of "$name"), expired yesterday)"
    fi
  fi
done

for name in "${clients[@]}"; do
  base=$(file_of "$name").client
  if fresh "$base"; then echo "kept    $base.pem"; else
    newkey "$base.key"; sign "$base.key" "$base.pem" "$name" "" clientAuth
    echo "made    $base.pem  $base.key  (client, CN=$name, clientAuth)"
  fi
done

for name in "${mismatched[@]}"; do
  base=$(file_of "$name").mismatched
  if fresh "$base"; then echo "kept    $base.pem"; else
    newkey "$work/real.key"; sign "$work/real.key" "$base.pem" "$name" "$(san_of "$name")" serverAuth
    newkey "$base.key"   # another key: the pair does not match
    echo "made    $base.pem  $base.key  (server, SAN $(san_of "$name"), key does NOT match)"
  fi
done
