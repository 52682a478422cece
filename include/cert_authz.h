/*
 * cert_authz.h: the C ABI of cert-authz.
 *
 * cert-authz authorizes HTTP requests by the client certificate that the
 * server's TLS layer has already verified.  The policy language, the
 * certificate parsing and the decisions live in a Rust core; a web server
 * shim (Apache, nginx) talks to it only through this header.
 *
 * Conventions (those of rustls-ffi):
 *
 *  - Handles are opaque and created by a `_new`/`_from_*` function and
 *    released by the matching `_free`, which accepts NULL.
 *  - Inputs come first, outputs (`*_out`) last.  Outputs are written only
 *    when the function returns CERT_AUTHZ_OK.
 *  - Every buffer is a pointer followed by its length.  Nothing needs to be
 *    NUL-terminated: server strings usually are not.
 *  - Every function returns a cert_authz_result.  Codes are numbered and a
 *    number is never reused for another meaning; cert_authz_result_name()
 *    names each one.
 *  - A compiled policy is immutable: one handle may be shared by every
 *    thread and (after fork) every process.  An identity is immutable too
 *    and may be used from several threads at once (HTTP/2 streams).
 *  - No function lets a Rust panic escape; a panic becomes
 *    CERT_AUTHZ_ERR_PANIC and, for a decision, is never an allow.
 *  - Strings returned through `const char **` + `size_t *` pairs point into
 *    the handle they came from and live exactly as long as it.
 */

#ifndef CERT_AUTHZ_H
#define CERT_AUTHZ_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif


/* Result codes.  Never renumber, never reuse a retired number. */
typedef enum cert_authz_result {
    CERT_AUTHZ_OK = 0,
    CERT_AUTHZ_ERR_NULL_POINTER = 1,   /* a required pointer was NULL */
    CERT_AUTHZ_ERR_INVALID_ARGUMENT = 2, /* a value outside its domain */
    CERT_AUTHZ_ERR_POLICY = 3,         /* the policy has errors (see text) */
    CERT_AUTHZ_ERR_IO = 4,             /* a policy file could not be read */
    CERT_AUTHZ_ERR_BAD_CERTIFICATE = 5, /* unparsable or refused certificate */
    CERT_AUTHZ_ERR_NOT_FOUND = 6,      /* no such attribute value */
    CERT_AUTHZ_ERR_BUFFER_TOO_SMALL = 7, /* the output buffer was too short */
    CERT_AUTHZ_ERR_PANIC = 8           /* an internal error was contained */
} cert_authz_result;

/* One more than the highest result code: codes are 0 to COUNT - 1.  The
 * library's tests hold it to the codes cert_authz_result_name() names. */
#define CERT_AUTHZ_RESULT_COUNT 9


/* What the server knows about the peer certificate of the request. */
typedef enum cert_authz_peer {
    CERT_AUTHZ_PEER_NONE = 0,        /* no client certificate was sent */
    CERT_AUTHZ_PEER_VERIFIED = 1,    /* verified by the server; identity
                                        must be non-NULL */
    CERT_AUTHZ_PEER_UNVERIFIED = 2,  /* sent but not verified (optional_no_ca,
                                        expired, unknown CA, ...) */
    CERT_AUTHZ_PEER_UNPARSABLE = 3   /* verified, but the server could not
                                        hand it over (out of memory, ...) */
} cert_authz_peer;


/* Why a decision came out as it did.  Never renumber. */
typedef enum cert_authz_reason {
    CERT_AUTHZ_REASON_ALLOW_RULE = 0,     /* an allow statement matched */
    CERT_AUTHZ_REASON_NO_MATCHING_RULE = 1, /* no allow statement matched */
    CERT_AUTHZ_REASON_DENY_RULE = 2,      /* a deny statement matched */
    CERT_AUTHZ_REASON_KEY_REJECTED = 3,   /* a `require key` failed */
    CERT_AUTHZ_REASON_LIFETIME_TOO_LONG = 4, /* a `require lifetime` failed */
    CERT_AUTHZ_REASON_NO_CERTIFICATE = 5, /* the client sent none */
    CERT_AUTHZ_REASON_UNVERIFIED = 6,     /* the server did not verify it */
    CERT_AUTHZ_REASON_BAD_CERTIFICATE = 7, /* the certificate was refused */
    CERT_AUTHZ_REASON_BAD_PATH = 8,       /* the path is not unambiguous */
    CERT_AUTHZ_REASON_BAD_METHOD = 9,     /* the method is not a token */
    CERT_AUTHZ_REASON_INTERNAL_ERROR = 10, /* contained failure: refuse */
    CERT_AUTHZ_REASON_USER_AMBIGUOUS = 11 /* the user attribute has several
                                             values and the allow statement
                                             did not single one out */
} cert_authz_reason;

/* One more than the highest reason, as CERT_AUTHZ_RESULT_COUNT. */
#define CERT_AUTHZ_REASON_COUNT 12


/*
 * The log lines of cert_authz_decision_line(), each with its stable tag at
 * the start of the line.  Never renumber, never reuse a tag.
 */
typedef enum cert_authz_line_kind {
    CERT_AUTHZ_LINE_DENY = 0,        /* a refusal the server enforces */
    CERT_AUTHZ_LINE_WOULD_DENY = 1,  /* a refusal in report mode */
    CERT_AUTHZ_LINE_NOT_GRANTED = 2, /* a refusal other access rules may
                                        outvote (Require cert-authz in a
                                        RequireAny, nginx's satisfy any) */
    CERT_AUTHZ_LINE_ALLOW = 3        /* an allow, for debug logs */
} cert_authz_line_kind;

#define CERT_AUTHZ_TAG_DENY        "CA00010"
#define CERT_AUTHZ_TAG_ALLOW       "CA00012"
#define CERT_AUTHZ_TAG_WOULD_DENY  "CA00013"
#define CERT_AUTHZ_TAG_NOT_GRANTED "CA00015"

/* Room for any line of cert_authz_decision_line() (it cuts long paths). */
#define CERT_AUTHZ_LINE_MAX 2048


/* Log levels of the log bridge, the `log` crate's, most severe first. */
typedef enum cert_authz_log_level {
    CERT_AUTHZ_LOG_ERROR = 1,
    CERT_AUTHZ_LOG_WARN = 2,
    CERT_AUTHZ_LOG_INFO = 3,
    CERT_AUTHZ_LOG_DEBUG = 4,
    CERT_AUTHZ_LOG_TRACE = 5
} cert_authz_log_level;


/* A compiled, immutable policy. */
typedef struct cert_authz_policy cert_authz_policy;

/* A policy being assembled from files and inline statements. */
typedef struct cert_authz_policy_builder cert_authz_policy_builder;

/* A certificate a client presented, read once per connection: an identity
 * the policy can match, or a certificate refused with the reason why. */
typedef struct cert_authz_identity cert_authz_identity;


/*
 * The outcome of one decision.  `allowed` is 1 or 0.  `rule_file` (not
 * NUL-terminated) and `rule_line` name the deciding statement; for reasons
 * that no statement decides (NO_MATCHING_RULE, NO_CERTIFICATE, ...),
 * rule_file_len and rule_line are 0.  rule_file points into the policy,
 * where `:LINE` and a NUL follow its rule_file_len bytes: read up to the
 * NUL, rule_file is the statement's "FILE:LINE" as a C string.
 *
 * `user` (not NUL-terminated, pointing into the identity) is, on an allow
 * decided with a user attribute, the value of that attribute that was
 * authorized: the one the deciding allow statement matched, or the only
 * one.  It is NULL with user_len 0 on a refusal, without a user attribute,
 * and when the certificate has no value of it.
 */
typedef struct cert_authz_decision {
    int allowed;
    cert_authz_reason reason;
    const char *rule_file;
    size_t rule_file_len;
    uint32_t rule_line;
    const char *user;
    size_t user_len;
} cert_authz_decision;


/*
 * Called for every log record of the core.  `message` is not
 * NUL-terminated.  Runs on whatever thread logged; must not block long.
 */
typedef void (*cert_authz_log_callback)(void *userdata,
                                        cert_authz_log_level level,
                                        const char *message,
                                        size_t message_len);


/* ---- names and versions ------------------------------------------------ */

/* The version of the library, e.g. "0.1.0", NUL-terminated, static. */
const char *cert_authz_version(void);

/* The name of a result code ("CERT_AUTHZ_OK", ...), NUL-terminated, static;
 * "CERT_AUTHZ_ERR_UNKNOWN" for a number that is not a code. */
const char *cert_authz_result_name(cert_authz_result result);

/* A short phrase for a reason ("deny rule matched", ...), NUL-terminated,
 * static; "unknown reason" for a number that is not a reason. */
const char *cert_authz_reason_text(cert_authz_reason reason);


/* ---- logging ------------------------------------------------------------ */

/*
 * Installs the callback that receives the core's log records, replacing
 * any earlier one; NULL removes it.  Records more verbose than max_level
 * are not produced.  Call it again after the server reloads the module.
 */
cert_authz_result cert_authz_set_log_callback(cert_authz_log_callback cb,
                                              void *userdata,
                                              cert_authz_log_level max_level);


/* ---- policies ----------------------------------------------------------- */

/* A new, empty builder. */
cert_authz_result cert_authz_policy_builder_new(
    cert_authz_policy_builder **builder_out);

/*
 * Adds a policy file, by absolute path (the shim resolves a relative one as
 * its server resolves paths).  The file is read and parsed at once; its
 * `include` statements are read relative to it.  A syntax error returns
 * CERT_AUTHZ_ERR_POLICY, an unreadable file CERT_AUTHZ_ERR_IO; in both
 * cases this add's errors, one `FILE:LINE:COL: message` per line, are
 * written to error_buf as cert_authz_policy_builder_build() writes them,
 * so a server reports them at the directive that added the source; the
 * builder keeps them too and will not build.
 */
cert_authz_result cert_authz_policy_builder_add_file(
    cert_authz_policy_builder *builder,
    const char *path, size_t path_len,
    char *error_buf, size_t error_buf_len);

/*
 * Adds one inline statement (a whole line of the policy language) that
 * appears in a server configuration file `origin` at line `origin_line`.
 * Error messages point at origin:origin_line:COL, and a relative `include`
 * is taken from origin's directory.  Errors as for add_file.
 */
cert_authz_result cert_authz_policy_builder_add_statement(
    cert_authz_policy_builder *builder,
    const char *statement, size_t statement_len,
    const char *origin, size_t origin_len,
    uint32_t origin_line,
    char *error_buf, size_t error_buf_len);

/*
 * Resolves and indexes everything added and frees the builder, whatever
 * the result.  Some errors show only here: a group that no source of the
 * builder defines.  On success writes the policy to *policy_out.  On
 * CERT_AUTHZ_ERR_POLICY or CERT_AUTHZ_ERR_IO, writes the errors, one
 * `FILE:LINE:COL: message` per line, truncated to fit and always
 * NUL-terminated, into error_buf (when error_buf_len > 0) and writes no
 * policy: a broken policy never becomes a policy.
 */
cert_authz_result cert_authz_policy_builder_build(
    cert_authz_policy_builder *builder,
    char *error_buf, size_t error_buf_len,
    cert_authz_policy **policy_out);

/* Frees a builder that was not built.  NULL is fine. */
void cert_authz_policy_builder_free(cert_authz_policy_builder *builder);

/* The number of allow and deny statements in a policy. */
cert_authz_result cert_authz_policy_rule_count(
    const cert_authz_policy *policy, size_t *count_out);

/* Frees a policy.  NULL is fine. */
void cert_authz_policy_free(cert_authz_policy *policy);


/* ---- identities --------------------------------------------------------- */

/*
 * Reads one DER certificate, whatever the bytes: the handle written is
 * either an identity or a refused certificate.  Trailing bytes, a NUL or
 * control character in any name or SAN string, a string that cannot be
 * decoded, or bytes that are no certificate at all make it refused
 * (cert_authz_identity_refusal says why): decided as verified it is a
 * refusal with CERT_AUTHZ_REASON_BAD_CERTIFICATE, and it authorizes
 * nothing.  Errors are only for misuse (NULL pointers).
 */
cert_authz_result cert_authz_identity_from_der(
    const uint8_t *der, size_t der_len,
    cert_authz_identity **identity_out);

/*
 * Reads a client certificate with the chain the server verified it with, so
 * that policies can pin a CA by key (ca.spki, ca.fingerprint, issuer.spki)
 * and not by its name, which another CA can share.  `der` is the leaf;
 * `chain` points to `chain_count` DER certificates, `chain_lens[i]` bytes
 * each, in the verified chain's order, the leaf's issuer first and the
 * trust anchor last.  A copy of the leaf among them is skipped, so OpenSSL's
 * SSL_get0_verified_chain (which starts with the leaf) can be passed whole.
 * Only a chain the server verified may be passed: the core checks no
 * signature, as it takes CERT_AUTHZ_PEER_VERIFIED on the caller's word.
 * The handle is as cert_authz_identity_from_der makes it; a chain
 * certificate that cannot be read makes it refused too.  With chain_count
 * 0 (chain and chain_lens may then be NULL) it is
 * cert_authz_identity_from_der.  Errors are only for misuse (NULL
 * pointers).
 */
cert_authz_result cert_authz_identity_from_der_chain(
    const uint8_t *der, size_t der_len,
    const uint8_t *const *chain, const size_t *chain_lens,
    size_t chain_count,
    cert_authz_identity **identity_out);

/* The same for one PEM certificate (the first CERTIFICATE block). */
cert_authz_result cert_authz_identity_from_pem(
    const char *pem, size_t pem_len,
    cert_authz_identity **identity_out);

/*
 * Why the certificate was refused (e.g. "a control character in subject
 * CN"), or CERT_AUTHZ_ERR_NOT_FOUND when it was accepted.
 */
cert_authz_result cert_authz_identity_refusal(
    const cert_authz_identity *identity,
    const char **why_out, size_t *why_len_out);

/*
 * A second handle to the same identity, for another owner (a request that
 * keeps using it while its connection's cache moves on).  Each handle is
 * freed on its own; the identity goes with the last one.  Handles may be
 * cloned and freed from any thread.
 */
cert_authz_result cert_authz_identity_clone(
    const cert_authz_identity *identity,
    cert_authz_identity **clone_out);

/*
 * Whether `cert` (PEM or DER) is the certificate this identity was read
 * from: *same_out is 1 or 0.  For a cache that sees the certificate again
 * on every request and must notice a new one (renegotiation, TLS 1.3
 * post-handshake authentication).
 */
cert_authz_result cert_authz_identity_is_certificate(
    const cert_authz_identity *identity,
    const char *cert, size_t cert_len,
    int *same_out);

/* Frees an identity handle.  NULL is fine. */
void cert_authz_identity_free(cert_authz_identity *identity);

/* The subject as RFC 4514 text (as `openssl -nameopt RFC2253` prints it),
 * pointing into the identity and followed there by a NUL, so that it is a
 * C string too; CERT_AUTHZ_ERR_NOT_FOUND for a refused certificate. */
cert_authz_result cert_authz_identity_subject(
    const cert_authz_identity *identity,
    const char **subject_out, size_t *subject_len_out);

/*
 * The index-th value (from 0) of an attribute such as "subject.CN" or
 * "san.uri"; CERT_AUTHZ_ERR_NOT_FOUND past the last one (and for a refused
 * certificate), and CERT_AUTHZ_ERR_INVALID_ARGUMENT for a name that is not
 * an attribute.
 */
cert_authz_result cert_authz_identity_attr(
    const cert_authz_identity *identity,
    const char *attr, size_t attr_len,
    size_t index,
    const char **value_out, size_t *value_len_out);

/*
 * What an identity gives a backend besides its attributes, as RFC 9440
 * values for proxies (`Client-Cert`, `Client-Cert-Chain`).
 */
typedef enum cert_authz_item {
    /* the leaf as a structured-field byte sequence, ":BASE64-DER:" */
    CERT_AUTHZ_ITEM_CLIENT_CERT = 0,
    /* the CA certificates of the verified chain above the leaf, issuer
     * first, as a list of byte sequences (":A:, :B:"); empty when the server
     * passed no chain */
    CERT_AUTHZ_ITEM_CLIENT_CERT_CHAIN = 1
} cert_authz_item;

/* One more than the highest item; items are never renumbered. */
#define CERT_AUTHZ_ITEM_COUNT 2

/*
 * An item of a certificate (see cert_authz_item), made on first use and
 * kept with the identity: the string lives as long as the handle.
 * CERT_AUTHZ_ERR_NOT_FOUND for a refused certificate and for an empty
 * chain, CERT_AUTHZ_ERR_INVALID_ARGUMENT for an unknown item.
 */
cert_authz_result cert_authz_identity_item(
    const cert_authz_identity *identity,
    cert_authz_item item,
    const char **value_out, size_t *value_len_out);

/* Whole days from `now` (seconds since the epoch) until the certificate's
 * notAfter, rounded down: 0 on its last day.  CERT_AUTHZ_ERR_NOT_FOUND for
 * a refused certificate. */
cert_authz_result cert_authz_identity_days_left(
    const cert_authz_identity *identity,
    int64_t now,
    int64_t *days_out);

/*
 * The groups of the policy that the identity belongs to, one per call, in
 * the order the policy first names them.  Start with *cursor 0; each call
 * that returns CERT_AUTHZ_OK gives the next group's name (pointing into
 * the policy) and advances *cursor; CERT_AUTHZ_ERR_NOT_FOUND after the
 * last one, and for a refused certificate.
 */
cert_authz_result cert_authz_policy_next_group(
    const cert_authz_policy *policy,
    const cert_authz_identity *identity,
    size_t *cursor,
    const char **name_out, size_t *name_len_out);

/*
 * The environment variable name under which a server exports the values
 * of attribute attr: CERT_AUTHZ_ and the attribute's name in upper case
 * with '_' for '.' (subject.O: CERT_AUTHZ_SUBJECT_O), the same for every
 * spelling of one attribute.  Written NUL-terminated to buf, its length to
 * *len_out; CERT_AUTHZ_ERR_INVALID_ARGUMENT when attr is not an attribute,
 * CERT_AUTHZ_ERR_BUFFER_TOO_SMALL when the name does not fit.
 */
cert_authz_result cert_authz_attr_export_name(
    const char *attr, size_t attr_len,
    char *buf, size_t buf_len,
    size_t *len_out);

/*
 * A value of an attribute named as a variable names it (nginx's
 * $cert_authz_attr_NAME): '_' for '.', any case, so `san_uri` or
 * `subject_ou`; with `_N` after a named attribute (`subject_ou_1`), the
 * N-th value, from 0.  Without an index the value is given only when the
 * certificate has exactly one: a name that could stand for two values is
 * given none (CERT_AUTHZ_ERR_NOT_FOUND, as for a missing value or a
 * refused certificate).  With identity NULL, only checks the name:
 * CERT_AUTHZ_OK when it names an attribute.  CERT_AUTHZ_ERR_INVALID_ARGUMENT
 * for a name that does not.
 */
cert_authz_result cert_authz_identity_attr_by_variable(
    const cert_authz_identity *identity,
    const char *name, size_t name_len,
    const char **value_out, size_t *value_len_out);

/* CERT_AUTHZ_OK when attr names an attribute (for checking a directive
 * such as CertAuthzUser at configuration time), else
 * CERT_AUTHZ_ERR_INVALID_ARGUMENT. */
cert_authz_result cert_authz_attr_check(const char *attr, size_t attr_len);


/* ---- decisions ---------------------------------------------------------- */

/*
 * Decides one request.  `identity` is used only when peer is
 * CERT_AUTHZ_PEER_VERIFIED (then it must not be NULL); `method` is the
 * request method and `path` the server's normalized, decoded path without
 * the query string.  Any other peer state, a path with empty, `.` or `..`
 * segments, a NUL or a still encoded slash (`%2F`, `%2f`), or any internal
 * failure is a refusal.
 *
 * `user_attr` (user_attr_len 0: none) names the attribute whose value the
 * server will hand to its backend as the user (CertAuthzUser,
 * cert_authz_user).  With it, an allow for a certificate with several
 * values of that attribute stands only when the deciding allow statement
 * matched exactly one of them; otherwise the decision is a refusal with
 * CERT_AUTHZ_REASON_USER_AMBIGUOUS.  The authorized value is in
 * decision_out->user.
 *
 * The return code reports misuse (NULL pointers, a user_attr that is not
 * an attribute); the decision is in *decision_out.
 */
cert_authz_result cert_authz_decide(
    const cert_authz_policy *policy,
    const cert_authz_identity *identity,
    cert_authz_peer peer,
    const char *method, size_t method_len,
    const char *path, size_t path_len,
    const char *user_attr, size_t user_attr_len,
    cert_authz_decision *decision_out);


/*
 * The log line for a decision, the same words in every server:
 *
 *   CA00010: client denied by cert-authz: GET /admin/x, subject
 *   "CN=alice,O=Example Corp", reason: deny rule matched, rule FILE:LINE
 *
 * `identity` is what the client presented (NULL: nothing, or nothing the
 * server could read) and `peer` what the server made of it: a certificate
 * the server did not verify shows as `(unverified) DN`, a refused one as
 * `(refused)` with the reason it was refused.  Control characters, spaces,
 * quotes and backslashes of method and path are written as %XX.  Writes
 * the line, NUL-terminated, to buf and its length to *len_out; a buffer of
 * CERT_AUTHZ_LINE_MAX always suffices, a shorter one that the line does
 * not fit gives CERT_AUTHZ_ERR_BUFFER_TOO_SMALL.
 */
cert_authz_result cert_authz_decision_line(
    const cert_authz_decision *decision,
    cert_authz_line_kind kind,
    const cert_authz_identity *identity,
    cert_authz_peer peer,
    const char *method, size_t method_len,
    const char *path, size_t path_len,
    char *buf, size_t buf_len,
    size_t *len_out);


#ifdef __cplusplus
}  /* extern "C" */
#endif

#endif /* CERT_AUTHZ_H */
