/*
 * mod_cert_authz.c: authorize requests by the client certificate that
 * mod_ssl has already verified.
 *
 * The policy language, certificate parsing and decisions live in the Rust
 * core behind include/cert_authz.h; this file only turns a request_rec into
 * plain values (verified flag, certificate, method, path) and a decision back
 * into Apache's answers, logs and environment.
 *
 * Usage:
 *
 *   LoadModule cert_authz_module /usr/lib/apache2/modules/mod_cert_authz.so
 *
 *   SSLVerifyClient require             # or optional; verification is
 *                                       # checked here again in any case
 *   CertAuthzPolicy /etc/apache2/cert-authz.policy
 *
 *   <Location "/">
 *       CertAuthz On                    # enforce the server-wide policy
 *       CertAuthzUser subject.CN        # REMOTE_USER for the backend
 *   </Location>
 *
 *   <Location "/api">
 *       # A scope with its own rules replaces the inherited policy.
 *       CertAuthzRule "group reporters subject.OU=reporting"
 *       CertAuthzRule "allow GET /api/reports/{subject.CN} group=reporters"
 *   </Location>
 *
 *   <Location "/staging">
 *       CertAuthzMode report            # decide and log, never refuse
 *   </Location>
 *
 *   <Location "/mixed">
 *       <RequireAny>
 *           Require ip 127.0.0.1
 *           Require cert-authz          # the scope's policy as a provider
 *       </RequireAny>
 *   </Location>
 *
 * Every refusal is one error-level line, e.g.
 *
 *   [cert_authz:error] [pid 7] [client 127.0.0.1:50312] CA00010: client
 *   denied by cert-authz: GET /admin/, subject "CN=alice,OU=users,O=Example
 *   Corp", reason: no allow rule matched, rule -
 *
 * Configuration notes:
 *
 *  - All CertAuthzPolicy files and CertAuthzRule statements of one scope
 *    make one policy: each directive adds its source to the scope's
 *    builder (an error in it stops the configuration at that directive,
 *    with the core's FILE:LINE:COL), and the scope is built once the whole
 *    configuration is read (a rule may name a group that a later rule or
 *    the file defines).
 *  - The decision is made in the access phase, after mod_ssl's own access
 *    hook (which performs per-location renegotiation or TLS 1.3
 *    post-handshake authentication), through ap_ssl_var_lookup():
 *    r->subprocess_env holds no SSL_* variables before the fixups phase.
 *  - The parsed identity is kept per TLS connection (the master connection
 *    for HTTP/2 streams) and parsed again only when the peer certificate
 *    changes: mod_ssl's ssl_pre_handshake hook gives us the connection's
 *    SSL, and the peer certificate's identity (pointer, with a reference
 *    held so the address cannot be reused) tells a new certificate from the
 *    old one without mod_ssl rendering a PEM per request.  Without the hook
 *    the PEM of SSL_CLIENT_CERT is compared instead.
 */

#include "apr_lib.h"
#include "apr_strings.h"
#include "apr_thread_mutex.h"

#include "ap_config.h"
#include "ap_provider.h"
#include "util_cfgtree.h"
#include "httpd.h"
#include "http_config.h"
#include "http_connection.h"
#include "http_core.h"
#include "http_log.h"
#include "http_main.h"
#include "http_protocol.h"
#include "http_request.h"
#include "http_ssl.h"
#include "mod_auth.h"
#include "apr_optional_hooks.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "cert_authz.h"

/* Stable tags for our own log lines, as Apache's APLOGNO(n) but with our
 * prefix so they never collide with httpd's numbers.  Never reuse one. */
#define CERT_AUTHZ_LOGNO(n) "CA" #n ": "

#define CERT_AUTHZ_UNSET (-1)

#define CERT_AUTHZ_MODE_ENFORCE 0
#define CERT_AUTHZ_MODE_REPORT  1

/* Enough for a screenful of FILE:LINE:COL messages from the core. */
#define CERT_AUTHZ_ERROR_BUF 4096

/* Pool userdata key under which the scopes read from the configuration are
 * listed for the checks of check_config (see cert_authz_check_config). */
#define CERT_AUTHZ_SCOPES_KEY "cert_authz_module::scopes"

/* Pool userdata key of the warnings check_config leaves to post_config. */
#define CERT_AUTHZ_WARNINGS_KEY "cert_authz_module::warnings"

/* The backend's variables.  Arrays, not literals: fixups tells the
 * module's own entries by their key's and value's address (see
 * export_intact), which one array has and two equal literals may not. */
static const char ENV_DECISION[] = "CERT_AUTHZ_DECISION";
static const char ENV_RULE[] = "CERT_AUTHZ_RULE";
static const char ENV_SUBJECT[] = "CERT_AUTHZ_SUBJECT";
static const char ENV_USER[] = "CERT_AUTHZ_USER";
static const char ENV_REASON[] = "CERT_AUTHZ_REASON";
static const char ENV_PREFIX[] = "CERT_AUTHZ_";
static const char VALUE_ALLOW[] = "allow";
static const char VALUE_DENY[] = "deny";

/* The longest variable name CertAuthzExport makes for an attribute. */
#define CERT_AUTHZ_ENV_NAME_MAX 256

module AP_MODULE_DECLARE_DATA cert_authz_module;

/* mod_ssl's optional hook, as its mod_ssl_openssl.h declares it; Debian's
 * apache2-dev does not install that header.  It runs once per connection,
 * on the connection's thread, when mod_ssl has made the SSL object. */
typedef int ssl_HOOK_pre_handshake_t(conn_rec *c, SSL *ssl, int is_proxy);

APLOG_USE_MODULE(cert_authz);


typedef struct {
    int enabled;                  /* CertAuthz, or CERT_AUTHZ_UNSET */
    int mode;                     /* CertAuthzMode, or CERT_AUTHZ_UNSET */
    const char *user_attr;        /* CertAuthzUser, NULL when unset */
    /* CertAuthzRequestHeader: request_header, the parent's and then this
     * scope's own; NULL when none applies. */
    apr_array_header_t *headers;
    /* CertAuthzExport: export_item, the parent's and then this scope's own;
     * NULL when none applies. */
    apr_array_header_t *exports;

    /* The scope's own CertAuthzPolicy and CertAuthzRule sources, added as
     * each directive is read; built into `policy` by check_config, once the
     * whole configuration is read (a rule may name a group that a later
     * one defines).  NULL in a scope that sets none. */
    cert_authz_policy_builder *builder;
    cert_authz_policy *policy;
    /* The policy in effect: &policy of the scope that defines it, NULL
     * where none does.  Merges copy this pointer, not the policy: httpd
     * merges the main server into virtual hosts before check_config
     * builds. */
    cert_authz_policy **policy_ref;

    /* Bookkeeping for the configuration-time checks; unused per request. */
    int registered;
    server_rec *server;
    const ap_directive_t *vhost;  /* its <VirtualHost>, NULL in the main */
    const ap_directive_t *section;  /* its <Location> etc., NULL if none */
    const char *path;             /* the section's path (cmd->path) */
    const char *enabled_where;    /* "FILE:LINE" of CertAuthz On */
    const char *sources_where;    /* "FILE:LINE" of the first source */
} cert_authz_dir_conf;


/* The identity cache of one TLS connection (the master connection).  HTTP/2
 * streams of the connection run on several threads: each request takes a
 * handle of its own (cert_authz_identity_clone) under the lock, so the
 * cache may move on to a new certificate while a stream still decides. */
typedef struct {
#if APR_HAS_THREADS
    apr_thread_mutex_t *lock;
#endif
    /* Set once, before the handshake; used only after mod_ssl's access hook
     * for the request, when mod_ssl itself uses the same SSL. */
    SSL *ssl;
    /* The peer certificate `current` was read from (one reference held, so
     * that its address cannot be reused), or NULL when it came from
     * SSL_CLIENT_CERT (without the ssl_pre_handshake hook). */
    X509 *x509;
    cert_authz_identity *current;
    /* The subject of `current` (cert_authz_identity_subject: it lives as
     * long as any handle to it), or NULL for a refused certificate. */
    const char *subject;
    /* Whether `current` was read with the chain mod_ssl verified (so that
     * ca.spki rules can see it); a certificate first seen unverified is
     * read again once verified. */
    int chained;
    /*
     * What SSL_CLIENT_VERIFY said of `x509` (verified or not), looked up
     * once per certificate rather than per request.  mod_ssl derives it
     * from the peer certificate, the SSL's verify result, and what its
     * verify callback noted (CRL and OCSP failures, optional_no_ca).  The
     * callback runs only in a handshake (renegotiation, post-handshake
     * authentication), which brings a new certificate; mod_ssl's access
     * hook resets the verify result per request and re-verifies the same
     * certificate only after changing the verify mode (OptRenegotiate).
     * So the verdict is kept with the verify result and mode it was read
     * under, and looked up again when any of the three changes.
     */
    int verdict_known;
    long verdict_result;
    int verdict_mode;
    cert_authz_peer verdict;
} conn_cache;

/* The decision for one request, kept so that the access hook, the authz
 * provider and the fixups hook agree and log only once. */
typedef struct request_state {
    const cert_authz_policy *policy;
    const char *user_attr;
    cert_authz_decision decision;
    cert_authz_peer peer;
    cert_authz_identity *identity;   /* what was presented, or NULL */
    const char *subject;             /* RFC 4514, of a verified cert only */
    const char *rule;                /* "FILE:LINE", or NULL */
    const char *user;                /* CertAuthzUser value on allow */
    const char *reason;              /* the core's text, static */
    int report;                      /* decided under CertAuthzMode report */
    /* CertAuthzExport's variables, made at the first export (key, value
     * pairs), or NULL where the scope asks for none. */
    const apr_array_header_t *exports;
    apr_array_header_t *exported;
    /* Where export_decision put the four to five variables: in this
     * table, from entry env_first on, env_count of them (0: not known). */
    const apr_table_t *env_table;
    int env_first;
    int env_count;
    /* For the ErrorDocument of a refusal: the refusal, which the variables
     * show instead of this request's own decision (see refused_before). */
    struct request_state *about;
    int logged;
    /* `Require cert-authz` refused, but another Require line may still
     * grant: the deny line waits until the request is known refused. */
    int deny_pending;
} request_state;


/* What a CertAuthzRequestHeader sends or CertAuthzExport exports. */
typedef enum {
    ITEM_USER,
    ITEM_SUBJECT,
    ITEM_DECISION,
    ITEM_RULE,
    ITEM_REASON,
    ITEM_MODE,
    ITEM_GROUPS,
    ITEM_DAYS_LEFT,
    ITEM_CLIENT_CERT,
    ITEM_CLIENT_CERT_CHAIN,
    ITEM_ATTR                    /* a certificate attribute, by name */
} item_kind;

/* One item, and for CertAuthzExport the variable it becomes. */
typedef struct {
    item_kind kind;
    const char *attr;            /* ITEM_ATTR: the attribute's name */
    const char *env;             /* CERT_AUTHZ_... */
} export_item;

/* One CertAuthzRequestHeader NAME ITEM. */
typedef struct {
    const char *name;
    export_item item;
} request_header;


/* ---- configuration ------------------------------------------------------ */

static void *create_dir_conf(apr_pool_t *p, char *dir)
{
    cert_authz_dir_conf *conf = apr_pcalloc(p, sizeof(*conf));

    (void)dir;
    conf->enabled = CERT_AUTHZ_UNSET;
    conf->mode = CERT_AUTHZ_UNSET;
    return conf;
}

static void *merge_dir_conf(apr_pool_t *p, void *basev, void *addv)
{
    const cert_authz_dir_conf *base = basev;
    const cert_authz_dir_conf *add = addv;
    cert_authz_dir_conf *conf = apr_pcalloc(p, sizeof(*conf));

    conf->enabled = (add->enabled == CERT_AUTHZ_UNSET)
                    ? base->enabled : add->enabled;
    conf->mode = (add->mode == CERT_AUTHZ_UNSET) ? base->mode : add->mode;
    conf->user_attr = add->user_attr ? add->user_attr : base->user_attr;
    if (base->headers && add->headers) {
        conf->headers = apr_array_append(p, base->headers, add->headers);
    }
    else {
        conf->headers = add->headers ? add->headers : base->headers;
    }
    if (base->exports && add->exports) {
        conf->exports = apr_array_append(p, base->exports, add->exports);
    }
    else {
        conf->exports = add->exports ? add->exports : base->exports;
    }

    /* A scope that sets a policy or rules replaces the inherited policy as
     * a whole; merging rule sets would make a child unable to narrow. */
    conf->policy_ref = add->policy_ref ? add->policy_ref : base->policy_ref;

    conf->server = add->server ? add->server : base->server;
    conf->enabled_where = add->enabled_where ? add->enabled_where
                                             : base->enabled_where;
    conf->sources_where = add->policy_ref ? add->sources_where
                                          : base->sources_where;
    return conf;
}

static const char *directive_where(cmd_parms *cmd)
{
    return apr_psprintf(cmd->pool, "%s:%d", cmd->directive->filename,
                        cmd->directive->line_num);
}

/* Lists every scope that one of our directives touched, for the checks in
 * check_config.  The list hangs off the configuration pool, so it is made
 * afresh on every (re)start and needs no global state. */
static void register_scope(cmd_parms *cmd, cert_authz_dir_conf *conf)
{
    apr_array_header_t *scopes = NULL;
    const ap_directive_t *d;
    void *data = NULL;

    if (conf->registered) {
        return;
    }
    apr_pool_userdata_get(&data, CERT_AUTHZ_SCOPES_KEY, cmd->pool);
    scopes = data;
    if (!scopes) {
        scopes = apr_array_make(cmd->pool, 8, sizeof(cert_authz_dir_conf *));
        apr_pool_userdata_set(scopes, CERT_AUTHZ_SCOPES_KEY,
                              apr_pool_cleanup_null, cmd->pool);
    }
    APR_ARRAY_PUSH(scopes, cert_authz_dir_conf *) = conf;
    conf->registered = 1;
    conf->server = cmd->server;
    conf->path = cmd->path;
    for (d = cmd->directive->parent; d; d = d->parent) {
        if (!strcasecmp(d->directive, "<VirtualHost")) {
            conf->vhost = d;
            break;
        }
        /* <IfModule>, <IfDefine> and the like only say whether to read;
         * <If> is a section */
        if (!conf->section && (strncasecmp(d->directive, "<If", 3)
                               || !strcasecmp(d->directive, "<If"))) {
            conf->section = d;
        }
    }
}

static apr_status_t free_policy(void *data)
{
    cert_authz_policy_free(data);
    return APR_SUCCESS;
}

/* A builder that check_config never built (a failed configuration). */
static apr_status_t free_builder(void *data)
{
    cert_authz_dir_conf *conf = data;

    cert_authz_policy_builder_free(conf->builder);
    conf->builder = NULL;
    return APR_SUCCESS;
}

/* The core's error lines, with the trailing newline cut. */
static const char *core_errors(apr_pool_t *p, const char *errors,
                               cert_authz_result rc)
{
    size_t len = strlen(errors);

    while (len > 0 && (errors[len - 1] == '\n' || errors[len - 1] == '\r')) {
        len--;
    }
    if (len == 0) {
        return apr_pstrcat(p, "cert-authz: ", cert_authz_result_name(rc),
                           NULL);
    }
    return apr_pstrcat(p, "cert-authz: ", apr_pstrmemdup(p, errors, len),
                       NULL);
}

/*
 * The directives are accepted in .htaccess files (AllowOverride AuthConfig)
 * only to refuse them there with a reason: a policy is compiled once, when
 * the configuration is read, and whoever writes a .htaccess file must not
 * be able to turn the module off or replace the policy.  httpd's own
 * "not allowed here" would name neither.
 */
static const char *not_in_htaccess(cmd_parms *cmd)
{
    if (!ap_check_cmd_context(cmd, NOT_IN_HTACCESS)) {
        return NULL;
    }
    return apr_pstrcat(cmd->pool, cmd->cmd->name, " cannot be used in a "
                       ".htaccess file: cert-authz is configured only in "
                       "the server configuration (a <Directory> or "
                       "<Location> section), where its policy is compiled "
                       "at start-up and no .htaccess file can change it",
                       NULL);
}

/* Adds a CertAuthzPolicy file or CertAuthzRule statement to the scope's
 * builder; an error in it stops the configuration at this directive. */
static const char *add_source(cmd_parms *cmd, cert_authz_dir_conf *conf,
                              int is_file, const char *text)
{
    char errors[CERT_AUTHZ_ERROR_BUF];
    cert_authz_result rc;
    const char *err;

    err = not_in_htaccess(cmd);
    if (!err) {
        err = ap_check_cmd_context(cmd, NOT_IN_LIMIT);
    }
    if (err) {
        return err;
    }
    register_scope(cmd, conf);
    if (!conf->policy_ref) {
        rc = cert_authz_policy_builder_new(&conf->builder);
        if (rc != CERT_AUTHZ_OK) {
            return core_errors(cmd->pool, "", rc);
        }
        apr_pool_cleanup_register(cmd->pool, conf, free_builder,
                                  apr_pool_cleanup_null);
        conf->sources_where = directive_where(cmd);
        conf->policy_ref = &conf->policy;
    }
    errors[0] = '\0';
    if (is_file) {
        rc = cert_authz_policy_builder_add_file(conf->builder, text,
                                                strlen(text), errors,
                                                sizeof(errors));
    }
    else {
        rc = cert_authz_policy_builder_add_statement(
            conf->builder, text, strlen(text), cmd->directive->filename,
            strlen(cmd->directive->filename),
            (uint32_t)cmd->directive->line_num, errors, sizeof(errors));
    }
    return rc == CERT_AUTHZ_OK ? NULL : core_errors(cmd->pool, errors, rc);
}

static const char *set_policy_file(cmd_parms *cmd, void *dconf,
                                   const char *arg)
{
    const char *path = ap_server_root_relative(cmd->pool, arg);

    if (!path) {
        return apr_pstrcat(cmd->pool, "CertAuthzPolicy: invalid path '",
                           arg, "'", NULL);
    }
    return add_source(cmd, dconf, 1, path);
}

static const char *add_rule(cmd_parms *cmd, void *dconf, const char *arg)
{
    return add_source(cmd, dconf, 0, arg);
}

static const char *set_enabled(cmd_parms *cmd, void *dconf, int flag)
{
    cert_authz_dir_conf *conf = dconf;
    const char *err = not_in_htaccess(cmd);

    if (!err) {
        err = ap_check_cmd_context(cmd, NOT_IN_LIMIT);
    }
    if (err) {
        return err;
    }
    register_scope(cmd, conf);
    conf->enabled = flag;
    conf->enabled_where = directive_where(cmd);
    return NULL;
}

static const char *set_mode(cmd_parms *cmd, void *dconf, const char *arg)
{
    cert_authz_dir_conf *conf = dconf;
    const char *err = not_in_htaccess(cmd);

    if (err) {
        return err;
    }
    if (!strcasecmp(arg, "enforce")) {
        conf->mode = CERT_AUTHZ_MODE_ENFORCE;
    }
    else if (!strcasecmp(arg, "report")) {
        conf->mode = CERT_AUTHZ_MODE_REPORT;
    }
    else {
        return apr_pstrcat(cmd->pool, "CertAuthzMode must be 'enforce' or "
                           "'report', not '", arg, "'", NULL);
    }
    return NULL;
}

static const char *set_user_attr(cmd_parms *cmd, void *dconf, const char *arg)
{
    cert_authz_dir_conf *conf = dconf;
    const char *err = not_in_htaccess(cmd);

    if (err) {
        return err;
    }
    if (cert_authz_attr_check(arg, strlen(arg)) != CERT_AUTHZ_OK) {
        return apr_pstrcat(cmd->pool, "CertAuthzUser: '", arg, "' is not a "
                           "certificate attribute (e.g. subject.CN, "
                           "san.email, san.uri)", NULL);
    }
    conf->user_attr = arg;
    return NULL;
}

/* A header name as RFC 9110 has it: one or more token characters. */
static int is_token(const char *s)
{
    if (!*s) {
        return 0;
    }
    for (; *s; s++) {
        if (!apr_isalnum(*s) && !strchr("!#$%&'*+-.^_`|~", *s)) {
            return 0;
        }
    }
    return 1;
}

/*
 * Reads an item of CertAuthzRequestHeader or CertAuthzExport: one of the
 * words below, or any certificate attribute (subject.O, san.uri, serial,
 * fingerprint, issuer, ...).  NULL on success, else the error's text.
 */
static const char *parse_item(apr_pool_t *p, const char *word,
                              export_item *item)
{
    static const struct {
        const char *word;
        item_kind kind;
        const char *env;
    } words[] = {
        { "user", ITEM_USER, "CERT_AUTHZ_USER" },
        { "decision", ITEM_DECISION, "CERT_AUTHZ_DECISION" },
        { "rule", ITEM_RULE, "CERT_AUTHZ_RULE" },
        { "reason", ITEM_REASON, "CERT_AUTHZ_REASON" },
        { "mode", ITEM_MODE, "CERT_AUTHZ_MODE" },
        { "groups", ITEM_GROUPS, "CERT_AUTHZ_GROUPS" },
        { "days-left", ITEM_DAYS_LEFT, "CERT_AUTHZ_DAYS_LEFT" },
        { "client-cert", ITEM_CLIENT_CERT, "CERT_AUTHZ_CLIENT_CERT" },
        { "client-cert-chain", ITEM_CLIENT_CERT_CHAIN,
          "CERT_AUTHZ_CLIENT_CERT_CHAIN" },
    };
    char env[CERT_AUTHZ_ENV_NAME_MAX];
    size_t i, len;

    memset(item, 0, sizeof(*item));
    for (i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        if (!strcasecmp(word, words[i].word)) {
            item->kind = words[i].kind;
            item->env = words[i].env;
            return NULL;
        }
    }
    if (!strcasecmp(word, "subject")) {
        /* the whole subject, RFC 4514, as CERT_AUTHZ_SUBJECT */
        item->kind = ITEM_SUBJECT;
        item->env = ENV_SUBJECT;
        return NULL;
    }
    if (cert_authz_attr_export_name(word, strlen(word), env, sizeof(env),
                                    &len) != CERT_AUTHZ_OK) {
        return apr_pstrcat(p, "'", word, "' is neither an item (user, "
                           "subject, decision, rule, reason, mode, groups, "
                           "days-left, client-cert, client-cert-chain) nor "
                           "a certificate attribute (e.g. subject.O, "
                           "san.uri, serial, fingerprint, issuer)", NULL);
    }
    item->kind = ITEM_ATTR;
    item->attr = word;
    item->env = apr_pstrmemdup(p, env, len);
    return NULL;
}

static const char *add_request_header(cmd_parms *cmd, void *dconf,
                                      const char *name, const char *word)
{
    cert_authz_dir_conf *conf = dconf;
    request_header *h;
    export_item item;
    const char *err;

    err = not_in_htaccess(cmd);
    if (err) {
        return err;
    }
    if (!is_token(name)) {
        return apr_pstrcat(cmd->pool, "CertAuthzRequestHeader: '", name,
                           "' is not a header name", NULL);
    }
    err = parse_item(cmd->pool, word, &item);
    if (err) {
        return apr_pstrcat(cmd->pool, "CertAuthzRequestHeader ", name, ": ",
                           err, NULL);
    }
    if (!conf->headers) {
        conf->headers = apr_array_make(cmd->pool, 2, sizeof(*h));
    }
    h = apr_array_push(conf->headers);
    h->name = name;
    h->item = item;
    return NULL;
}

/* Whether `longer` is `name` followed by _N, the name of one of its values:
 * san.other.1.2.3's variable is san.other.1.2's fourth. */
static int names_a_value_of(const char *longer, const char *name)
{
    size_t n = strlen(name);

    if (strncmp(longer, name, n) || longer[n] != '_' || !longer[n + 1]) {
        return 0;
    }
    return strspn(longer + n + 1, "0123456789") == strlen(longer + n + 1);
}

static const char *add_export(cmd_parms *cmd, void *dconf, const char *word)
{
    cert_authz_dir_conf *conf = dconf;
    export_item item;
    const char *err = not_in_htaccess(cmd);
    int i;

    if (err) {
        return err;
    }
    err = parse_item(cmd->pool, word, &item);
    if (err) {
        return apr_pstrcat(cmd->pool, "CertAuthzExport: ", err, NULL);
    }
    switch (item.kind) {
    case ITEM_USER:
    case ITEM_SUBJECT:
    case ITEM_DECISION:
    case ITEM_RULE:
    case ITEM_REASON:
        return apr_pstrcat(cmd->pool, "CertAuthzExport: ", item.env,
                           " is always exported; list only what is not",
                           NULL);
    default:
        break;
    }
    if (!conf->exports) {
        conf->exports = apr_array_make(cmd->pool, 4, sizeof(export_item));
    }
    for (i = 0; item.kind == ITEM_ATTR && i < conf->exports->nelts; i++) {
        const export_item *other =
            &APR_ARRAY_IDX(conf->exports, i, export_item);

        if (other->kind == ITEM_ATTR
            && (names_a_value_of(item.env, other->env)
                || names_a_value_of(other->env, item.env))) {
            return apr_pstrcat(cmd->pool, "CertAuthzExport: ", item.attr,
                               " and ", other->attr, " would share variable "
                               "names (", item.env, ", ", other->env,
                               "_N); export one of them", NULL);
        }
    }
    *(export_item *)apr_array_push(conf->exports) = item;
    return NULL;
}

static const command_rec cert_authz_cmds[] = {
    AP_INIT_FLAG("CertAuthz", set_enabled, NULL,
                 RSRC_CONF | ACCESS_CONF | OR_AUTHCFG,
                 "'On' to refuse requests that the policy in effect does "
                 "not allow, by their verified client certificate; "
                 "default Off"),
    AP_INIT_TAKE1("CertAuthzPolicy", set_policy_file, NULL,
                  RSRC_CONF | ACCESS_CONF | OR_AUTHCFG,
                  "A policy file (relative to ServerRoot); with the "
                  "CertAuthzRule lines of the same scope it replaces the "
                  "inherited policy"),
    AP_INIT_TAKE1("CertAuthzRule", add_rule, NULL,
                  RSRC_CONF | ACCESS_CONF | OR_AUTHCFG,
                  "One quoted policy statement, e.g. \"allow GET /status "
                  "any\"; repeatable, and together with CertAuthzPolicy of "
                  "the same scope it replaces the inherited policy"),
    AP_INIT_TAKE1("CertAuthzMode", set_mode, NULL,
                  RSRC_CONF | ACCESS_CONF | OR_AUTHCFG,
                  "'enforce' (default) to refuse denied requests, or "
                  "'report' to only log and export the decision"),
    AP_INIT_TAKE1("CertAuthzUser", set_user_attr, NULL,
                  RSRC_CONF | ACCESS_CONF | OR_AUTHCFG,
                  "The certificate attribute (e.g. subject.CN) that becomes "
                  "REMOTE_USER and CERT_AUTHZ_USER when a request is "
                  "allowed"),
    AP_INIT_TAKE2("CertAuthzRequestHeader", add_request_header, NULL,
                  RSRC_CONF | ACCESS_CONF | OR_AUTHCFG,
                  "A request header for proxied backends and the item it "
                  "carries (user, subject, decision, rule, reason, mode, "
                  "groups, days-left, client-cert, client-cert-chain or a "
                  "certificate attribute); every header the client sent "
                  "under that name, in any case and with '-' or '_', is "
                  "removed first"),
    AP_INIT_ITERATE("CertAuthzExport", add_export, NULL,
                    RSRC_CONF | ACCESS_CONF | OR_AUTHCFG,
                    "More variables for the backend: groups, days-left, "
                    "client-cert, client-cert-chain, mode, or certificate "
                    "attributes such as subject.O or san.uri "
                    "(CERT_AUTHZ_SUBJECT_O, and CERT_AUTHZ_SAN_URI_0, _1, "
                    "... for each value); adds to the inherited list"),
    {NULL}
};


/* ---- logging bridge ----------------------------------------------------- */

static void core_log(void *userdata, cert_authz_log_level level,
                     const char *message, size_t message_len)
{
    const server_rec *s = userdata;
    int ap_level;

    switch (level) {
    case CERT_AUTHZ_LOG_ERROR: ap_level = APLOG_ERR;     break;
    case CERT_AUTHZ_LOG_WARN:  ap_level = APLOG_WARNING; break;
    case CERT_AUTHZ_LOG_INFO:  ap_level = APLOG_INFO;    break;
    case CERT_AUTHZ_LOG_DEBUG: ap_level = APLOG_DEBUG;   break;
    default:                   ap_level = APLOG_TRACE1;  break;
    }
    ap_log_error(APLOG_MARK, ap_level, 0, s, CERT_AUTHZ_LOGNO(00001)
                 "core: %.*s", (int)message_len, message);
}

/* The most verbose level that any server configured for this module. */
static cert_authz_log_level core_log_level(server_rec *s)
{
    int most = APLOG_EMERG;

    for (; s; s = s->next) {
        int level = ap_get_server_module_loglevel(s, APLOG_MODULE_INDEX);
        if (level > most) {
            most = level;
        }
    }
    if (most >= APLOG_TRACE1) {
        return CERT_AUTHZ_LOG_TRACE;
    }
    if (most >= APLOG_DEBUG) {
        return CERT_AUTHZ_LOG_DEBUG;
    }
    if (most >= APLOG_NOTICE) {
        return CERT_AUTHZ_LOG_INFO;
    }
    if (most >= APLOG_WARNING) {
        return CERT_AUTHZ_LOG_WARN;
    }
    return CERT_AUTHZ_LOG_ERROR;
}

/* The callback points at a server_rec of this configuration generation;
 * remove it with the generation (and before a reload unmaps us). */
static apr_status_t remove_log_callback(void *data)
{
    (void)data;
    cert_authz_set_log_callback(NULL, NULL, CERT_AUTHZ_LOG_ERROR);
    return APR_SUCCESS;
}


/* ---- configuration-time checks ------------------------------------------ */

static int server_has_policy(apr_array_header_t *scopes, server_rec *s)
{
    int i;

    for (i = 0; i < scopes->nelts; i++) {
        const cert_authz_dir_conf *c =
            APR_ARRAY_IDX(scopes, i, cert_authz_dir_conf *);
        if (c->policy && (s == NULL || c->server == s)) {
            return 1;
        }
    }
    return 0;
}

/* Whether a SSLEngine argument turns TLS on ("on", "optional" or a list of
 * addresses). */
static int engine_on(apr_pool_t *p, const char *args)
{
    return strcasecmp(ap_getword_conf(p, &args), "off") != 0;
}

/* Whether a SSLVerifyClient argument asks the client for a certificate. */
static int verifies(apr_pool_t *p, const char *args)
{
    const char *mode = ap_getword_conf(p, &args);

    return !strcasecmp(mode, "require") || !strcasecmp(mode, "optional")
           || !strcasecmp(mode, "optional_no_ca");
}

typedef int directive_test(apr_pool_t *p, const char *args);

/* Whether the directive `name` with arguments that `test` accepts is in the
 * list `d`, in any section of it, except in a <VirtualHost> (unless `hosts`).
 * httpd's tree holds only what is in effect: no false <IfModule>. */
static int has_directive(apr_pool_t *p, const ap_directive_t *d,
                         const char *name, directive_test *test, int hosts)
{
    for (; d; d = d->next) {
        if (!hosts && !strcasecmp(d->directive, "<VirtualHost")) {
            continue;
        }
        if (!strcasecmp(d->directive, name) && test(p, d->args)) {
            return 1;
        }
        if (has_directive(p, d->first_child, name, test, hosts)) {
            return 1;
        }
    }
    return 0;
}

/* The SSLEngine of the list `d`, outside any <VirtualHost> in it (the
 * last one wins, as in mod_ssl), or NULL. */
static const ap_directive_t *engine_of(const ap_directive_t *d)
{
    const ap_directive_t *found = NULL, *inner;

    for (; d; d = d->next) {
        if (!strcasecmp(d->directive, "<VirtualHost")) {
            continue;
        }
        if (!strcasecmp(d->directive, "SSLEngine")) {
            found = d;
        }
        inner = engine_of(d->first_child);
        found = inner ? inner : found;
    }
    return found;
}

/* Whether the virtual host `vhost` (NULL: the main server) has TLS: its own
 * SSLEngine, or else the main server's, which it inherits. */
static int tls_in(apr_pool_t *p, const ap_directive_t *vhost)
{
    const ap_directive_t *e = vhost ? engine_of(vhost->first_child) : NULL;

    e = e ? e : engine_of(ap_conftree);
    return e && engine_on(p, e->args);
}

/* Whether any virtual host in `d`, or the main server, has TLS. */
static int tls_anywhere(apr_pool_t *p, const ap_directive_t *d)
{
    for (; d; d = d->next) {
        if (!strcasecmp(d->directive, "<VirtualHost")
            ? tls_in(p, d) : tls_anywhere(p, d->first_child)) {
            return 1;
        }
    }
    return tls_in(p, NULL);
}

/* Whether a SSLVerifyClient that asks for a certificate is anywhere in the
 * virtual host `vhost` or the main server; for the main server's scopes
 * (NULL), in any virtual host, to which they apply too. */
static int verify_in(apr_pool_t *p, const ap_directive_t *vhost)
{
    if (!vhost) {
        return has_directive(p, ap_conftree, "SSLVerifyClient", verifies, 1);
    }
    return has_directive(p, vhost->first_child, "SSLVerifyClient", verifies, 0)
           || has_directive(p, ap_conftree, "SSLVerifyClient", verifies, 0);
}

/*
 * A warning of check_config.  `apache2 -t` prints it at once.  At start-up
 * httpd reads its configuration twice, and before the second pass opens
 * the error log a daemon's stderr is /dev/null: the second pass keeps the
 * warning for post_config, which logs it.
 */
static void config_warning(apr_pool_t *pconf, server_rec *s,
                           const char *message)
{
    apr_array_header_t *pending;
    void *data = NULL;

    if (ap_state_query(AP_SQ_RUN_MODE) == AP_SQ_RM_CONFIG_TEST) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "%s", message);
        return;
    }
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG) {
        return;
    }
    apr_pool_userdata_get(&data, CERT_AUTHZ_WARNINGS_KEY, pconf);
    pending = data;
    if (!pending) {
        pending = apr_array_make(pconf, 2, sizeof(const char *));
        apr_pool_userdata_set(pending, CERT_AUTHZ_WARNINGS_KEY,
                              apr_pool_cleanup_null, pconf);
    }
    APR_ARRAY_PUSH(pending, const char *) = apr_pstrdup(pconf, message);
}

/* Warns about each <VirtualHost> in `d` without TLS, to which the main
 * server's `CertAuthz On` at `where` applies too. */
static void warn_plain_hosts(apr_pool_t *pconf, apr_pool_t *p,
                             const ap_directive_t *d, server_rec *s,
                             const char *where)
{
    for (; d; d = d->next) {
        if (strcasecmp(d->directive, "<VirtualHost")) {
            warn_plain_hosts(pconf, p, d->first_child, s, where);
        }
        else if (!tls_in(p, d)) {
            config_warning(pconf, s, apr_psprintf(p,
                           CERT_AUTHZ_LOGNO(00041) "%s: CertAuthz On applies "
                           "to the virtual host at %s:%d too, which has no "
                           "SSLEngine on: every request to it is refused "
                           "(turn CertAuthz off in it if that is not meant)",
                           where, d->filename, d->line_num));
        }
    }
}

/* Whether `c` is a <Location "PATH"> (not a regular expression), which
 * applies to the URIs that start with PATH. */
static int plain_location(const cert_authz_dir_conf *c)
{
    return c->section && c->path && !strcasecmp(c->section->directive,
                                                "<Location")
           && strncmp(c->section->args, "~", 1) != 0;
}

/*
 * Whether a policy may be in effect for some request that the enabled
 * scope `c` (with no sources of its own) applies to: one of the server
 * level or of any other kind of section may apply, and so may a plain
 * <Location> whose path contains c's or is contained in it.  The main
 * server's sections apply in every virtual host, and its scopes see every
 * host's.  Only the policies of sibling <Location> sections, which never
 * apply where c does, are excluded.
 */
static int policy_may_apply(apr_array_header_t *scopes, server_rec *s,
                            const cert_authz_dir_conf *c)
{
    int i;

    if (!plain_location(c)) {
        return 1;
    }
    for (i = 0; i < scopes->nelts; i++) {
        const cert_authz_dir_conf *o =
            APR_ARRAY_IDX(scopes, i, cert_authz_dir_conf *);

        if (!o->policy
            || (o->server != c->server && o->server != s && c->server != s)) {
            continue;
        }
        if (!plain_location(o)
            || !strncmp(c->path, o->path, strlen(o->path))
            || !strncmp(o->path, c->path, strlen(c->path))) {
            return 1;
        }
    }
    return 0;
}

/*
 * A scope that enforces where no client certificate can ever be verified
 * refuses every request: mod_ssl is not loaded, its virtual host has no
 * SSLEngine on, or no SSLVerifyClient require, optional or optional_no_ca
 * is in its host or the main server.  That is an error in either mode, as
 * in nginx: a report of nothing but refusals tells nothing either.  Which
 * sections apply is known only per request, so a SSLVerifyClient in any
 * section of the host counts.
 * A scope of the main server applies to every virtual host: an error only
 * when none has TLS or verifies, and a warning for each host without TLS
 * (a port-80 host that only redirects would answer 403).
 */
static int check_verification(apr_array_header_t *scopes, server_rec *s,
                              apr_pool_t *pconf, apr_pool_t *ptemp)
{
    int have_ssl = ap_find_linked_module("mod_ssl.c") != NULL;
    int i;

    for (i = 0; i < scopes->nelts; i++) {
        const cert_authz_dir_conf *c =
            APR_ARRAY_IDX(scopes, i, cert_authz_dir_conf *);
        const char *host, *why = NULL;

        if (c->enabled != 1) {
            continue;
        }
        host = c->vhost ? apr_psprintf(ptemp, "the virtual host at %s:%d",
                                       c->vhost->filename,
                                       c->vhost->line_num)
                        : "the main server or any virtual host";

        if (!c->policy && !policy_may_apply(scopes, s, c)) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                         CERT_AUTHZ_LOGNO(00042) "%s: CertAuthz On in "
                         "<Location \"%s\">, but no policy can be in effect "
                         "there: the only CertAuthzPolicy and CertAuthzRule "
                         "lines are in <Location> sections that neither "
                         "contain it nor lie within it",
                         c->enabled_where, c->path);
            return !OK;
        }
        if (!have_ssl) {
            why = "mod_ssl is not loaded";
        }
        else if (c->vhost ? !tls_in(ptemp, c->vhost)
                          : !tls_anywhere(ptemp, ap_conftree)) {
            why = apr_pstrcat(ptemp, "SSLEngine is not on in ", host, NULL);
        }
        else if (!verify_in(ptemp, c->vhost)) {
            why = apr_pstrcat(ptemp, "no SSLVerifyClient require, optional "
                              "or optional_no_ca is set in ", host, NULL);
        }

        if (why) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                         CERT_AUTHZ_LOGNO(00040) "%s: CertAuthz On, but %s: "
                         "no client certificate can be verified there, so "
                         "every request would be refused",
                         c->enabled_where, why);
            return !OK;
        }
        if (!c->vhost) {
            warn_plain_hosts(pconf, ptemp, ap_conftree, s, c->enabled_where);
        }
    }
    return OK;
}

/*
 * Runs after the whole configuration is read, also for `apache2 -t` and
 * before a graceful restart is signalled, so that every error here keeps a
 * running server on its old configuration.
 *
 *  1. Every scope with sources of its own builds its policy; errors that
 *     show only now (a group no source defines) stop here, with the
 *     core's FILE:LINE:COL.
 *  2. `CertAuthz On` where no policy can be in effect is an error.  Which
 *     <Location> sections merge is known only per request, so this checks
 *     what is decidable: a scope that turns the module on without a policy
 *     of its own, in a virtual host where neither the host nor the main
 *     server defines any policy (the main server's sections also apply to
 *     every virtual host).  The remaining cases are refused per request
 *     with a 500 and an error line (CA00020).
 *  3. An enforced scope whose own policy has no allow or deny statement.
 *  4. A scope where no client certificate can be verified (see
 *     check_verification).
 */
static int cert_authz_check_config(apr_pool_t *pconf, apr_pool_t *plog,
                                   apr_pool_t *ptemp, server_rec *s)
{
    apr_array_header_t *scopes;
    void *data = NULL;
    int i;

    (void)plog;
    apr_pool_userdata_get(&data, CERT_AUTHZ_SCOPES_KEY, pconf);
    scopes = data;
    if (!scopes) {
        return OK;
    }

    /* Each scope with sources of its own builds once, now that all are
     * read; the build frees the builder whatever the outcome. */
    for (i = 0; i < scopes->nelts; i++) {
        cert_authz_dir_conf *c = APR_ARRAY_IDX(scopes, i, cert_authz_dir_conf *);
        char errors[CERT_AUTHZ_ERROR_BUF];
        cert_authz_result rc;

        if (!c->builder) {
            continue;
        }
        errors[0] = '\0';
        rc = cert_authz_policy_builder_build(c->builder, errors,
                                             sizeof(errors), &c->policy);
        c->builder = NULL;
        if (rc != CERT_AUTHZ_OK) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                         CERT_AUTHZ_LOGNO(00002) "%s: %s", c->sources_where,
                         core_errors(ptemp, errors, rc));
            return !OK;
        }
        apr_pool_cleanup_register(pconf, c->policy, free_policy,
                                  apr_pool_cleanup_null);
    }

    for (i = 0; i < scopes->nelts; i++) {
        const cert_authz_dir_conf *c =
            APR_ARRAY_IDX(scopes, i, cert_authz_dir_conf *);
        size_t count = 0;

        if (c->enabled != 1) {
            continue;
        }
        if (!c->policy && !server_has_policy(scopes, c->server)
            && (c->server == s ? !server_has_policy(scopes, NULL)
                               : !server_has_policy(scopes, s))) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                         CERT_AUTHZ_LOGNO(00003) "%s: CertAuthz On, but no "
                         "CertAuthzPolicy or CertAuthzRule gives it a "
                         "policy", c->enabled_where);
            return !OK;
        }
        if (c->policy
            && cert_authz_policy_rule_count(c->policy, &count)
               == CERT_AUTHZ_OK
            && count == 0) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                         CERT_AUTHZ_LOGNO(00004) "%s: CertAuthz On, but the "
                         "policy of %s has no allow or deny statement",
                         c->enabled_where, c->sources_where);
            return !OK;
        }
    }
    return check_verification(scopes, s, pconf, ptemp);
}

static int cert_authz_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                                  apr_pool_t *ptemp, server_rec *s)
{
    apr_array_header_t *pending;
    void *data = NULL;
    int i;

    (void)plog;
    (void)ptemp;

    apr_pool_userdata_get(&data, CERT_AUTHZ_WARNINGS_KEY, pconf);
    pending = data;
    for (i = 0; pending && i < pending->nelts; i++) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "%s",
                     APR_ARRAY_IDX(pending, i, const char *));
    }

    cert_authz_set_log_callback(core_log, s, core_log_level(s));
    apr_pool_cleanup_register(pconf, NULL, remove_log_callback,
                              apr_pool_cleanup_null);

    /* httpd reads its configuration twice at startup; say hello once, and
     * once per restart. */
    if (ap_state_query(AP_SQ_MAIN_STATE) != AP_SQ_MS_CREATE_PRE_CONFIG) {
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s, CERT_AUTHZ_LOGNO(00005)
                     "cert-authz %s configured", cert_authz_version());
    }
    return OK;
}


/* ---- the identity cache of a connection --------------------------------- */

static apr_status_t identity_free_cleanup(void *data)
{
    cert_authz_identity_free(data);
    return APR_SUCCESS;
}

static apr_status_t conn_cache_cleanup(void *data)
{
    conn_cache *cache = data;

    cert_authz_identity_free(cache->current);
    cache->current = NULL;
    X509_free(cache->x509);
    cache->x509 = NULL;
    cache->ssl = NULL;
    return APR_SUCCESS;
}

/* The cache of a master connection, made on the connection's own thread
 * before any request runs: HTTP/2 streams only ever find it. */
static conn_cache *conn_cache_create(conn_rec *c)
{
    conn_cache *cache = ap_get_module_config(c->conn_config,
                                             &cert_authz_module);

    if (cache) {
        return cache;
    }
    cache = apr_pcalloc(c->pool, sizeof(*cache));
#if APR_HAS_THREADS
    if (apr_thread_mutex_create(&cache->lock, APR_THREAD_MUTEX_DEFAULT,
                                c->pool) != APR_SUCCESS) {
        ap_log_cerror(APLOG_MARK, APLOG_ERR, 0, c, CERT_AUTHZ_LOGNO(00006)
                      "cannot create the identity cache lock; certificates "
                      "on this connection are parsed per request");
        return NULL;
    }
#endif
    apr_pool_cleanup_register(c->pool, cache, conn_cache_cleanup,
                              apr_pool_cleanup_null);
    ap_set_module_config(c->conn_config, &cert_authz_module, cache);
    return cache;
}

static int cert_authz_pre_connection(conn_rec *c, void *csd)
{
    (void)csd;
    if (!c->master) {
        conn_cache_create(c);
    }
    return DECLINED;
}

/* mod_ssl's pre_connection may run before or after ours: make the cache
 * here too if needed. */
static int cert_authz_pre_handshake(conn_rec *c, SSL *ssl, int is_proxy)
{
    conn_cache *cache;

    if (is_proxy || c->master) {
        return DECLINED;
    }
    cache = conn_cache_create(c);
    if (cache) {
        cache->ssl = ssl;
    }
    return DECLINED;
}

static conn_cache *conn_cache_of(conn_rec *c)
{
    while (c->master) {
        c = c->master;
    }
    return ap_get_module_config(c->conn_config, &cert_authz_module);
}

/* Reads the certificate x509, or the PEM when x509 is NULL: an identity or
 * a refused certificate; NULL only when out of memory. */
/* The deepest verified chain read for ca.spki and ca.fingerprint. */
#define CERT_AUTHZ_CHAIN_MAX 16

/*
 * The chain of a resumed session's certificate, verified again against
 * the SSL's own store and parameters (OpenSSL keeps no verified chain
 * with a session), with a reference to each certificate for the caller;
 * NULL when it does not verify here.
 */
static STACK_OF(X509) *chain_again(SSL *ssl, X509 *x509)
{
    SSL_CTX *ctx = SSL_get_SSL_CTX(ssl);
    X509_STORE_CTX *xsc = X509_STORE_CTX_new();
    STACK_OF(X509) *chain = NULL;

    if (xsc
        && X509_STORE_CTX_init(xsc, SSL_CTX_get_cert_store(ctx), x509,
                               SSL_get_peer_cert_chain(ssl)) == 1
        && X509_STORE_CTX_set_default(xsc, "ssl_client") == 1
        && X509_VERIFY_PARAM_set1(X509_STORE_CTX_get0_param(xsc),
                                  SSL_get0_param(ssl)) == 1
        && X509_verify_cert(xsc) == 1) {
        chain = X509_STORE_CTX_get1_chain(xsc);
    }
    X509_STORE_CTX_free(xsc);
    ERR_clear_error();
    return chain;
}

/* The deepest verified chain read for ca.spki and ca.fingerprint. */
#define CERT_AUTHZ_CHAIN_MAX 16

/*
 * Reads the certificate x509, with the chain `ssl` verified when ssl is
 * not NULL, or the PEM when x509 is NULL: an identity or a refused
 * certificate.  NULL when out of memory, or when the verified chain cannot
 * be had whole (too deep, or a resumed session's that does not verify
 * again): without it a deny of a CA in it could not fire, so the request
 * is refused.
 */
static cert_authz_identity *read_identity(X509 *x509, const char *pem,
                                          SSL *ssl)
{
    cert_authz_identity *identity = NULL;
    STACK_OF(X509) *chain = ssl ? SSL_get0_verified_chain(ssl) : NULL;
    STACK_OF(X509) *owned = NULL;
    unsigned char *der = NULL, *ders[CERT_AUTHZ_CHAIN_MAX];
    size_t lens[CERT_AUTHZ_CHAIN_MAX];
    int der_len, len, i, n = 0, whole = 1;

    if (!x509) {
        cert_authz_identity_from_pem(pem, strlen(pem), &identity);
        return identity;
    }
    if (ssl && !chain) {
        chain = owned = chain_again(ssl, x509);
        whole = (chain != NULL);
    }
    for (i = 0; whole && chain && i < sk_X509_num(chain); i++) {
        if (n == CERT_AUTHZ_CHAIN_MAX) {
            whole = 0;
            break;
        }
        ders[n] = NULL;
        if ((len = i2d_X509(sk_X509_value(chain, i), &ders[n])) <= 0) {
            whole = 0;
            break;
        }
        lens[n++] = (size_t)len;
    }
    der_len = whole ? i2d_X509(x509, &der) : 0;
    if (der_len > 0) {
        cert_authz_identity_from_der_chain(der, (size_t)der_len,
                                           (const uint8_t *const *)ders, lens,
                                           (size_t)n, &identity);
    }
    OPENSSL_free(der);
    while (n > 0) {
        OPENSSL_free(ders[--n]);
    }
    sk_X509_pop_free(owned, X509_free);
    return identity;
}

/* SSL_CLIENT_VERIFY as the core calls it: SUCCESS is a verified
 * certificate, NONE none, and anything else (FAILED:reason, GENEROUS for
 * optional_no_ca) a certificate that was sent but not trusted, read only
 * for the log. */
static cert_authz_peer verdict_of(request_rec *r)
{
    const char *verify = ap_ssl_var_lookup(r->pool, r->server, r->connection,
                                           r, "SSL_CLIENT_VERIFY");

    if (!verify || !*verify || !strcmp(verify, "NONE")) {
        return CERT_AUTHZ_PEER_NONE;
    }
    return strcmp(verify, "SUCCESS") ? CERT_AUTHZ_PEER_UNVERIFIED
                                     : CERT_AUTHZ_PEER_VERIFIED;
}

/* Hands `mine` (or NULL) to the request: freed with its pool. */
static cert_authz_identity *for_request(request_rec *r,
                                        cert_authz_identity *mine)
{
    if (mine) {
        apr_pool_cleanup_register(r->pool, mine, identity_free_cleanup,
                                  apr_pool_cleanup_null);
    }
    return mine;
}

/* The request that r is part of, whose pool outlives r's. */
static request_rec *top_request(request_rec *r)
{
    while (r->main) {
        r = r->main;
    }
    while (r->prev) {
        r = r->prev;
    }
    return r;
}

/*
 * The certificate request r is made under, verified or not, as a handle
 * that lives at least as long as the request, or NULL when there is none;
 * its verdict (SSL_CLIENT_VERIFY) in *verdict, and its subject in *subject
 * (NULL for a refused certificate).
 *
 * An HTTP/2 stream takes a handle of its own (freed with its pool): other
 * streams of the connection, on other threads, may move the cache on.  An
 * HTTP/1 request runs alone on its connection: it borrows the cache's
 * handle, without the lock, the clone and the free (a third of the
 * module's instructions per request), and a handle the cache replaces is
 * freed only with the whole request, which may still hold it.  A connection reads its
 * certificate once, and again only when the peer certificate changes
 * (renegotiation, TLS 1.3 post-handshake authentication): by its X509 when
 * mod_ssl gave us the SSL, else by comparing mod_ssl's SSL_CLIENT_CERT.
 * With the X509 the verdict is kept too (see conn_cache), so a keep-alive
 * request asks mod_ssl nothing.  A miss reads under the lock: the streams
 * of one connection wait a few microseconds instead of all reading.
 */
static cert_authz_identity *identity_for(request_rec *r,
                                         cert_authz_peer *verdict,
                                         const char **subject)
{
    conn_cache *cache = conn_cache_of(r->connection);
    int shared = (r->connection->master != NULL);
    cert_authz_identity *mine = NULL;
    const char *pem = NULL;
    X509 *peer = NULL;
    long result = 0;
    int mode = 0;
    int same = 0;

    if (cache && cache->ssl) {
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
        peer = SSL_get0_peer_certificate(cache->ssl);
#else
        peer = SSL_get_peer_certificate(cache->ssl);
        X509_free(peer);      /* the session keeps its own reference */
#endif
        result = SSL_get_verify_result(cache->ssl);
        mode = SSL_get_verify_mode(cache->ssl);
    }
    if (peer && !shared) {
        if (cache->current && cache->x509 == peer && cache->verdict_known
            && cache->verdict_result == result
            && cache->verdict_mode == mode) {
            *verdict = cache->verdict;
            *subject = cache->subject;
            return cache->current;
        }
    }
    else if (peer) {
#if APR_HAS_THREADS
        apr_thread_mutex_lock(cache->lock);
#endif
        if (cache->current && cache->x509 == peer && cache->verdict_known
            && cache->verdict_result == result
            && cache->verdict_mode == mode) {
            *verdict = cache->verdict;
            *subject = cache->subject;
            cert_authz_identity_clone(cache->current, &mine);
        }
#if APR_HAS_THREADS
        apr_thread_mutex_unlock(cache->lock);
#endif
        if (mine) {
            return for_request(r, mine);
        }
    }

    *subject = NULL;
    *verdict = verdict_of(r);
    if (*verdict == CERT_AUTHZ_PEER_NONE) {
        return NULL;
    }
    if (!peer) {
        pem = ap_ssl_var_lookup(r->pool, r->server, r->connection, r,
                                "SSL_CLIENT_CERT");
        if (!pem || !*pem) {
            return NULL;
        }
    }
    if (!cache) {
        mine = read_identity(peer, pem, NULL);
    }
    else {
#if APR_HAS_THREADS
        apr_thread_mutex_lock(cache->lock);
#endif
        if (cache->current && peer) {
            /* read again with the verified chain once it is verified */
            same = (cache->x509 == peer
                    && cache->chained == (*verdict == CERT_AUTHZ_PEER_VERIFIED));
        }
        else if (cache->current && !cache->x509) {
            cert_authz_identity_is_certificate(cache->current, pem,
                                               strlen(pem), &same);
        }
        if (!same) {
            int chained = peer && *verdict == CERT_AUTHZ_PEER_VERIFIED;
            cert_authz_identity *fresh =
                read_identity(peer, pem, chained ? cache->ssl : NULL);

            if (fresh && (!peer || X509_up_ref(peer) == 1)) {
                size_t len;

                if (cache->current && !shared) {
                    /* this request may have borrowed it (a subrequest
                     * can renegotiate) */
                    apr_pool_cleanup_register(top_request(r)->pool,
                                              cache->current,
                                              identity_free_cleanup,
                                              apr_pool_cleanup_null);
                }
                else {
                    cert_authz_identity_free(cache->current);
                }
                X509_free(cache->x509);
                cache->current = fresh;
                if (cert_authz_identity_subject(fresh, &cache->subject, &len)
                    != CERT_AUTHZ_OK) {
                    cache->subject = NULL;
                }
                cache->x509 = peer;
                cache->chained = chained;
                cache->verdict_known = 0;
                same = 1;
                ap_log_rerror(APLOG_MARK, APLOG_TRACE1, 0, r,
                              CERT_AUTHZ_LOGNO(00014) "read the client "
                              "certificate from %s", peer ? "the TLS session"
                                                          : "SSL_CLIENT_CERT");
            }
            else {
                if (!fresh && chained) {
                    /* the deny line says "malformed": say why, once */
                    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                                  CERT_AUTHZ_LOGNO(00016) "the client "
                                  "certificate's verified chain cannot be "
                                  "had whole (deeper than 16, or a resumed "
                                  "session's that does not verify again): "
                                  "refused");
                }
                cert_authz_identity_free(fresh);
            }
        }
        if (same) {
            cert_authz_identity_clone(cache->current, &mine);
            *subject = cache->subject;
            if (peer) {
                cache->verdict_known = 1;
                cache->verdict_result = result;
                cache->verdict_mode = mode;
                cache->verdict = *verdict;
            }
        }
#if APR_HAS_THREADS
        apr_thread_mutex_unlock(cache->lock);
#endif
    }
    return for_request(r, mine);
}


/* ---- decisions ---------------------------------------------------------- */

static const cert_authz_policy *policy_of(const cert_authz_dir_conf *conf)
{
    return conf->policy_ref ? *conf->policy_ref : NULL;
}

/*
 * The module's refusal that r is the ErrorDocument of, or NULL.  httpd
 * serves an ErrorDocument as an internal redirect, with the refused
 * request as r->prev, and its own variables would otherwise be the error
 * page's decision: an access log (%{CERT_AUTHZ_DECISION}e reads the final
 * request) would record a refused request as allowed.
 */
static request_state *refused_before(const request_rec *r)
{
    request_state *prev;

    if (!r->prev || r->prev->status != HTTP_FORBIDDEN) {
        return NULL;
    }
    prev = ap_get_module_config(r->prev->request_config, &cert_authz_module);
    if (!prev || prev->decision.allowed || prev->report) {
        return NULL;
    }
    return prev->about ? prev->about : prev;
}

/* The core's text of each reason, looked up once (see register_hooks). */
static const char *reason_texts[CERT_AUTHZ_REASON_COUNT];

static request_state *decide(request_rec *r, const cert_authz_dir_conf *conf)
{
    request_state *st = ap_get_module_config(r->request_config,
                                             &cert_authz_module);
    cert_authz_peer verdict = CERT_AUTHZ_PEER_NONE;
    const char *subject = NULL;
    const char *value;
    size_t len;

    if (st && st->policy == policy_of(conf)
        && st->user_attr == conf->user_attr) {
        return st;
    }
    /* Each field is set here or below: zeroing the whole (apr_pcalloc)
     * takes a string instruction of one step per word. */
    st = apr_palloc(r->pool, sizeof(*st));
    st->policy = policy_of(conf);
    st->user_attr = conf->user_attr;
    st->subject = NULL;
    st->rule = NULL;
    st->user = NULL;
    st->exported = NULL;
    st->env_table = NULL;
    st->env_first = 0;
    st->env_count = 0;
    st->logged = 0;
    st->deny_pending = 0;
    st->identity = identity_for(r, &verdict, &subject);
    st->peer = (verdict != CERT_AUTHZ_PEER_VERIFIED) ? verdict
               : st->identity ? CERT_AUTHZ_PEER_VERIFIED
               : CERT_AUTHZ_PEER_UNPARSABLE;

    if (cert_authz_decide(st->policy, st->identity, st->peer,
                          r->method, strlen(r->method),
                          r->uri, strlen(r->uri),
                          conf->user_attr,
                          conf->user_attr ? strlen(conf->user_attr) : 0,
                          &st->decision)
        != CERT_AUTHZ_OK) {
        memset(&st->decision, 0, sizeof(st->decision));
        st->decision.allowed = 0;
        st->decision.reason = CERT_AUTHZ_REASON_INTERNAL_ERROR;
    }

    /* Only a verified subject reaches the backend: as the identity keeps
     * it, a C string that lives as long as the request's handle. */
    if (st->peer == CERT_AUTHZ_PEER_VERIFIED && subject) {
        st->subject = subject;
    }
    else if (st->peer == CERT_AUTHZ_PEER_VERIFIED
             && cert_authz_identity_subject(st->identity, &value, &len)
                == CERT_AUTHZ_OK) {
        st->subject = value;
    }

    /* "FILE:LINE", as the core keeps it for every statement (see
     * cert_authz_decision): nothing to format per request. */
    if (st->decision.rule_file_len > 0) {
        st->rule = st->decision.rule_file;
    }
    st->reason = ((unsigned)st->decision.reason < CERT_AUTHZ_REASON_COUNT)
                 ? reason_texts[st->decision.reason]
                 : cert_authz_reason_text(st->decision.reason);
    st->report = (conf->mode == CERT_AUTHZ_MODE_REPORT);
    st->exports = conf->exports;
    st->about = r->prev ? refused_before(r) : NULL;

    /* The core names the value the allow authorized (SPEC §6.11): with two
     * CNs, the one the rule matched, never simply the first. */
    if (st->decision.allowed && conf->user_attr && st->subject) {
        if (st->decision.user) {
            st->user = apr_pstrmemdup(r->pool, st->decision.user,
                                      st->decision.user_len);
        }
        else {
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                          CERT_AUTHZ_LOGNO(00011) "CertAuthzUser %s: the "
                          "certificate of %s has no such attribute; "
                          "REMOTE_USER stays unset", conf->user_attr,
                          st->subject);
        }
    }

    ap_set_module_config(r->request_config, &cert_authz_module, st);
    return st;
}

/* A name of the module's variables, in any case (apr's tables fold it). */
static int is_module_name(const char *key)
{
    return (*key == 'C' || *key == 'c')
           && !strncasecmp(key, ENV_PREFIX, sizeof(ENV_PREFIX) - 1);
}

/* Whether the table holds any entry under such a name. */
static int has_module_names(const apr_table_t *t)
{
    const apr_array_header_t *arr = apr_table_elts(t);
    const apr_table_entry_t *e = (const apr_table_entry_t *)arr->elts;
    int i;

    for (i = 0; i < arr->nelts; i++) {
        if (is_module_name(e[i].key)) {
            return 1;
        }
    }
    return 0;
}

/* The identity whose values may reach a backend: a verified one only. */
static const cert_authz_identity *verified(const request_state *st)
{
    return st->peer == CERT_AUTHZ_PEER_VERIFIED ? st->identity : NULL;
}

/* The groups of the policy that the identity is in, comma-separated. */
static const char *groups_text(apr_pool_t *p, const request_state *st)
{
    apr_array_header_t *names = apr_array_make(p, 4, sizeof(char *));
    const char *name;
    size_t cursor = 0, len;

    if (!verified(st) || !st->policy) {
        return NULL;
    }
    while (cert_authz_policy_next_group(st->policy, verified(st), &cursor,
                                        &name, &len) == CERT_AUTHZ_OK) {
        APR_ARRAY_PUSH(names, char *) = apr_pstrmemdup(p, name, len);
    }
    return names->nelts ? apr_array_pstrcat(p, names, ',') : NULL;
}

/* The one value of an item for this request, or NULL when it has none; an
 * attribute with several values has none (which one would it be?). */
static const char *item_value(request_rec *r, const request_state *st,
                              const export_item *item)
{
    const cert_authz_identity *id = verified(st);
    const char *value;
    size_t len;
    apr_int64_t days;

    switch (item->kind) {
    case ITEM_USER:
        return st->decision.allowed ? st->user : NULL;
    case ITEM_SUBJECT:
        return st->subject;
    case ITEM_DECISION:
        return st->decision.allowed ? VALUE_ALLOW : VALUE_DENY;
    case ITEM_RULE:
        return st->rule;
    case ITEM_REASON:
        return st->reason;
    case ITEM_MODE:
        return st->report ? "report" : "enforce";
    case ITEM_GROUPS:
        return groups_text(r->pool, st);
    case ITEM_DAYS_LEFT:
        if (id && cert_authz_identity_days_left(id,
                                                apr_time_sec(r->request_time),
                                                &days) == CERT_AUTHZ_OK) {
            return apr_psprintf(r->pool, "%" APR_INT64_T_FMT, days);
        }
        return NULL;
    case ITEM_CLIENT_CERT:
    case ITEM_CLIENT_CERT_CHAIN:
        if (id && cert_authz_identity_item(id,
                                           item->kind == ITEM_CLIENT_CERT
                                           ? CERT_AUTHZ_ITEM_CLIENT_CERT
                                           : CERT_AUTHZ_ITEM_CLIENT_CERT_CHAIN,
                                           &value, &len) == CERT_AUTHZ_OK) {
            return apr_pstrmemdup(r->pool, value, len);
        }
        return NULL;
    case ITEM_ATTR: {
        const char *second;
        size_t second_len;

        if (id && cert_authz_identity_attr(id, item->attr, strlen(item->attr),
                                           0, &value, &len) == CERT_AUTHZ_OK
            && cert_authz_identity_attr(id, item->attr, strlen(item->attr),
                                        1, &second, &second_len)
               == CERT_AUTHZ_ERR_NOT_FOUND) {
            return apr_pstrmemdup(r->pool, value, len);
        }
        return NULL;
    }
    }
    return NULL;
}

/*
 * CertAuthzExport's variables for this request, made once: for an
 * attribute, NAME_0, NAME_1, ... for each value, and NAME itself only when
 * there is exactly one.
 */
static apr_array_header_t *exported_items(request_rec *r, request_state *st)
{
    const cert_authz_identity *id = verified(st);
    apr_array_header_t *out;
    int i;

    if (st->exported) {
        return st->exported;
    }
    out = apr_array_make(r->pool, 8, sizeof(apr_table_entry_t));
    for (i = 0; i < st->exports->nelts; i++) {
        const export_item *item = &APR_ARRAY_IDX(st->exports, i, export_item);
        apr_table_entry_t *e;
        const char *value;
        size_t n, len;

        if (item->kind == ITEM_ATTR) {
            for (n = 0; id && cert_authz_identity_attr(id, item->attr,
                                                       strlen(item->attr), n,
                                                       &value, &len)
                              == CERT_AUTHZ_OK; n++) {
                e = apr_array_push(out);
                e->key = apr_psprintf(r->pool, "%s_%" APR_SIZE_T_FMT,
                                      item->env, n);
                e->val = apr_pstrmemdup(r->pool, value, len);
            }
            if (n != 1) {
                continue;
            }
        }
        value = item_value(r, st, item);
        if (value) {
            e = apr_array_push(out);
            e->key = (char *)item->env;
            e->val = (char *)value;
        }
    }
    st->exported = out;
    return out;
}

/* Removes every variable named CERT_AUTHZ_*: the module's names are its
 * own, whoever set them (SetEnv, mod_rewrite's [E=]). */
static void unset_module_names(request_rec *r, apr_table_t *env)
{
    const apr_array_header_t *arr = apr_table_elts(env);
    const apr_table_entry_t *e = (const apr_table_entry_t *)arr->elts;
    apr_array_header_t *keys = apr_array_make(r->pool, 8, sizeof(char *));
    int i;

    for (i = 0; i < arr->nelts; i++) {
        if (is_module_name(e[i].key)) {
            APR_ARRAY_PUSH(keys, const char *) = e[i].key;
        }
    }
    for (i = 0; i < keys->nelts; i++) {
        apr_table_unset(env, APR_ARRAY_IDX(keys, i, const char *));
    }
}

/* The backend's view of the decision.  Set explicitly, not left to mod_ssl
 * or SetEnv, and set again in fixups where a module changed it since, so
 * that neither a request header (it would become HTTP_*) nor a configured
 * variable of the same name can stand in for the module's own. */
static void export_decision(request_rec *r, request_state *own)
{
    apr_table_t *env = r->subprocess_env;
    request_state *st = own->about ? own->about : own;
    const char *decision = st->decision.allowed ? VALUE_ALLOW : VALUE_DENY;
    const char *user = st->decision.allowed ? st->user : NULL;

    /* Where nothing is to be replaced or removed, the variables are
     * appended, without the search of every set and unset (apr's tables
     * compare in full the keys that share their first four letters, and
     * all of these do). */
    if (has_module_names(env)) {
        unset_module_names(r, env);
    }
    own->env_table = env;
    own->env_first = apr_table_elts(env)->nelts;
    apr_table_addn(env, ENV_DECISION, decision);
    apr_table_addn(env, ENV_REASON, st->reason);
    if (st->rule) {
        apr_table_addn(env, ENV_RULE, st->rule);
    }
    if (st->subject) {
        apr_table_addn(env, ENV_SUBJECT, st->subject);
    }
    if (user) {
        apr_table_addn(env, ENV_USER, user);
    }
    if (st->exports) {
        const apr_array_header_t *items = exported_items(r, st);
        const apr_table_entry_t *e = (const apr_table_entry_t *)items->elts;
        int i;

        for (i = 0; i < items->nelts; i++) {
            apr_table_addn(env, e[i].key, e[i].val);
        }
    }
    own->env_count = apr_table_elts(env)->nelts - own->env_first;
    if (user) {
        r->user = (char *)user;
    }
}

/*
 * Whether r->subprocess_env still holds exactly what export_decision set,
 * without a search of the whole table: the variables where it put them,
 * each under the module's own key (pointer) with the module's own value,
 * and no entry named CERT_AUTHZ_* after them.  None is before them: the
 * export removed any, and apr's tables only ever append a new key.  Any
 * change since (SetEnv, UnsetEnv, mod_rewrite's [E=]: a value replaced, an
 * entry removed, which moves the later ones, a variable added) makes
 * fixups export again.
 */
/* The next entry is the module's own (key, value): step over it. */
static APR_INLINE int own_entry(const apr_table_entry_t **at,
                                const apr_table_entry_t *end,
                                const char *key, const char *value)
{
    if (*at == end || (*at)->key != key || (*at)->val != value) {
        return 0;
    }
    (*at)++;
    return 1;
}

static int export_intact(request_rec *r, const request_state *st)
{
    const apr_array_header_t *arr = apr_table_elts(r->subprocess_env);
    const apr_table_entry_t *e = (const apr_table_entry_t *)arr->elts;
    const apr_table_entry_t *at, *end = e + arr->nelts;
    const char *user = st->decision.allowed ? st->user : NULL;

    if (st->exports || st->about) {
        /* CertAuthzExport's variables are set again, from what the first
         * export made: checking each would cost as much. */
        return 0;
    }
    if (st->env_table != r->subprocess_env || st->env_count == 0
        || st->env_first + st->env_count > arr->nelts) {
        return 0;
    }
    /* in export_decision's order */
    at = e + st->env_first;
    if (!own_entry(&at, end, ENV_DECISION,
                   st->decision.allowed ? VALUE_ALLOW : VALUE_DENY)
        || !own_entry(&at, end, ENV_REASON, st->reason)
        || (st->rule && !own_entry(&at, end, ENV_RULE, st->rule))
        || (st->subject && !own_entry(&at, end, ENV_SUBJECT, st->subject))
        || (user && !own_entry(&at, end, ENV_USER, user))
        || at - (e + st->env_first) != st->env_count) {
        return 0;
    }
    for (; at < end; at++) {
        if (is_module_name(at->key)) {
            return 0;
        }
    }
    return 1;
}

/* Header names as backends read them: case and '-' against '_' folded
 * (CGI, WSGI and PHP all turn X-Client-Id and X_Client_Id into
 * HTTP_X_CLIENT_ID). */
static int same_header(const char *a, const char *b)
{
    for (; *a && *b; a++, b++) {
        char ca = (*a == '_') ? '-' : apr_tolower(*a);
        char cb = (*b == '_') ? '-' : apr_tolower(*b);
        if (ca != cb) {
            return 0;
        }
    }
    return *a == *b;
}

static int collect_header(void *data, const char *key, const char *value)
{
    void **args = data;
    const char *name = args[0];
    apr_array_header_t *found = args[1];

    (void)value;
    if (same_header(key, name)) {
        APR_ARRAY_PUSH(found, const char *) = key;
    }
    return 1;
}

/*
 * CertAuthzRequestHeader: first every header the client sent under a name
 * a backend would read as the same (so that `X_Client_Identity: admin`
 * cannot ride next to the real X-Client-Identity), then the module's own
 * value, if there is one for this request.
 */
static void set_request_headers(request_rec *r, const cert_authz_dir_conf *conf,
                                request_state *st)
{
    apr_array_header_t *found;
    int i, j;

    if (!conf->headers) {
        return;
    }
    found = apr_array_make(r->pool, 2, sizeof(const char *));
    for (i = 0; i < conf->headers->nelts; i++) {
        const request_header *h =
            &APR_ARRAY_IDX(conf->headers, i, request_header);
        const char *value = NULL;
        void *args[2];

        args[0] = (void *)h->name;
        args[1] = found;
        found->nelts = 0;
        apr_table_do(collect_header, args, r->headers_in, NULL);
        for (j = 0; j < found->nelts; j++) {
            apr_table_unset(r->headers_in,
                            APR_ARRAY_IDX(found, j, const char *));
        }
        if (st) {
            value = item_value(r, st->about ? st->about : st, &h->item);
        }
        if (value) {
            apr_table_setn(r->headers_in, h->name, value);
        }
    }
}

/* The line itself, apart: the 2 KiB buffer and the call cost a request
 * whose line is not written nothing then. */
static void __attribute__((noinline))
write_decision_line(request_rec *r, const request_state *st,
                    cert_authz_line_kind kind, int level)
{
    char line[CERT_AUTHZ_LINE_MAX];
    size_t len;

    if (cert_authz_decision_line(&st->decision, kind, st->identity, st->peer,
                                 r->method, strlen(r->method),
                                 r->uri, strlen(r->uri),
                                 line, sizeof(line), &len) != CERT_AUTHZ_OK) {
        apr_cpystrn(line, "cert-authz: (no log line)", sizeof(line));
    }
    ap_log_rerror(APLOG_MARK, level, 0, r, "%s", line);
}

/*
 * The decision's line, in the core's words (the same as nginx's and the
 * CLI's), at the level httpd uses for the same event: error for a refusal,
 * as "client denied by server configuration", warn in report mode, debug
 * for an allow or a refusal that other Require lines outvoted.
 */
static void log_decision(request_rec *r, request_state *st,
                         cert_authz_line_kind kind)
{
    int level = (kind == CERT_AUTHZ_LINE_DENY) ? APLOG_ERR
                : (kind == CERT_AUTHZ_LINE_WOULD_DENY) ? APLOG_WARNING
                : APLOG_DEBUG;

    if (st->logged) {
        return;
    }
    st->logged = 1;
    if (APLOG_R_IS_LEVEL(r, level)) {
        write_decision_line(r, st, kind, level);
    }
}

/* What one decision's line is. */
static cert_authz_line_kind line_kind(const request_state *st, int report)
{
    return st->decision.allowed ? CERT_AUTHZ_LINE_ALLOW
           : report ? CERT_AUTHZ_LINE_WOULD_DENY : CERT_AUTHZ_LINE_DENY;
}

static int no_policy(request_rec *r, const char *what)
{
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, CERT_AUTHZ_LOGNO(00020)
                  "%s, but no CertAuthzPolicy or CertAuthzRule applies to "
                  "%s: refusing", what, r->uri);
    return HTTP_INTERNAL_SERVER_ERROR;
}

static int enforce(request_rec *r, const cert_authz_dir_conf *conf)
{
    request_state *st;
    int report = (conf->mode == CERT_AUTHZ_MODE_REPORT);

    if (!policy_of(conf)) {
        return no_policy(r, "CertAuthz On");
    }
    st = decide(r, conf);
    export_decision(r, st);
    log_decision(r, st, line_kind(st, report));
    if (st->decision.allowed || report) {
        /* DECLINED, not OK: under `Satisfy Any` an OK from an access hook
         * would skip authentication altogether (mod_ssl does the same). */
        return DECLINED;
    }
    return HTTP_FORBIDDEN;
}

static int cert_authz_check_access(request_rec *r)
{
    const cert_authz_dir_conf *conf =
        ap_get_module_config(r->per_dir_config, &cert_authz_module);

    if (conf->enabled != 1) {
        return DECLINED;
    }
    return enforce(r, conf);
}

/*
 * The refusal that `Satisfy Any` cannot lift.  Under Satisfy Any httpd
 * treats a refusal from the access_checker hooks as one vote: it goes on
 * to authentication and authorization, and `Require all granted` would
 * serve the request.  A refusal from access_checker_ex is final in every
 * Satisfy mode, so an enforced scope refuses here too.  Under Satisfy All
 * this hook is reached only when check_access allowed (it is decided then
 * and returns DECLINED); under Satisfy Any it is reached also when another
 * module's access hook refused before ours ran, and decides then.
 */
static int cert_authz_check_access_ex(request_rec *r)
{
    const cert_authz_dir_conf *conf =
        ap_get_module_config(r->per_dir_config, &cert_authz_module);
    const request_state *st = ap_get_module_config(r->request_config,
                                                   &cert_authz_module);

    if (conf->enabled != 1) {
        return DECLINED;
    }
    if (st && st->policy == policy_of(conf)
        && st->user_attr == conf->user_attr) {
        /* decided, exported and logged by check_access */
        return (st->decision.allowed || conf->mode == CERT_AUTHZ_MODE_REPORT)
               ? DECLINED : HTTP_FORBIDDEN;
    }
    return enforce(r, conf);
}

/*
 * httpd skips the access phase of an internal redirect or subrequest whose
 * merged configuration is the very one of its parent, even when the URI
 * differs.  A new URI is a new decision here, so a request that reaches
 * fixups without one is decided now.  Every decided request has its
 * variables checked, and set again where changed, after mod_env's SetEnv
 * and mod_ssl's fixups.
 */
static int cert_authz_fixups(request_rec *r)
{
    const cert_authz_dir_conf *conf =
        ap_get_module_config(r->per_dir_config, &cert_authz_module);
    request_state *st = ap_get_module_config(r->request_config,
                                             &cert_authz_module);

    if (!st && conf->enabled == 1) {
        int status = enforce(r, conf);
        if (status != DECLINED) {
            return status;
        }
        st = ap_get_module_config(r->request_config, &cert_authz_module);
    }
    if (!st) {
        /* Not decided here: the ErrorDocument of a refusal shows the
         * refusal; elsewhere in a scope the module serves (a provider that
         * another Require line made moot, CertAuthzExport where CertAuthz
         * is Off), nobody else's CERT_AUTHZ_* reaches the backend. */
        st = refused_before(r);
        if (st) {
            export_decision(r, st);
        }
        else if ((policy_of(conf) || conf->exports || conf->headers)
                 && has_module_names(r->subprocess_env)) {
            unset_module_names(r, r->subprocess_env);
        }
    }
    else if (!export_intact(r, st)) {
        export_decision(r, st);
    }
    else if (st->decision.allowed && st->user) {
        r->user = (char *)st->user;
    }
    set_request_headers(r, conf, st);
    return DECLINED;
}

/*
 * Fixups run only for a request that passed authorization: a deny of
 * `Require cert-authz` that is still pending here was outvoted by another
 * Require line (<RequireAny>), and gets no deny line.
 */
static int cert_authz_fixups_first(request_rec *r)
{
    request_state *st = ap_get_module_config(r->request_config,
                                             &cert_authz_module);

    if (st && st->deny_pending) {
        st->deny_pending = 0;
        log_decision(r, st, CERT_AUTHZ_LINE_NOT_GRANTED);
    }
    return DECLINED;
}

/*
 * At the end of a request: a pending deny of `Require cert-authz` that no
 * fixups settled belongs to a request that authorization refused.  That
 * is when the deny line is written, once, for the request (or the internal
 * redirect of it) that the provider refused.
 */
static int cert_authz_log_transaction(request_rec *r)
{
    request_rec *rr;

    for (rr = r; rr; rr = rr->next) {
        request_state *st = ap_get_module_config(rr->request_config,
                                                 &cert_authz_module);
        if (st && st->deny_pending) {
            st->deny_pending = 0;
            st->logged = 0;
            log_decision(rr, st, CERT_AUTHZ_LINE_DENY);
        }
    }
    return DECLINED;
}


/* ---- Require cert-authz ------------------------------------------------- */

static authz_status cert_authz_check_authorization(request_rec *r,
                                                   const char *require_line,
                                                   const void *parsed)
{
    const cert_authz_dir_conf *conf =
        ap_get_module_config(r->per_dir_config, &cert_authz_module);
    request_state *st;
    int report = (conf->mode == CERT_AUTHZ_MODE_REPORT);

    (void)require_line;
    (void)parsed;
    if (!policy_of(conf)) {
        no_policy(r, "Require cert-authz");
        return AUTHZ_GENERAL_ERROR;
    }
    st = decide(r, conf);
    export_decision(r, st);
    if (st->decision.allowed || report) {
        log_decision(r, st, line_kind(st, report));
    }
    else if (!st->logged) {
        /* One vote among the Require lines: logged as a deny only if the
         * request ends up refused (see cert_authz_log_transaction). */
        st->deny_pending = 1;
    }
    if (st->decision.allowed) {
        return AUTHZ_GRANTED;
    }
    /* Report mode never refuses, and must not grant what the other Require
     * lines refuse either: neutral leaves the outcome to them (as the nginx
     * module returns NGX_DECLINED under satisfy any). */
    return report ? AUTHZ_NEUTRAL : AUTHZ_DENIED;
}

static const char *cert_authz_parse_require_line(cmd_parms *cmd,
                                                 const char *require_line,
                                                 const void **parsed)
{
    (void)parsed;
    if (require_line && require_line[strspn(require_line, " \t")]) {
        return apr_pstrcat(cmd->pool, "Require cert-authz takes no "
                           "arguments (the policy comes from CertAuthzPolicy "
                           "and CertAuthzRule), not '", require_line, "'",
                           NULL);
    }
    return NULL;
}

static const authz_provider cert_authz_provider = {
    &cert_authz_check_authorization,
    &cert_authz_parse_require_line,
};


/* ---- module ------------------------------------------------------------- */

static void cert_authz_register_hooks(apr_pool_t *p)
{
    int i;

    for (i = 0; i < CERT_AUTHZ_REASON_COUNT; i++) {
        reason_texts[i] = cert_authz_reason_text((cert_authz_reason)i);
    }

    /* After mod_ssl's access hook, which renegotiates or requests the
     * certificate after the handshake for a per-location SSLVerifyClient:
     * only then is SSL_CLIENT_CERT the one this request is made under. */
    static const char *const after_ssl[] = { "mod_ssl.c", NULL };

    ap_hook_check_config(cert_authz_check_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(cert_authz_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_pre_connection(cert_authz_pre_connection, NULL, NULL,
                           APR_HOOK_MIDDLE);
    APR_OPTIONAL_HOOK(ssl, pre_handshake, cert_authz_pre_handshake, NULL, NULL,
                      APR_HOOK_MIDDLE);
    /* Per URI: the decision depends on the path, not only on the merged
     * configuration. */
    ap_hook_check_access(cert_authz_check_access, after_ssl, NULL,
                         APR_HOOK_MIDDLE, AP_AUTH_INTERNAL_PER_URI);
    /* First of a run-first hook: no other module's OK may skip it. */
    ap_hook_check_access_ex(cert_authz_check_access_ex, NULL, NULL,
                            APR_HOOK_REALLY_FIRST, AP_AUTH_INTERNAL_PER_URI);
    ap_hook_fixups(cert_authz_fixups_first, NULL, NULL, APR_HOOK_REALLY_FIRST);
    /* Really last: after mod_env's SetEnv and mod_headers' RequestHeader,
     * so that neither can stand in for the module's own values. */
    ap_hook_fixups(cert_authz_fixups, NULL, NULL, APR_HOOK_REALLY_LAST);
    ap_hook_log_transaction(cert_authz_log_transaction, NULL, NULL,
                            APR_HOOK_MIDDLE);
    ap_register_auth_provider(p, AUTHZ_PROVIDER_GROUP, "cert-authz",
                              AUTHZ_PROVIDER_VERSION, &cert_authz_provider,
                              AP_AUTH_INTERNAL_PER_URI);
}

module AP_MODULE_DECLARE_DATA cert_authz_module = {
    STANDARD20_MODULE_STUFF,
    create_dir_conf,            /* create per-directory config */
    merge_dir_conf,             /* merge per-directory configs */
    NULL,                       /* create per-server config */
    NULL,                       /* merge per-server configs */
    cert_authz_cmds,            /* configuration directives */
    cert_authz_register_hooks,  /* register hooks */
    AP_MODULE_FLAG_NONE         /* flags */
};
