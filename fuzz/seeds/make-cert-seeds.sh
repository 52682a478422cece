#!/bin/sh
# Writes the seed corpus of the cert_identity fuzz target: real
# certificates made with openssl, each behind the mode byte that picks the
# entry point (see fuzz_targets/cert_identity.rs).  The seeds are
# committed; run this again only to change them (the keys differ each time).
set -eu
out=$(cd "$(dirname "$0")" && pwd)/cert_identity
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
mkdir -p "$out"
rm -f "$out"/*

key() { # NAME ALG
    case $2 in
    rsa) openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1.key" 2>/dev/null ;;
    ec256) openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" ;;
    ec384) openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out "$1.key" ;;
    *) openssl genpkey -algorithm "$2" -out "$1.key" ;;
    esac
}

# issue NAME ALG ISSUER SUBJECT EXTENSIONS...: a certificate for NAME signed by ISSUER.
issue() {
    name=$1 alg=$2 issuer=$3 subject=$4
    shift 4
    key "$name" "$alg"
    printf '%s\n' "$@" > "$name.ext"
    openssl req -new -key "$name.key" -subj "$subject" -utf8 -multivalue-rdn -out "$name.csr" 2>/dev/null
    openssl x509 -req -in "$name.csr" -CA "$issuer.pem" -CAkey "$issuer.key" -days 30 \
        -set_serial "0x$(openssl rand -hex 9)" -extfile "$name.ext" -out "$name.pem" 2>/dev/null
    openssl x509 -in "$name.pem" -outform DER -out "$name.der"
}

key root ec256
openssl req -x509 -new -key root.key -subj "/O=Example Corp/CN=Example Root CA" -days 30 \
    -addext "basicConstraints=critical,CA:true" -addext "keyUsage=keyCertSign,cRLSign" -out root.pem
openssl x509 -in root.pem -outform DER -out root.der

# A long chain: root, then ca1 .. ca6, each signing the next.
prev=root
for i in 1 2 3 4 5 6; do
    issue "ca$i" ec256 "$prev" "/DC=org/DC=example/O=Example Corp/OU=Level $i/CN=Example CA $i" \
        "basicConstraints=critical,CA:true" "keyUsage=keyCertSign" \
        "certificatePolicies=2.16.840.1.101.2.1.11.10,1.3.6.1.4.1.99999.$i"
    prev=ca$i
done

# SANs of every kind openssl writes, the UPN and other otherNames, EKUs and policies.
issue allsans ec256 ca6 "/CN=alice/OU=users/OU=ops/O=Example Corp/C=DE" \
    "subjectAltName=DNS:alice.example.org,DNS:*.wild.example.org,IP:192.0.2.7,IP:2001:db8::7,email:alice@example.org,URI:spiffe://example.org/ns/prod/sa/billing,otherName:1.3.6.1.4.1.311.20.2.3;UTF8:alice@corp.example,otherName:1.3.6.1.4.1.99999.2;UTF8:emp-4711,otherName:1.2.3.5;INTEGER:5,otherName:1.2.3.6;IA5STRING:ia5,otherName:1.2.3.7;BMPSTRING:bmp,RID:1.2.3.4.5,dirName:dir_sect" \
    "extendedKeyUsage=clientAuth,serverAuth,codeSigning,emailProtection,timeStamping,OCSPSigning,1.3.6.1.4.1.99999.3" \
    "certificatePolicies=2.16.840.1.101.2.1.11.10,2.23.140.1.2.1,1.3.6.1.4.1.99999.4" \
    "[dir_sect]" "CN=Directory Name" "O=Example Corp"
# Many name types, a multi-valued RDN, UTF-8 and characters RFC 4514 escapes.
issue names rsa ca1 "/CN=Bob  \"the\" <Builder>, Jr;#+x/CN=bob2+UID=bob/title=Dr/GN=Bob/SN=Builder/initials=B/serialNumber=4711/pseudonym=bb/organizationIdentifier=VATDE-123456789/street=Hauptstraße 1/postalCode=10115/L=Zürich/ST=ZH/O=Ex\\,ample/OU= leading space/DC=example/DC=org/emailAddress=bob@example.org/1.3.6.1.4.1.99999.1=custom/2.5.4.15=Private Organization/1.3.6.1.4.1.311.60.2.1.3=DE" \
    "subjectAltName=email:bob@example.org,DNS:xn--bcher-kva.example" "extendedKeyUsage=clientAuth"
issue ed25519 ED25519 ca2 "/CN=ed-client/O=Example Corp" "extendedKeyUsage=clientAuth" "subjectAltName=URI:urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66"
issue ed448 ED448 ca2 "/CN=ed448-client" "extendedKeyUsage=anyExtendedKeyUsage"
issue ec384 ec384 ca3 "/CN=ec384" "subjectAltName=IP:10.1.2.3,IP:::1,IP:fe80::1"
issue mapped ec256 ca3 "/CN=mapped" "subjectAltName=IP:::ffff:192.0.2.1"
issue emptysubject ec256 ca6 "/" "subjectAltName=critical,DNS:only-san.example.org"
issue nosan ec256 root "/CN=plain" "keyUsage=digitalSignature"
issue unicode ec256 ca4 "/CN=Ünïcødé 名前 😀/O=Ελληνικά" "subjectAltName=email:üser@example.org"

# mode FILE SUFFIX: one seed.
seed() {
    printf "\\$(printf '%03o' "$1")" > "$out/$3"
    cat "$2" >> "$out/$3"
}
chain6="ca6 ca5 ca4 ca3 ca2 ca1 root"
for leaf in allsans names ed25519 ed448 ec384 mapped emptysubject nosan unicode; do
    seed 0 "$leaf.der" "$leaf.der"
    seed 1 "$leaf.pem" "$leaf.pem"
done
seed 2 names.pem names.pem-or-der
seed 2 allsans.der allsans.pem-or-der
seed 0 root.der root.der
seed 0 ca3.der ca3.der

# PEM chain files, and DER chains, for the chain entry point.
chain_of() { # LEAF CA...: its chain, top down from the leaf's issuer
    case $1 in
    allsans|emptysubject) echo "$chain6" ;;
    names) echo "ca1 root" ;;
    ed25519|ed448) echo "ca2 ca1 root" ;;
    ec384|mapped) echo "ca3 ca2 ca1 root" ;;
    unicode) echo "ca4 ca3 ca2 ca1 root" ;;
    nosan) echo "root" ;;
    esac
}
for leaf in allsans names ed25519 ec384 unicode nosan; do
    pems="$leaf.pem" ders="$leaf.der"
    for ca in $(chain_of "$leaf"); do
        pems="$pems $ca.pem"
        ders="$ders $ca.der"
    done
    # shellcheck disable=SC2086
    cat $pems > "$leaf.chain.pem"
    # shellcheck disable=SC2086
    cat $ders > "$leaf.chain.der"
    seed 1 "$leaf.chain.pem" "$leaf.chain.pem"
    seed 3 "$leaf.chain.der" "$leaf.chain.der"
done
# The leaf again at the head of its chain (OpenSSL's verified chain), and a
# chain in the wrong order.
seed 7 allsans.chain.der allsans.chain-with-leaf.der
cat names.der root.der ca1.der > names.reversed.der
seed 3 names.reversed.der names.chain-reversed.der
ls "$out" | wc -l
