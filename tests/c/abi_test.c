/*
 * The C ABI test: a C program, compiled with -Wall -Wextra -Werror
 * -pedantic against include/cert_authz.h and linked with the core's static
 * library, that calls every exported function and checks what it returns.
 *
 * usage: abi_test CERT.pem CERT.der POLICY CN
 *   CERT is a certificate whose subject CN is CN; POLICY allows
 *   GET /users/{subject.CN}/... and denies /users/CN/secret (line 2).
 *
 * Prints one line per failed check and "N passed, M failed"; exits 1 on
 * any failure.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cert_authz.h"


static int passed, failed;

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (cond) {                                                          \
            passed++;                                                        \
        } else {                                                             \
            failed++;                                                        \
            printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);           \
        }                                                                    \
    } while (0)

#define CHECK_RESULT(expr, want)                                             \
    do {                                                                     \
        cert_authz_result got_ = (expr);                                     \
        if (got_ == (want)) {                                                \
            passed++;                                                        \
        } else {                                                             \
            failed++;                                                        \
            printf("FAIL %s:%d: %s gave %s, wanted %s\n", __FILE__,          \
                   __LINE__, #expr, cert_authz_result_name(got_),           \
                   cert_authz_result_name(want));                           \
        }                                                                    \
    } while (0)


static int log_records;
static char last_log[512];


static void
count_log(void *userdata, cert_authz_log_level level, const char *message,
    size_t message_len)
{
    size_t n = message_len < sizeof(last_log) - 1
               ? message_len : sizeof(last_log) - 1;

    (void) level;
    (*(int *) userdata)++;
    memcpy(last_log, message, n);
    last_log[n] = '\0';
}


static char *
read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long size;

    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(2);
    }
    rewind(f);
    /* One spare byte, never a NUL terminator the library could rely on. */
    buf = malloc((size_t) size + 1);
    if (buf == NULL || fread(buf, 1, (size_t) size, f) != (size_t) size) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(2);
    }
    buf[size] = 'X';
    fclose(f);
    *len = (size_t) size;
    return buf;
}


static void
test_names(void)
{
    int code;

    CHECK(strlen(cert_authz_version()) > 0);
    CHECK(strcmp(cert_authz_result_name(CERT_AUTHZ_OK), "CERT_AUTHZ_OK") == 0);
    CHECK(strcmp(cert_authz_result_name(CERT_AUTHZ_ERR_PANIC),
                 "CERT_AUTHZ_ERR_PANIC") == 0);
    for (code = 0; code < CERT_AUTHZ_RESULT_COUNT; code++) {
        CHECK(strncmp(cert_authz_result_name((cert_authz_result) code),
                      "CERT_AUTHZ_", 11) == 0);
    }
    CHECK(strcmp(cert_authz_result_name((cert_authz_result) 999),
                 "CERT_AUTHZ_ERR_UNKNOWN") == 0);
    CHECK(strcmp(cert_authz_result_name(
                     (cert_authz_result) CERT_AUTHZ_RESULT_COUNT),
                 "CERT_AUTHZ_ERR_UNKNOWN") == 0);
    CHECK(strcmp(cert_authz_reason_text(CERT_AUTHZ_REASON_DENY_RULE),
                 "deny rule matched") == 0);
    for (code = 0; code < CERT_AUTHZ_REASON_COUNT; code++) {
        CHECK(strcmp(cert_authz_reason_text((cert_authz_reason) code),
                     "unknown reason") != 0);
    }
    CHECK(strcmp(cert_authz_reason_text(
                     (cert_authz_reason) CERT_AUTHZ_REASON_COUNT),
                 "unknown reason") == 0);
    CHECK(strcmp(cert_authz_reason_text((cert_authz_reason) 77),
                 "unknown reason") == 0);
}


static cert_authz_policy *
test_policies(const char *policy_path)
{
    cert_authz_policy_builder *builder = NULL;
    cert_authz_policy *policy = NULL, *sentinel = (cert_authz_policy *) &passed;
    char errors[256], tiny[8];
    const char *stmt = "allow POST /inline/** any";
    size_t count = 0;

    /* A good policy: a file plus one inline statement (not NUL-terminated
     * where it ends: the length is what counts). */
    CHECK_RESULT(cert_authz_policy_builder_new(&builder), CERT_AUTHZ_OK);
    CHECK(builder != NULL);
    CHECK_RESULT(cert_authz_policy_builder_add_file(builder, policy_path,
                 strlen(policy_path), errors, sizeof(errors)), CERT_AUTHZ_OK);
    CHECK_RESULT(cert_authz_policy_builder_add_statement(builder, stmt,
                 strlen(stmt), "/etc/httpd.conf", 15, 42, NULL, 0),
                 CERT_AUTHZ_OK);
    CHECK_RESULT(cert_authz_policy_builder_build(builder, errors,
                 sizeof(errors), &policy), CERT_AUTHZ_OK);
    CHECK(policy != NULL);
    CHECK_RESULT(cert_authz_policy_rule_count(policy, &count), CERT_AUTHZ_OK);
    CHECK(count == 3);

    /* A broken policy: errors located, no policy written. */
    builder = NULL;
    CHECK_RESULT(cert_authz_policy_builder_new(&builder), CERT_AUTHZ_OK);
    errors[0] = '\0';
    CHECK_RESULT(cert_authz_policy_builder_add_statement(builder,
                 "allow GET /x nosuch=1", 21, "/etc/nginx.conf", 15, 7,
                 errors, sizeof(errors)), CERT_AUTHZ_ERR_POLICY);
    /* ... reported at the add, for the directive's own error ... */
    CHECK(strncmp(errors, "/etc/nginx.conf:7:14: unknown attribute", 39) == 0);
    errors[0] = '\0';
    CHECK_RESULT(cert_authz_policy_builder_build(builder, errors,
                 sizeof(errors), &sentinel), CERT_AUTHZ_ERR_POLICY);
    CHECK(sentinel == (cert_authz_policy *) &passed);
    CHECK(strncmp(errors, "/etc/nginx.conf:7:14: unknown attribute", 39) == 0);

    /* A group no source defines shows only when the builder builds. */
    CHECK_RESULT(cert_authz_policy_builder_new(&builder), CERT_AUTHZ_OK);
    CHECK_RESULT(cert_authz_policy_builder_add_statement(builder,
                 "allow GET /x group=later", 24, "f", 1, 3, errors,
                 sizeof(errors)), CERT_AUTHZ_OK);
    CHECK_RESULT(cert_authz_policy_builder_build(builder, errors,
                 sizeof(errors), &sentinel), CERT_AUTHZ_ERR_POLICY);
    CHECK(strstr(errors, "f:3:") == errors && strstr(errors, "later") != NULL);

    /* Error text is truncated to the buffer and NUL-terminated. */
    CHECK_RESULT(cert_authz_policy_builder_new(&builder), CERT_AUTHZ_OK);
    CHECK_RESULT(cert_authz_policy_builder_add_statement(builder,
                 "frob", 4, "f", 1, 1, tiny, sizeof(tiny)),
                 CERT_AUTHZ_ERR_POLICY);
    CHECK(strlen(tiny) == sizeof(tiny) - 1);
    CHECK_RESULT(cert_authz_policy_builder_build(builder, tiny,
                 sizeof(tiny), &sentinel), CERT_AUTHZ_ERR_POLICY);
    CHECK(strlen(tiny) == sizeof(tiny) - 1);

    /* An unreadable file is an I/O error, at add and at build. */
    CHECK_RESULT(cert_authz_policy_builder_new(&builder), CERT_AUTHZ_OK);
    CHECK_RESULT(cert_authz_policy_builder_add_file(builder,
                 "/nonexistent/p", 14, NULL, 0), CERT_AUTHZ_ERR_IO);
    CHECK_RESULT(cert_authz_policy_builder_build(builder, NULL, 0,
                 &sentinel), CERT_AUTHZ_ERR_IO);

    /* An empty builder is not a policy. */
    CHECK_RESULT(cert_authz_policy_builder_new(&builder), CERT_AUTHZ_OK);
    CHECK_RESULT(cert_authz_policy_builder_build(builder, errors,
                 sizeof(errors), &sentinel), CERT_AUTHZ_ERR_POLICY);

    /* Misuse. */
    CHECK_RESULT(cert_authz_policy_builder_new(NULL),
                 CERT_AUTHZ_ERR_NULL_POINTER);
    CHECK_RESULT(cert_authz_policy_builder_add_file(NULL, "x", 1, NULL, 0),
                 CERT_AUTHZ_ERR_NULL_POINTER);
    CHECK_RESULT(cert_authz_policy_builder_build(NULL, NULL, 0, &policy),
                 CERT_AUTHZ_ERR_NULL_POINTER);
    CHECK_RESULT(cert_authz_policy_rule_count(NULL, &count),
                 CERT_AUTHZ_ERR_NULL_POINTER);
    CHECK_RESULT(cert_authz_policy_builder_new(&builder), CERT_AUTHZ_OK);
    cert_authz_policy_builder_free(builder);
    cert_authz_policy_builder_free(NULL);
    cert_authz_policy_free(NULL);

    return policy;
}


static void
test_identities_and_decisions(cert_authz_policy *policy, const char *pem_path,
    const char *der_path, const char *cn)
{
    cert_authz_identity *id = NULL, *from_der = NULL, *refused = NULL;
    cert_authz_identity *junk = NULL, *clone = NULL;
    cert_authz_identity *sentinel = (cert_authz_identity *) &failed;
    char line[CERT_AUTHZ_LINE_MAX], tiny_line[16];
    size_t line_len = 0;
    int same = -1;
    cert_authz_decision d, untouched;
    const char *value;
    size_t pem_len, der_len, value_len;
    char *pem = read_file(pem_path, &pem_len);
    char *der = read_file(der_path, &der_len);
    char path[256];

    CHECK_RESULT(cert_authz_identity_from_pem(pem, pem_len, &id),
                 CERT_AUTHZ_OK);
    CHECK_RESULT(cert_authz_identity_from_der((const uint8_t *) der, der_len,
                 &from_der), CERT_AUTHZ_OK);

    /* A refused certificate is a handle that says why, and matches
     * nothing; the reason is also logged at debug level. */
    log_records = 0;
    CHECK_RESULT(cert_authz_set_log_callback(count_log, &log_records,
                 CERT_AUTHZ_LOG_DEBUG), CERT_AUTHZ_OK);
    CHECK_RESULT(cert_authz_identity_from_der((const uint8_t *) der,
                 der_len - 1, &refused), CERT_AUTHZ_OK);
    CHECK(log_records == 1);
    CHECK(strstr(last_log, "certificate refused") != NULL);
    CHECK_RESULT(cert_authz_set_log_callback(NULL, NULL, CERT_AUTHZ_LOG_ERROR),
                 CERT_AUTHZ_OK);
    CHECK_RESULT(cert_authz_identity_refusal(refused, &value, &value_len),
                 CERT_AUTHZ_OK);
    CHECK(value_len > 0);
    CHECK_RESULT(cert_authz_identity_subject(refused, &value, &value_len),
                 CERT_AUTHZ_ERR_NOT_FOUND);
    CHECK_RESULT(cert_authz_identity_refusal(from_der, &value, &value_len),
                 CERT_AUTHZ_ERR_NOT_FOUND);
    CHECK_RESULT(cert_authz_identity_from_pem("junk", 4, &junk),
                 CERT_AUTHZ_OK);
    CHECK_RESULT(cert_authz_identity_refusal(junk, &value, &value_len),
                 CERT_AUTHZ_OK);
    CHECK(log_records == 1);
    CHECK_RESULT(cert_authz_identity_from_der(NULL, 4, &sentinel),
                 CERT_AUTHZ_ERR_NULL_POINTER);
    CHECK(sentinel == (cert_authz_identity *) &failed);

    /* Shared ownership, and "is this the same certificate?". */
    CHECK_RESULT(cert_authz_identity_clone(id, &clone), CERT_AUTHZ_OK);
    CHECK(clone != NULL && clone != id);
    CHECK_RESULT(cert_authz_identity_is_certificate(clone, pem, pem_len,
                 &same), CERT_AUTHZ_OK);
    CHECK(same == 1);
    CHECK_RESULT(cert_authz_identity_is_certificate(clone, der, der_len,
                 &same), CERT_AUTHZ_OK);
    CHECK(same == 1);
    CHECK_RESULT(cert_authz_identity_is_certificate(clone, der, der_len - 1,
                 &same), CERT_AUTHZ_OK);
    CHECK(same == 0);
    CHECK_RESULT(cert_authz_identity_is_certificate(junk, "junk", 4, &same),
                 CERT_AUTHZ_OK);
    CHECK(same == 0);
    CHECK_RESULT(cert_authz_set_log_callback(count_log, NULL,
                 (cert_authz_log_level) 9), CERT_AUTHZ_ERR_INVALID_ARGUMENT);

    /* Attributes. */
    CHECK_RESULT(cert_authz_identity_subject(id, &value, &value_len),
                 CERT_AUTHZ_OK);
    CHECK(value_len >= 3 + strlen(cn) && strncmp(value, "CN=", 3) == 0
          && memcmp(value + 3, cn, strlen(cn)) == 0);
    CHECK(value[value_len] == '\0');
    CHECK_RESULT(cert_authz_identity_attr(id, "subject.CN", 10, 0, &value,
                 &value_len), CERT_AUTHZ_OK);
    CHECK(value_len == strlen(cn) && memcmp(value, cn, value_len) == 0);
    CHECK_RESULT(cert_authz_identity_attr(id, "subject.CN", 10, 1, &value,
                 &value_len), CERT_AUTHZ_ERR_NOT_FOUND);
    CHECK_RESULT(cert_authz_identity_attr(id, "subject.XX", 10, 0, &value,
                 &value_len), CERT_AUTHZ_ERR_INVALID_ARGUMENT);
    CHECK_RESULT(cert_authz_identity_attr(from_der, "fingerprint", 11, 0,
                 &value, &value_len), CERT_AUTHZ_OK);
    CHECK(value_len == 64);
    CHECK_RESULT(cert_authz_attr_check("san.uri", 7), CERT_AUTHZ_OK);
    CHECK_RESULT(cert_authz_attr_check("san.urix", 7), CERT_AUTHZ_OK);
    CHECK_RESULT(cert_authz_attr_check("san.urix", 8),
                 CERT_AUTHZ_ERR_INVALID_ARGUMENT);

    /* Decisions. */
    snprintf(path, sizeof(path), "/users/%s/profile", cn);
    CHECK_RESULT(cert_authz_decide(policy, id, CERT_AUTHZ_PEER_VERIFIED,
                 "GETX", 3, path, strlen(path), NULL, 0, &d), CERT_AUTHZ_OK);
    CHECK(d.allowed == 1 && d.reason == CERT_AUTHZ_REASON_ALLOW_RULE);
    CHECK(d.rule_line == 1 && d.rule_file_len > 0);
    CHECK(d.user == NULL && d.user_len == 0);

    /* With a user attribute, the authorized value comes back. */
    CHECK_RESULT(cert_authz_decide(policy, id, CERT_AUTHZ_PEER_VERIFIED,
                 "GET", 3, path, strlen(path), "subject.CN", 10, &d),
                 CERT_AUTHZ_OK);
    CHECK(d.allowed == 1 && d.user_len == strlen(cn)
          && memcmp(d.user, cn, d.user_len) == 0);
    memcpy(&untouched, &d, sizeof(d));
    CHECK_RESULT(cert_authz_decide(policy, id, CERT_AUTHZ_PEER_VERIFIED,
                 "GET", 3, path, strlen(path), "subject.XX", 10, &d),
                 CERT_AUTHZ_ERR_INVALID_ARGUMENT);
    CHECK(memcmp(&d, &untouched, sizeof(d)) == 0);

    snprintf(path, sizeof(path), "/users/%s/secret", cn);
    CHECK_RESULT(cert_authz_decide(policy, from_der, CERT_AUTHZ_PEER_VERIFIED,
                 "GET", 3, path, strlen(path), NULL, 0, &d), CERT_AUTHZ_OK);
    CHECK(d.allowed == 0 && d.reason == CERT_AUTHZ_REASON_DENY_RULE);
    CHECK(d.rule_line == 2);

    /* A failed call writes no decision. */
    memset(&d, 0x5a, sizeof(d));
    memcpy(&untouched, &d, sizeof(d));
    CHECK_RESULT(cert_authz_decide(policy, NULL, CERT_AUTHZ_PEER_VERIFIED,
                 "POST", 4, "/inline/x", 9, NULL, 0, &d), CERT_AUTHZ_ERR_NULL_POINTER);
    CHECK(memcmp(&d, &untouched, sizeof(d)) == 0);
    CHECK_RESULT(cert_authz_decide(policy, id, (cert_authz_peer) 17,
                 "POST", 4, "/inline/x", 9, NULL, 0, &d),
                 CERT_AUTHZ_ERR_INVALID_ARGUMENT);
    CHECK(memcmp(&d, &untouched, sizeof(d)) == 0);
    CHECK_RESULT(cert_authz_decide(policy, id, CERT_AUTHZ_PEER_VERIFIED,
                 "POST", 4, "/inline/x", 9, NULL, 0, &d), CERT_AUTHZ_OK);
    CHECK(d.allowed == 1 && d.rule_line == 42);
    CHECK(d.rule_file_len == 15 && memcmp(d.rule_file, "/etc/httpd.conf",
                                          15) == 0);
    CHECK(strcmp(d.rule_file, "/etc/httpd.conf:42") == 0);

    CHECK_RESULT(cert_authz_decide(policy, NULL, CERT_AUTHZ_PEER_NONE,
                 "POST", 4, "/inline/x", 9, NULL, 0, &d), CERT_AUTHZ_OK);
    CHECK(d.allowed == 0 && d.reason == CERT_AUTHZ_REASON_NO_CERTIFICATE);
    CHECK(d.rule_file_len == 0 && d.rule_line == 0);
    CHECK_RESULT(cert_authz_decide(policy, id, CERT_AUTHZ_PEER_UNVERIFIED,
                 "POST", 4, "/inline/x", 9, NULL, 0, &d), CERT_AUTHZ_OK);
    CHECK(d.allowed == 0 && d.reason == CERT_AUTHZ_REASON_UNVERIFIED);
    CHECK_RESULT(cert_authz_decide(policy, NULL, CERT_AUTHZ_PEER_UNPARSABLE,
                 "POST", 4, "/inline/x", 9, NULL, 0, &d), CERT_AUTHZ_OK);
    CHECK(d.allowed == 0 && d.reason == CERT_AUTHZ_REASON_BAD_CERTIFICATE);
    CHECK_RESULT(cert_authz_decide(policy, id, CERT_AUTHZ_PEER_VERIFIED,
                 "POST", 4, "/inline/../x", 12, NULL, 0, &d), CERT_AUTHZ_OK);
    CHECK(d.allowed == 0 && d.reason == CERT_AUTHZ_REASON_BAD_PATH);
    CHECK_RESULT(cert_authz_decide(policy, id, CERT_AUTHZ_PEER_VERIFIED,
                 "POST", 4, "/inline/\0x", 10, NULL, 0, &d), CERT_AUTHZ_OK);
    CHECK(d.allowed == 0 && d.reason == CERT_AUTHZ_REASON_BAD_PATH);
    /* Bytes that are not UTF-8 are refused for what they are, before
     * the peer and before a method that is merely not a token; UTF-8 that
     * is not ASCII is a path like any other. */
    {
        static const struct {
            int verified;
            const char *method, *path;
            int allowed;
            cert_authz_reason reason;
        } cases[] = {
            { 1, "POST", "/inline/\xff", 0, CERT_AUTHZ_REASON_BAD_PATH },
            { 1, "post", "/inline/\xc3", 0, CERT_AUTHZ_REASON_BAD_PATH },
            { 1, "P\xc3ST", "/inline/\xc3", 0, CERT_AUTHZ_REASON_BAD_METHOD },
            { 1, "post", "/inline/x", 0, CERT_AUTHZ_REASON_BAD_METHOD },
            { 0, "POST", "/inline/\xff", 0, CERT_AUTHZ_REASON_BAD_PATH },
            { 0, "POST", "/inline/../x", 0, CERT_AUTHZ_REASON_NO_CERTIFICATE },
            { 1, "POST", "/inline/\xc3\xa9", 1, CERT_AUTHZ_REASON_ALLOW_RULE },
        };
        size_t i;

        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
            CHECK_RESULT(cert_authz_decide(policy,
                         cases[i].verified ? id : NULL,
                         cases[i].verified ? CERT_AUTHZ_PEER_VERIFIED
                                           : CERT_AUTHZ_PEER_NONE,
                         cases[i].method, strlen(cases[i].method),
                         cases[i].path, strlen(cases[i].path), NULL, 0, &d),
                         CERT_AUTHZ_OK);
            CHECK(d.allowed == cases[i].allowed
                  && d.reason == cases[i].reason);
        }
    }
    /* A NUL is no token character, after a known method too. */
    CHECK_RESULT(cert_authz_decide(policy, id, CERT_AUTHZ_PEER_VERIFIED,
                 "POST\0", 5, "/inline/x", 9, NULL, 0, &d), CERT_AUTHZ_OK);
    CHECK(d.allowed == 0 && d.reason == CERT_AUTHZ_REASON_BAD_METHOD);
    CHECK_RESULT(cert_authz_decide(policy, id, (cert_authz_peer) 17,
                 "POST", 4, "/inline/x", 9, NULL, 0, &d),
                 CERT_AUTHZ_ERR_INVALID_ARGUMENT);
    CHECK_RESULT(cert_authz_decide(NULL, id, CERT_AUTHZ_PEER_VERIFIED,
                 "POST", 4, "/inline/x", 9, NULL, 0, &d), CERT_AUTHZ_ERR_NULL_POINTER);
    CHECK_RESULT(cert_authz_decide(policy, id, CERT_AUTHZ_PEER_VERIFIED,
                 "POST", 4, "/inline/x", 9, NULL, 0, NULL),
                 CERT_AUTHZ_ERR_NULL_POINTER);

    /* The log line: the same words in every server. */
    CHECK_RESULT(cert_authz_decide(policy, refused, CERT_AUTHZ_PEER_VERIFIED,
                 "GET", 3, "/inline/x", 9, NULL, 0, &d), CERT_AUTHZ_OK);
    CHECK(d.allowed == 0 && d.reason == CERT_AUTHZ_REASON_BAD_CERTIFICATE);
    CHECK_RESULT(cert_authz_decision_line(&d, CERT_AUTHZ_LINE_DENY, refused,
                 CERT_AUTHZ_PEER_VERIFIED, "GET", 3, "/inline/x", 9, line,
                 sizeof(line), &line_len), CERT_AUTHZ_OK);
    CHECK(line_len == strlen(line));
    CHECK(strncmp(line, CERT_AUTHZ_TAG_DENY ": client denied by cert-authz: "
                  "GET /inline/x, subject \"(refused)\", reason: client "
                  "certificate refused as malformed: ", 105) == 0);
    CHECK_RESULT(cert_authz_decide(policy, clone, CERT_AUTHZ_PEER_UNVERIFIED,
                 "GET", 3, "/inline/\n", 9, NULL, 0, &d), CERT_AUTHZ_OK);
    CHECK_RESULT(cert_authz_decision_line(&d, CERT_AUTHZ_LINE_WOULD_DENY,
                 clone, CERT_AUTHZ_PEER_UNVERIFIED, "GET", 3, "/inline/\n", 9,
                 line, sizeof(line), &line_len), CERT_AUTHZ_OK);
    CHECK(strstr(line, CERT_AUTHZ_TAG_WOULD_DENY ": would deny") == line);
    CHECK(strstr(line, "GET /inline/%0A, subject \"(unverified) CN=") != NULL);
    CHECK(strstr(line, ", rule -") != NULL);
    CHECK_RESULT(cert_authz_decision_line(&d, CERT_AUTHZ_LINE_DENY, NULL,
                 CERT_AUTHZ_PEER_NONE, "GET", 3, "/x", 2, tiny_line,
                 sizeof(tiny_line), &line_len),
                 CERT_AUTHZ_ERR_BUFFER_TOO_SMALL);
    CHECK_RESULT(cert_authz_decision_line(&d, (cert_authz_line_kind) 9, NULL,
                 CERT_AUTHZ_PEER_NONE, "GET", 3, "/x", 2, line, sizeof(line),
                 &line_len), CERT_AUTHZ_ERR_INVALID_ARGUMENT);

    cert_authz_identity_free(id);
    cert_authz_identity_free(from_der);
    cert_authz_identity_free(refused);
    cert_authz_identity_free(junk);
    cert_authz_identity_free(clone);
    cert_authz_identity_free(NULL);
    free(pem);
    free(der);
}


/*
 * A leaf read with its verified chain, as a shim passes it: leaf first (it
 * is skipped), then the CA.  `ca_spki` is the CA key's SHA-256, in hex.
 */
static void
test_chain(const char *der_path, const char *ca_der_path, const char *ca_spki)
{
    cert_authz_identity *id = NULL, *plain = NULL, *refused = NULL;
    cert_authz_identity *sentinel = (cert_authz_identity *) &passed;
    const uint8_t *chain[2];
    size_t lens[2], der_len, ca_len, value_len, name_len;
    const char *value;
    char name[64];
    int64_t days = -1;
    char *der = read_file(der_path, &der_len);
    char *ca = read_file(ca_der_path, &ca_len);

    chain[0] = (const uint8_t *) der;
    lens[0] = der_len;
    chain[1] = (const uint8_t *) ca;
    lens[1] = ca_len;
    CHECK_RESULT(cert_authz_identity_from_der_chain((const uint8_t *) der,
                 der_len, chain, lens, 2, &id), CERT_AUTHZ_OK);
    CHECK_RESULT(cert_authz_identity_attr(id, "ca.spki", 7, 0, &value,
                 &value_len), CERT_AUTHZ_OK);
    CHECK(value_len == strlen(ca_spki) && memcmp(value, ca_spki, value_len) == 0);
    CHECK_RESULT(cert_authz_identity_attr(id, "ca.spki", 7, 1, &value,
                 &value_len), CERT_AUTHZ_ERR_NOT_FOUND);
    CHECK_RESULT(cert_authz_identity_attr(id, "issuer.spki", 11, 0, &value,
                 &value_len), CERT_AUTHZ_OK);
    CHECK(value_len == strlen(ca_spki) && memcmp(value, ca_spki, value_len) == 0);
    CHECK_RESULT(cert_authz_identity_attr(id, "ca.fingerprint", 14, 0, &value,
                 &value_len), CERT_AUTHZ_OK);
    CHECK(value_len == 64);
    CHECK_RESULT(cert_authz_attr_check("ca.fingerprint", 14), CERT_AUTHZ_OK);

    /* No chain: no CA values; NULL arrays are fine with a count of 0. */
    CHECK_RESULT(cert_authz_identity_from_der_chain((const uint8_t *) der,
                 der_len, NULL, NULL, 0, &plain), CERT_AUTHZ_OK);
    CHECK_RESULT(cert_authz_identity_attr(plain, "ca.spki", 7, 0, &value,
                 &value_len), CERT_AUTHZ_ERR_NOT_FOUND);

    /* What a server exports: RFC 9440 values, days left, names. */
    CHECK_RESULT(cert_authz_identity_item(id, CERT_AUTHZ_ITEM_CLIENT_CERT,
                 &value, &value_len), CERT_AUTHZ_OK);
    CHECK(value_len > 2 && value[0] == ':' && value[value_len - 1] == ':');
    CHECK_RESULT(cert_authz_identity_item(id, CERT_AUTHZ_ITEM_CLIENT_CERT_CHAIN,
                 &value, &value_len), CERT_AUTHZ_OK);
    CHECK(value_len > 2 && memchr(value, ',', value_len) == NULL);
    CHECK_RESULT(cert_authz_identity_item(plain,
                 CERT_AUTHZ_ITEM_CLIENT_CERT_CHAIN, &value, &value_len),
                 CERT_AUTHZ_ERR_NOT_FOUND);
    CHECK_RESULT(cert_authz_identity_item(id, (cert_authz_item) 9, &value,
                 &value_len), CERT_AUTHZ_ERR_INVALID_ARGUMENT);
    CHECK_RESULT(cert_authz_identity_days_left(id, 0, &days), CERT_AUTHZ_OK);
    CHECK(days > 365 * 50);
    CHECK_RESULT(cert_authz_attr_export_name("subject.O", 9, name,
                 sizeof(name), &name_len), CERT_AUTHZ_OK);
    CHECK(name_len == 20 && strcmp(name, "CERT_AUTHZ_SUBJECT_O") == 0);
    CHECK_RESULT(cert_authz_attr_export_name("subject.O", 9, name, 5,
                 &name_len), CERT_AUTHZ_ERR_BUFFER_TOO_SMALL);
    CHECK_RESULT(cert_authz_attr_export_name("nope", 4, name, sizeof(name),
                 &name_len), CERT_AUTHZ_ERR_INVALID_ARGUMENT);
    CHECK_RESULT(cert_authz_identity_attr_by_variable(NULL, "san_uri_1", 9,
                 NULL, NULL), CERT_AUTHZ_OK);
    CHECK_RESULT(cert_authz_identity_attr_by_variable(NULL, "subject_cm", 10,
                 NULL, NULL), CERT_AUTHZ_ERR_INVALID_ARGUMENT);
    CHECK_RESULT(cert_authz_identity_attr_by_variable(id, "issuer", 6, &value,
                 &value_len), CERT_AUTHZ_OK);
    CHECK(value_len > 0);

    /* A chain certificate that is no certificate refuses the identity. */
    lens[1] = ca_len - 1;
    CHECK_RESULT(cert_authz_identity_from_der_chain((const uint8_t *) der,
                 der_len, chain, lens, 2, &refused), CERT_AUTHZ_OK);
    CHECK_RESULT(cert_authz_identity_refusal(refused, &value, &value_len),
                 CERT_AUTHZ_OK);
    CHECK(value_len > 0);
    CHECK_RESULT(cert_authz_identity_item(refused, CERT_AUTHZ_ITEM_CLIENT_CERT,
                 &value, &value_len), CERT_AUTHZ_ERR_NOT_FOUND);
    CHECK_RESULT(cert_authz_identity_days_left(refused, 0, &days),
                 CERT_AUTHZ_ERR_NOT_FOUND);

    /* Misuse: outputs untouched. */
    CHECK_RESULT(cert_authz_identity_from_der_chain((const uint8_t *) der,
                 der_len, NULL, lens, 2, &sentinel),
                 CERT_AUTHZ_ERR_NULL_POINTER);
    CHECK(sentinel == (cert_authz_identity *) &passed);

    cert_authz_identity_free(id);
    cert_authz_identity_free(plain);
    cert_authz_identity_free(refused);
    free(der);
    free(ca);
}

int
main(int argc, char **argv)
{
    cert_authz_policy *policy;

    if (argc != 7) {
        fprintf(stderr,
                "usage: abi_test CERT.pem CERT.der POLICY CN CA.der CA_SPKI\n");
        return 2;
    }
    test_chain(argv[2], argv[5], argv[6]);
    test_names();
    policy = test_policies(argv[3]);
    if (policy != NULL) {
        test_identities_and_decisions(policy, argv[1], argv[2], argv[4]);
        cert_authz_policy_free(policy);
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
