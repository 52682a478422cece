//! Certificate identity on any bytes and on mutated real certificates.
//! Whatever the bytes, reading them must not panic and must give either an
//! identity or a refusal with a reason; an identity must hold only values a
//! policy can be written for.
//!
//! The first byte picks the entry point, the rest is the certificate:
//!   0  DER, as `cert_authz_identity_from_der`
//!   1  PEM, as `cert_authz_identity_from_pem`; and as a PEM chain file
//!      (`show --chain`), its first block the leaf
//!   2  PEM or DER, whichever it looks like (the CLI's `--cert`)
//!   3  DER chain, leaf first, as `cert_authz_identity_from_der_chain`
//!      (the certificates one after the other; the leaf is given again at
//!      the head of the chain when bit 2 of the first byte is set, as
//!      OpenSSL's verified chain holds it)
//! The seed corpus holds real certificates made by fuzz/seeds/make.sh; a
//! DER-aware mutator (der_mutator.rs) keeps most mutations well-formed
//! enough to reach the names, SANs and extensions.
#![no_main]

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use cert_authz::dn::Dn;
use cert_authz::identity::pem_chain_to_der;
use cert_authz::{Attr, Identity, Presented};
use libfuzzer_sys::{fuzz_mutator, fuzz_target};

mod der_mutator;

fuzz_mutator!(|data: &mut [u8], size: usize, max_size: usize, seed: u32| {
    der_mutator::mutate(data, size, max_size, seed, 1)
});

/// What must hold of every identity.
fn check(identity: &Identity, der: &[u8]) {
    for (name, values) in identity.listing() {
        // Each line `show` prints is a matcher for this very certificate,
        // but for OIDs longer than a policy can name (attr::OID_MAX bytes),
        // whose values then authorize nothing.
        match Attr::parse(&name) {
            Some(attr) => assert!(
                identity.values(attr) == values,
                "`show` prints `{name}`, but a policy naming it sees {:?}, not {values:?}",
                identity.values(attr)
            ),
            None => assert!(
                oid_der_len(&name).is_some_and(|len| len > cert_authz::attr::OID_MAX),
                "`show` prints `{name}`, which a policy cannot name"
            ),
        }
        for value in values {
            assert!(!value.chars().any(char::is_control), "{name} has a control character: {value:?}");
        }
    }
    for attr in Attr::all() {
        let _ = identity.values(attr);
        let _ = identity.match_values(attr);
    }
    // The subject and issuer as printed read back as the same names: a
    // policy written from `show` matches the certificate it was shown.
    for (attr, what) in [(Attr::Subject, "subject"), (Attr::Issuer, "issuer")] {
        let text = &identity.values(attr)[0];
        match Dn::parse_rfc4514(text) {
            Ok(dn) => assert_eq!(
                dn.canonical_key(),
                *identity.match_values(attr)[0],
                "the {what} {text:?} reads back as another name"
            ),
            Err((at, why)) => panic!("the {what} {text:?} does not read back: {why} at byte {at}"),
        }
    }
    let _ = identity.subject_text();
    let _ = (identity.key, identity.lifetime_secs);
    assert!(!der.is_empty());
}

/// The DER length of the dotted OID that ends an attribute name.
fn oid_der_len(name: &str) -> Option<usize> {
    let dotted = ["subject.", "issuer.", "san.other."].iter().find_map(|p| name.strip_prefix(p))?;
    let arcs: Vec<u128> = dotted.split('.').map(|a| a.parse().ok()).collect::<Option<_>>()?;
    let [first, second, rest @ ..] = arcs.as_slice() else { return None };
    let bytes = |arc: u128| (128 - arc.leading_zeros() as usize).div_ceil(7).max(1);
    Some(bytes(first * 40 + second) + rest.iter().map(|a| bytes(*a)).sum::<usize>())
}

/// The same reading, value for value.
fn same(a: &Identity, b: &Identity) -> bool {
    let listed = |i: &Identity| -> Vec<(String, Vec<String>)> {
        i.listing().into_iter().map(|(n, v)| (n, v.iter().map(|s| s.to_string()).collect())).collect()
    };
    listed(a) == listed(b) && a.key == b.key && a.lifetime_secs == b.lifetime_secs
}

fn pem_of(der: &[u8]) -> Vec<u8> {
    let body = BASE64.encode(der);
    let mut pem = b"-----BEGIN CERTIFICATE-----\n".to_vec();
    for line in body.as_bytes().chunks(64) {
        pem.extend_from_slice(line);
        pem.push(b'\n');
    }
    pem.extend_from_slice(b"-----END CERTIFICATE-----\n");
    pem
}

/// A DER leaf, alone and with `chain`: the checks, and that every entry
/// point agrees on it.
fn der_leaf(der: &[u8], chain: &[&[u8]]) {
    let presented = Presented::from_der_chain(der, chain);
    match (&presented, Identity::from_der_chain(der, chain)) {
        (Presented::Accepted(a), Ok(b)) => assert!(same(a, &b)),
        (Presented::Refused { why: a, .. }, Err(b)) => {
            assert_eq!(*a, b);
            assert!(!a.0.is_empty(), "a refusal without a reason");
        }
        _ => panic!("Presented and Identity disagree"),
    }
    // The server's cache must know the certificate again (no bytes are
    // never a certificate).
    assert_eq!(presented.is_same(der), !der.is_empty(), "a certificate is not the same as itself");
    if let Some(identity) = presented.identity() {
        check(identity, der);
        // A copy of the leaf in its chain is skipped.
        let mut with_leaf: Vec<&[u8]> = vec![der];
        with_leaf.extend_from_slice(chain);
        let again =
            Identity::from_der_chain(der, &with_leaf).expect("the leaf again in its chain refused it");
        assert!(same(identity, &again), "the leaf again in its chain changed the identity");
        // The same certificate as PEM reads the same.
        let pem = pem_of(der);
        let from_pem = Identity::from_pem(&pem).expect("the PEM of an accepted DER refused");
        if chain.is_empty() {
            assert!(same(identity, &from_pem), "PEM and DER read differently");
        }
        assert!(presented.is_same(&pem), "the PEM of a certificate is not the same as it");
    }
}

/// Splits concatenated DER at its outer lengths; what does not parse is
/// the last piece.
fn split_der(mut data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while !data.is_empty() && out.len() < 16 {
        let len = match data {
            [_, n, rest @ ..] if *n < 0x80 => 2 + *n as usize,
            [_, 0x81, n, ..] => 3 + *n as usize,
            [_, 0x82, a, b, ..] => 4 + ((*a as usize) << 8 | *b as usize),
            _ => data.len(),
        }
        .min(data.len());
        out.push(&data[..len]);
        data = &data[len..];
    }
    if !data.is_empty() {
        out.push(data);
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else { return };
    match mode & 3 {
        0 => der_leaf(body, &[]),
        1 => {
            let presented = Presented::from_pem(body);
            match (&presented, Identity::from_pem(body)) {
                (Presented::Accepted(a), Ok(b)) => assert!(same(a, &b)),
                (Presented::Refused { .. }, Err(_)) => {}
                _ => panic!("Presented and Identity disagree on PEM"),
            }
            if let Some(identity) = presented.identity() {
                assert!(presented.is_same(body), "a PEM is not the same as itself");
                // A later block may be broken; the first is the one read.
                if let Ok(ders) = pem_chain_to_der(body) {
                    check(identity, &ders[0]);
                    assert!(same(identity, &Identity::from_der(&ders[0]).unwrap()), "PEM and its DER differ");
                }
            }
            if let Ok(ders) = pem_chain_to_der(body) {
                if let Some((leaf, chain)) = ders.split_first() {
                    let chain: Vec<&[u8]> = chain.iter().map(Vec::as_slice).collect();
                    der_leaf(leaf, &chain);
                }
            }
        }
        2 => {
            let presented = Presented::from_pem_or_der(body);
            if let Some(identity) = presented.identity() {
                assert!(presented.is_same(body));
                let _ = identity.listing();
            } else {
                assert!(presented.refusal().is_some_and(|why| !why.0.is_empty()));
            }
        }
        _ => {
            let pieces = split_der(body);
            let Some((leaf, chain)) = pieces.split_first() else { return };
            if mode & 4 != 0 {
                let mut with_leaf = vec![*leaf];
                with_leaf.extend_from_slice(chain);
                der_leaf(leaf, &with_leaf);
            } else {
                der_leaf(leaf, chain);
            }
        }
    }
});
