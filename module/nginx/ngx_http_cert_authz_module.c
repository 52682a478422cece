
/*
 * ngx_http_cert_authz_module: authorizes requests by the client certificate
 * that nginx's TLS layer verified, against a cert-authz policy.
 *
 *     load_module modules/ngx_http_cert_authz_module.so;
 *
 *     http {
 *         cert_authz_policy  /etc/nginx/cert-authz.policy;
 *
 *         server {
 *             listen               443 ssl http2;
 *             ssl_verify_client    on;
 *             ssl_client_certificate /etc/nginx/clients-ca.pem;
 *
 *             location / {
 *                 cert_authz       on;
 *                 cert_authz_user  subject.CN;
 *                 proxy_set_header X-Client-Identity $cert_authz_user;
 *                 proxy_pass       http://127.0.0.1:8080;
 *             }
 *         }
 *     }
 *
 * The policy language, the certificate parsing and the decisions are the
 * Rust core's (include/cert_authz.h).  This file turns configuration into
 * compiled policies, a request into plain values (certificate, verified
 * flag, method, path), and the decision into an access-phase result, log
 * line and variables.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <cert_authz.h>


#if !(NGX_HTTP_SSL)
#error ngx_http_cert_authz_module needs nginx built with the SSL module
#endif


#define NGX_HTTP_CERT_AUTHZ_ENFORCE  0
#define NGX_HTTP_CERT_AUTHZ_REPORT   1


/* the deepest verified chain read for ca.spki and ca.fingerprint */
#define NGX_HTTP_CERT_AUTHZ_CHAIN  16

/* room for the core's compile errors, one FILE:LINE:COL line each */
#define NGX_HTTP_CERT_AUTHZ_ERRBUF  8192


/* what ngx_http_cert_authz_item_variable() shows */
#define NGX_HTTP_CERT_AUTHZ_VAR_REASON       1
#define NGX_HTTP_CERT_AUTHZ_VAR_MODE         2
#define NGX_HTTP_CERT_AUTHZ_VAR_GROUPS       3
#define NGX_HTTP_CERT_AUTHZ_VAR_ISSUER       4
#define NGX_HTTP_CERT_AUTHZ_VAR_SERIAL       5
#define NGX_HTTP_CERT_AUTHZ_VAR_FINGERPRINT  6
#define NGX_HTTP_CERT_AUTHZ_VAR_DAYS_LEFT    7
#define NGX_HTTP_CERT_AUTHZ_VAR_CERT         8
#define NGX_HTTP_CERT_AUTHZ_VAR_CHAIN        9


typedef struct {
    ngx_flag_t                 enable;
    ngx_uint_t                 mode;
    ngx_str_t                  user_attr;

    /*
     * this scope's own sources, added by each directive and built once
     * when the scope is merged; a scope with none inherits the policy whole
     */
    cert_authz_policy_builder *builder;
    cert_authz_policy         *policy;

    /* where "cert_authz on" was set, for the error when no policy is */
    ngx_str_t                  enable_file;
    ngx_uint_t                 enable_line;
} ngx_http_cert_authz_loc_conf_t;


/*
 * The identity parsed from a connection's peer certificate.  It hangs off
 * the pool of the client connection (the real one, not an HTTP/2 stream's
 * fake connection), so keep-alive requests and HTTP/2 streams share one
 * parse, and is freed with that pool.
 */
typedef struct {
    X509                      *cert;      /* a reference we hold */
    cert_authz_identity       *identity;  /* NULL only when out of memory */

    /*
     * A resumed session's certificate, verified again: the store it was
     * verified against (NULL: not yet) and whether it passed.  The store is
     * only compared, never used: the connection's SSL_CTX holds it.
     */
    X509_STORE                *reverified_store;
    ngx_uint_t                 reverified;

    /*
     * What the checks below found for this certificate under one server{}
     * (its SSL_CTX; NULL: not yet), so that later requests of the
     * connection to that server{} do not look again: none of it changes
     * while the connection keeps its certificate.
     */
    SSL_CTX                   *verdict_ctx;
    cert_authz_peer            verdict;
} ngx_http_cert_authz_conn_t;


/*
 * The core's $remote_user, kept so that locations without cert_authz see
 * nginx's own (see ngx_http_cert_authz_remote_user_variable).
 */
typedef struct {
    ngx_http_get_variable_pt   remote_user;

    /*
     * the server{} whose listeners were checked last: nginx merges all
     * locations of a server{} before the next one's, so each is checked once
     */
    ngx_http_core_srv_conf_t  *listens_checked;
} ngx_http_cert_authz_main_conf_t;


/*
 * The decision for one request, for the variables.  The identity and the
 * user point into the connection's identity cache, which keeps every
 * identity it read until the connection closes (see
 * ngx_http_cert_authz_parse()): $cert_authz_subject is read from the
 * identity only when something asks for it.
 */
typedef struct {
    cert_authz_decision        decision;
    const cert_authz_identity *identity;  /* a verified one, or NULL */
    ngx_str_t                  user;

    /* the policy and mode decided by, for $cert_authz_groups and _mode */
    const cert_authz_policy   *policy;
    ngx_uint_t                 mode;

    /* the URI decided: try_files may serve another one, see below */
    ngx_str_t                  uri;

    /* the path the decision is about: the URI, or a COPY's Destination */
    ngx_str_t                  path;
} ngx_http_cert_authz_ctx_t;


static ngx_int_t ngx_http_cert_authz_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_cert_authz_precontent_handler(
    ngx_http_request_t *r);
static void ngx_http_cert_authz_keep_refusal(ngx_http_request_t *r,
    ngx_http_cert_authz_ctx_t *ctx);
static void ngx_http_cert_authz_refusal_cleanup(void *data);
static ngx_http_cert_authz_ctx_t *ngx_http_cert_authz_shown(
    ngx_http_request_t *r);
static ngx_inline ngx_http_cert_authz_ctx_t *ngx_http_cert_authz_ctx(
    ngx_http_request_t *r);
static ngx_int_t ngx_http_cert_authz_decide(ngx_http_request_t *r,
    ngx_http_cert_authz_loc_conf_t *alcf, ngx_http_cert_authz_ctx_t *ctx);
static ngx_inline void ngx_http_cert_authz_decide_path(ngx_http_request_t *r,
    ngx_http_cert_authz_loc_conf_t *alcf, const cert_authz_identity *identity,
    cert_authz_peer peer, ngx_str_t *path, cert_authz_decision *decision);
static ngx_int_t ngx_http_cert_authz_destination(ngx_http_request_t *r,
    ngx_str_t *path);
static cert_authz_peer ngx_http_cert_authz_peer(ngx_http_request_t *r,
    const cert_authz_identity **identity);
static cert_authz_peer ngx_http_cert_authz_check_peer(ngx_http_request_t *r,
    ngx_connection_t *c, X509 *cert, ngx_http_cert_authz_conn_t *cc,
    const cert_authz_identity **identity);
static ngx_uint_t ngx_http_cert_authz_verified_here(ngx_http_request_t *r,
    ngx_ssl_conn_t *ssl_conn);
static ngx_uint_t ngx_http_cert_authz_verify_again(ngx_http_request_t *r,
    ngx_ssl_conn_t *ssl_conn, X509 *cert, SSL_CTX *ssl_ctx,
    STACK_OF(X509) **chain);
static void ngx_http_cert_authz_parse(ngx_http_cert_authz_conn_t *cc,
    X509 *cert, STACK_OF(X509) *chain, ngx_pool_t *pool, ngx_log_t *log);
static void ngx_http_cert_authz_identity_cleanup(void *data);
static ngx_http_cert_authz_conn_t *ngx_http_cert_authz_conn(
    ngx_connection_t *c);
static void ngx_http_cert_authz_conn_cleanup(void *data);
static void ngx_http_cert_authz_export(ngx_http_cert_authz_loc_conf_t *alcf,
    ngx_http_cert_authz_ctx_t *ctx, const cert_authz_identity *identity);
static ngx_int_t ngx_http_cert_authz_subject(ngx_http_cert_authz_ctx_t *ctx,
    ngx_str_t *subject);
static void ngx_http_cert_authz_log_deny(ngx_http_request_t *r,
    ngx_http_cert_authz_loc_conf_t *alcf, ngx_http_cert_authz_ctx_t *ctx,
    const cert_authz_identity *identity, cert_authz_peer peer);

static ngx_int_t ngx_http_cert_authz_value(ngx_http_variable_value_t *v,
    u_char *data, size_t len);
static ngx_int_t ngx_http_cert_authz_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_cert_authz_rule_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_cert_authz_subject_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_cert_authz_remote_user_variable(
    ngx_http_request_t *r, ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_cert_authz_item_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_cert_authz_groups(ngx_http_request_t *r,
    ngx_http_cert_authz_ctx_t *ctx, ngx_str_t *groups);
static ngx_int_t ngx_http_cert_authz_attr_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_cert_authz_check_attr_variables(ngx_conf_t *cf);
static ngx_int_t ngx_http_cert_authz_own_remote_user(ngx_conf_t *cf);

static char *ngx_http_cert_authz(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_cert_authz_policy(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_cert_authz_rule(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_cert_authz_user(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_cert_authz_add_source(ngx_conf_t *cf,
    ngx_http_cert_authz_loc_conf_t *alcf, ngx_str_t *file,
    ngx_str_t *statement);
static void ngx_http_cert_authz_log_errors(ngx_conf_t *cf, ngx_uint_t at,
    u_char *errors);
static ngx_int_t ngx_http_cert_authz_build(ngx_conf_t *cf,
    ngx_http_cert_authz_loc_conf_t *alcf);
static ngx_int_t ngx_http_cert_authz_check_listens(ngx_conf_t *cf,
    ngx_http_cert_authz_loc_conf_t *conf, ngx_http_core_srv_conf_t *cscf);
static void ngx_http_cert_authz_builder_cleanup(void *data);
static void ngx_http_cert_authz_policy_cleanup(void *data);
static void ngx_http_cert_authz_log(void *userdata,
    cert_authz_log_level level, const char *message, size_t message_len);

static void *ngx_http_cert_authz_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_cert_authz_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_cert_authz_merge_loc_conf(ngx_conf_t *cf,
    void *parent, void *child);
static ngx_int_t ngx_http_cert_authz_preconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_cert_authz_init(ngx_conf_t *cf);


static ngx_conf_enum_t  ngx_http_cert_authz_modes[] = {
    { ngx_string("enforce"), NGX_HTTP_CERT_AUTHZ_ENFORCE },
    { ngx_string("report"), NGX_HTTP_CERT_AUTHZ_REPORT },
    { ngx_null_string, 0 }
};


static ngx_command_t  ngx_http_cert_authz_commands[] = {

    { ngx_string("cert_authz"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_http_cert_authz,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_cert_authz_loc_conf_t, enable),
      NULL },

    { ngx_string("cert_authz_policy"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_cert_authz_policy,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("cert_authz_rule"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_cert_authz_rule,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("cert_authz_mode"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_cert_authz_loc_conf_t, mode),
      &ngx_http_cert_authz_modes },

    { ngx_string("cert_authz_user"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_cert_authz_user,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_cert_authz_module_ctx = {
    ngx_http_cert_authz_preconfiguration,  /* preconfiguration */
    ngx_http_cert_authz_init,              /* postconfiguration */

    ngx_http_cert_authz_create_main_conf,  /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_cert_authz_create_loc_conf,   /* create location configuration */
    ngx_http_cert_authz_merge_loc_conf     /* merge location configuration */
};


ngx_module_t  ngx_http_cert_authz_module = {
    NGX_MODULE_V1,
    &ngx_http_cert_authz_module_ctx,       /* module context */
    ngx_http_cert_authz_commands,          /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


/*
 * The variables are not cacheable: a value read before the access phase
 * (in a rewrite-phase "set", say) must not stand for the decision.
 */
static ngx_http_variable_t  ngx_http_cert_authz_vars[] = {

    { ngx_string("cert_authz_decision"), NULL,
      ngx_http_cert_authz_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("cert_authz_rule"), NULL,
      ngx_http_cert_authz_rule_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("cert_authz_subject"), NULL,
      ngx_http_cert_authz_subject_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("cert_authz_user"), NULL,
      ngx_http_cert_authz_variable,
      offsetof(ngx_http_cert_authz_ctx_t, user),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("cert_authz_reason"), NULL,
      ngx_http_cert_authz_item_variable, NGX_HTTP_CERT_AUTHZ_VAR_REASON,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("cert_authz_mode"), NULL,
      ngx_http_cert_authz_item_variable, NGX_HTTP_CERT_AUTHZ_VAR_MODE,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("cert_authz_groups"), NULL,
      ngx_http_cert_authz_item_variable, NGX_HTTP_CERT_AUTHZ_VAR_GROUPS,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("cert_authz_issuer"), NULL,
      ngx_http_cert_authz_item_variable, NGX_HTTP_CERT_AUTHZ_VAR_ISSUER,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("cert_authz_serial"), NULL,
      ngx_http_cert_authz_item_variable, NGX_HTTP_CERT_AUTHZ_VAR_SERIAL,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("cert_authz_fingerprint"), NULL,
      ngx_http_cert_authz_item_variable, NGX_HTTP_CERT_AUTHZ_VAR_FINGERPRINT,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("cert_authz_days_left"), NULL,
      ngx_http_cert_authz_item_variable, NGX_HTTP_CERT_AUTHZ_VAR_DAYS_LEFT,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("cert_authz_client_cert"), NULL,
      ngx_http_cert_authz_item_variable, NGX_HTTP_CERT_AUTHZ_VAR_CERT,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("cert_authz_client_cert_chain"), NULL,
      ngx_http_cert_authz_item_variable, NGX_HTTP_CERT_AUTHZ_VAR_CHAIN,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    /* $cert_authz_attr_san_uri, $cert_authz_attr_subject_ou_1, ... */
    { ngx_string("cert_authz_attr_"), NULL,
      ngx_http_cert_authz_attr_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE|NGX_HTTP_VAR_PREFIX, 0 },

      ngx_http_null_variable
};


static ngx_str_t  ngx_http_cert_authz_allow = ngx_string("allow");
static ngx_str_t  ngx_http_cert_authz_deny = ngx_string("deny");


static ngx_int_t
ngx_http_cert_authz_handler(ngx_http_request_t *r)
{
    ngx_int_t                        rc;
    ngx_http_core_loc_conf_t        *clcf;
    ngx_http_cert_authz_ctx_t       *ctx;
    ngx_http_cert_authz_loc_conf_t  *alcf;

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_cert_authz_module);

    if (!alcf->enable) {
        return NGX_DECLINED;
    }

    /*
     * Every pass decides afresh: an internal redirect clears the context
     * and comes back here with a new URI, which is a new decision.
     */

    ctx = ngx_http_cert_authz_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_cert_authz_decide(r, alcf, ctx);

    if (rc != NGX_HTTP_FORBIDDEN) {
        return rc;
    }

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    if (clcf->satisfy == NGX_HTTP_SATISFY_ANY) {

        /*
         * An enforced refusal is final.  Under "satisfy any" the access
         * phase takes NGX_HTTP_FORBIDDEN as one vote, which an NGX_OK of
         * another access module would lift: end the request here, as the
         * phase checker ends it on any other status.
         */

        ngx_http_finalize_request(r, NGX_HTTP_FORBIDDEN);
        return NGX_DONE;
    }

    return NGX_HTTP_FORBIDDEN;
}


/*
 * The precontent phase, after try_files (see ngx_http_cert_authz_init()),
 * makes the decision hold for what is served:
 *
 * - under "satisfy any" an access module that runs before this one (one
 *   loaded after it) and allows ends the access phase before this module
 *   is asked: the request is decided here, and an enforced refusal is a
 *   403 all the same;
 * - an enforced refusal that got here anyway is a 403, logged already;
 * - try_files may serve another file than the URI that was decided, in
 *   the same location and without a new location lookup (its last
 *   parameter, an internal redirect, comes back through the access
 *   phase): the URI served is decided again.
 *
 * Subrequests (SSI, mirror, auth_request) skip the access phase by nginx's
 * design: as nginx's access modules, this one decides nothing for them.
 */

static ngx_int_t
ngx_http_cert_authz_precontent_handler(ngx_http_request_t *r)
{
    ngx_int_t                        rc;
    ngx_http_cert_authz_ctx_t       *ctx;
    ngx_http_cert_authz_loc_conf_t  *alcf;

    if (r != r->main) {
        return NGX_DECLINED;
    }

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_cert_authz_module);

    if (!alcf->enable || alcf->policy == NULL) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_cert_authz_module);

    if (ctx == NULL || ctx->uri.data == NULL) {
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "cert_authz: not asked in the access phase: "
                       "deciding now");

        ctx = ngx_http_cert_authz_ctx(r);
        if (ctx == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

    } else if (ctx->decision.allowed != 1
               && alcf->mode == NGX_HTTP_CERT_AUTHZ_ENFORCE)
    {
        return NGX_HTTP_FORBIDDEN;

    } else if (r->uri.len == ctx->uri.len
               && (r->uri.data == ctx->uri.data
                   || ngx_memcmp(r->uri.data, ctx->uri.data, r->uri.len)
                      == 0))
    {
        return NGX_DECLINED;

    } else {
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "cert_authz: \"%V\" is served as \"%V\": "
                       "deciding again", &ctx->uri, &r->uri);
    }

    rc = ngx_http_cert_authz_decide(r, alcf, ctx);

    if (rc == NGX_OK) {
        /* NGX_OK would end the phase and skip its other handlers */
        return NGX_DECLINED;
    }

    return rc;
}


/*
 * the request's context, made on first use: the decision fills it before
 * anything can read it
 */

static ngx_inline ngx_http_cert_authz_ctx_t *
ngx_http_cert_authz_ctx(ngx_http_request_t *r)
{
    ngx_http_cert_authz_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_cert_authz_module);

    if (ctx == NULL) {
        ctx = ngx_palloc(r->pool, sizeof(ngx_http_cert_authz_ctx_t));
        if (ctx == NULL) {
            return NULL;
        }

        ngx_http_set_ctx(r, ctx, ngx_http_cert_authz_module);
    }

    return ctx;
}


/*
 * Decides on the request as it stands (r->uri, and the Destination of a
 * COPY or MOVE) and sets the variables.  Returns NGX_OK on an allow,
 * NGX_HTTP_FORBIDDEN on a refusal, NGX_DECLINED on a would-be refusal in
 * report mode; each refusal is logged.
 */

static ngx_int_t
ngx_http_cert_authz_decide(ngx_http_request_t *r,
    ngx_http_cert_authz_loc_conf_t *alcf, ngx_http_cert_authz_ctx_t *ctx)
{
    ngx_int_t                   rc;
    ngx_str_t                   destination;
    cert_authz_peer             peer;
    cert_authz_decision         decision;
    const cert_authz_identity  *identity;

    /*
     * every field is set here or by decide_path() before anything can
     * return (and a variable read it)
     */

    ctx->identity = NULL;
    ngx_str_null(&ctx->user);
    ctx->policy = alcf->policy;
    ctx->mode = alcf->mode;

    /* the buffer stays as it is when try_files sets another URI */
    ctx->uri = r->uri;
    ctx->path = r->uri;

    identity = NULL;
    peer = ngx_http_cert_authz_peer(r, &identity);

    ngx_http_cert_authz_decide_path(r, alcf, identity, peer, &r->uri,
                                    &ctx->decision);

    /*
     * COPY and MOVE also write to their Destination, which nginx's dav
     * module (or a proxied WebDAV server) takes from a header, with no
     * access check of its own: the request is allowed only if the policy
     * allows the same method on that path too.  Apache's mod_dav asks the
     * access checkers in a subrequest.
     */

    if (ctx->decision.allowed == 1
        && (r->method & (NGX_HTTP_COPY|NGX_HTTP_MOVE)))
    {
        rc = ngx_http_cert_authz_destination(r, &destination);

        if (rc == NGX_ERROR) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (rc == NGX_OK) {
            ngx_http_cert_authz_decide_path(r, alcf, identity, peer,
                                            &destination, &decision);

        } else {
            ngx_memzero(&decision, sizeof(cert_authz_decision));
            decision.allowed = 0;
            decision.reason = CERT_AUTHZ_REASON_BAD_PATH;
        }

        if (decision.allowed != 1) {
            ctx->decision = decision;
            ctx->path = destination;
        }
    }

    /* only a verified certificate's subject and user reach the variables */

    ngx_http_cert_authz_export(alcf, ctx,
                               peer == CERT_AUTHZ_PEER_VERIFIED
                               ? identity : NULL);

    if (ctx->decision.allowed == 1) {

#if (NGX_DEBUG)
        if (r->connection->log->log_level & NGX_LOG_DEBUG_HTTP) {
            ngx_str_t  subject;

            (void) ngx_http_cert_authz_subject(ctx, &subject);

            ngx_log_debug5(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "cert_authz: allowed: %V %V, subject \"%V\", "
                           "rule %*s",
                           &r->method_name, &r->uri, &subject,
                           ctx->decision.rule_file_len,
                           ctx->decision.rule_file);
        }
#endif

        /* in report mode too: under "satisfy any" an allow grants */
        return NGX_OK;
    }

    ngx_http_cert_authz_log_deny(r, alcf, ctx, identity, peer);

    /*
     * report mode never refuses, and under "satisfy any" leaves a would-be
     * refusal to the other access modules, as Apache's provider is neutral
     */

    if (alcf->mode == NGX_HTTP_CERT_AUTHZ_REPORT) {
        return NGX_DECLINED;
    }

    ngx_http_cert_authz_keep_refusal(r, ctx);

    return NGX_HTTP_FORBIDDEN;
}


/*
 * An error_page for a refusal is an internal redirect, which clears the
 * request's module contexts: the refusal is kept in a pool cleanup (the
 * pool outlives the redirect, as the realip module keeps its context), so
 * that the variables of the error page, and the access log written after
 * it, show the refusal and not the error page's own decision.
 */

static void
ngx_http_cert_authz_keep_refusal(ngx_http_request_t *r,
    ngx_http_cert_authz_ctx_t *ctx)
{
    ngx_pool_cleanup_t  *cln;

    if (r->error_page) {
        /* the error page's own refusal: the request's is kept already */
        return;
    }

    cln = ngx_pool_cleanup_add(r->pool, sizeof(ngx_http_cert_authz_ctx_t));
    if (cln == NULL) {
        return;
    }

    ngx_memcpy(cln->data, ctx, sizeof(ngx_http_cert_authz_ctx_t));
    cln->handler = ngx_http_cert_authz_refusal_cleanup;
}


static void
ngx_http_cert_authz_refusal_cleanup(void *data)
{
    /* nothing to free: the handler only marks the refusal's cleanup */
}


/* The decision the variables show: the refusal on an error page for one. */

static ngx_http_cert_authz_ctx_t *
ngx_http_cert_authz_shown(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t  *cln;

    if (r->error_page) {
        for (cln = r->pool->cleanup; cln; cln = cln->next) {
            if (cln->handler == ngx_http_cert_authz_refusal_cleanup) {
                return cln->data;
            }
        }
    }

    return ngx_http_get_module_ctx(r, ngx_http_cert_authz_module);
}


/* One decision on one path of the request; a failed call is a refusal. */

static ngx_inline void
ngx_http_cert_authz_decide_path(ngx_http_request_t *r,
    ngx_http_cert_authz_loc_conf_t *alcf, const cert_authz_identity *identity,
    cert_authz_peer peer, ngx_str_t *path, cert_authz_decision *decision)
{
    cert_authz_result  rc;

    rc = cert_authz_decide(alcf->policy, identity, peer,
                           (const char *) r->method_name.data,
                           r->method_name.len,
                           (const char *) path->data, path->len,
                           (const char *) alcf->user_attr.data,
                           alcf->user_attr.len,
                           decision);

    if (rc != CERT_AUTHZ_OK) {
        /* misuse of the ABI: never an allow */
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "cert_authz: decide failed: %s",
                      cert_authz_result_name(rc));
        ngx_memzero(decision, sizeof(cert_authz_decision));
        decision->allowed = 0;
        decision->reason = CERT_AUTHZ_REASON_INTERNAL_ERROR;
    }
}


/*
 * The path that a COPY or MOVE writes to, read from its Destination header
 * as nginx's dav module reads it (ngx_http_dav_copy_move_handler() of
 * nginx 1.22): an absolute path, or an absolute URI with the request's
 * scheme and Host, from its first "/" after the host; up to a "?"; then
 * percent-decoded, as ngx_http_parse_unsafe_uri() decodes it.  The dav
 * module checks only for "..", the core refuses every other ambiguous
 * path.  NGX_DECLINED: no header, several, or one the dav module finds no
 * path in; *path is then the header's value, if one, for the log.
 */

static ngx_int_t
ngx_http_cert_authz_destination(ngx_http_request_t *r, ngx_str_t *path)
{
    u_char           *p, *last, *src, *dst;
    size_t            len;
    ngx_str_t         scheme;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h, *destination;

    ngx_str_null(path);

    destination = NULL;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len != sizeof("Destination") - 1
            || ngx_strncasecmp(h[i].key.data, (u_char *) "Destination",
                               sizeof("Destination") - 1)
               != 0)
        {
            continue;
        }

        if (destination != NULL) {
            /* the dav module takes the first, another server may not */
            ngx_str_null(path);
            return NGX_DECLINED;
        }

        destination = &h[i];
        *path = h[i].value;
    }

    if (destination == NULL || destination->value.len == 0) {
        return NGX_DECLINED;
    }

    p = destination->value.data;
    last = p + destination->value.len;

    if (p[0] != '/') {

        if (r->connection->ssl) {
            ngx_str_set(&scheme, "https://");

        } else {
            ngx_str_set(&scheme, "http://");
        }

        len = r->headers_in.server.len;

        if (len == 0
            || (size_t) (last - p) < scheme.len + len
            || ngx_strncmp(p, scheme.data, scheme.len) != 0
            || ngx_strncmp(p + scheme.len, r->headers_in.server.data, len)
               != 0)
        {
            return NGX_DECLINED;
        }

        p = ngx_strlchr(p + scheme.len + len, last, '/');

        if (p == NULL) {
            return NGX_DECLINED;
        }
    }

    src = ngx_strlchr(p, last, '?');

    if (src != NULL) {
        last = src;
    }

    len = last - p;

    if (ngx_strlchr(p, last, '%') == NULL) {
        path->data = p;
        path->len = len;
        return NGX_OK;
    }

    dst = ngx_pnalloc(r->pool, len);
    if (dst == NULL) {
        return NGX_ERROR;
    }

    path->data = dst;
    src = p;

    ngx_unescape_uri(&dst, &src, len, 0);

    path->len = dst - path->data;

    return NGX_OK;
}


/*
 * What nginx knows about the request's peer certificate.  Only a
 * certificate that nginx verified under the request's own server{} counts:
 * "ssl_verify_client optional_no_ca" lets others reach the request, and a
 * certificate verified under another server{} may too (see below); they
 * are PEER_UNVERIFIED.
 */

static cert_authz_peer
ngx_http_cert_authz_peer(ngx_http_request_t *r,
    const cert_authz_identity **identity)
{
    X509                        *cert;
    SSL_CTX                     *server_ctx;
    cert_authz_peer              peer;
    ngx_connection_t            *c;
    ngx_http_ssl_srv_conf_t     *sscf;
    ngx_http_cert_authz_conn_t  *cc;

    c = r->connection;

#if (NGX_HTTP_V2)
    /*
     * An HTTP/2 stream runs on a fake connection with its own short-lived
     * pool; the identity belongs to the client connection under it.
     */
    if (r->stream) {
        c = r->stream->connection->connection;
    }
#endif

    if (c->ssl == NULL || c->ssl->connection == NULL) {
        return CERT_AUTHZ_PEER_NONE;
    }

#if (OPENSSL_VERSION_NUMBER >= 0x30000000L)
    cert = SSL_get0_peer_certificate(c->ssl->connection);
#else
    cert = SSL_get_peer_certificate(c->ssl->connection);
    if (cert) {
        /* the session holds a reference as long as the connection */
        X509_free(cert);
    }
#endif

    if (cert == NULL) {
        return CERT_AUTHZ_PEER_NONE;
    }

    cc = ngx_http_cert_authz_conn(c);
    if (cc == NULL) {
        /* out of memory: refused, as any internal failure */
        return CERT_AUTHZ_PEER_UNPARSABLE;
    }

    /*
     * HTTP/2 streams of one connection may be requests to different
     * server{}s: the verdict is kept for the server{} it was found for.
     */

    sscf = ngx_http_get_module_srv_conf(r, ngx_http_ssl_module);
    server_ctx = sscf->ssl.ctx;

    if (cc->cert == cert && server_ctx != NULL
        && cc->verdict_ctx == server_ctx)
    {
        *identity = cc->identity;
        return cc->verdict;
    }

    peer = ngx_http_cert_authz_check_peer(r, c, cert, cc, identity);

    if (cc->cert == cert) {
        cc->verdict = peer;
        cc->verdict_ctx = server_ctx;
    }

    return peer;
}


/* The checks of ngx_http_cert_authz_peer(), once per certificate. */

static cert_authz_peer
ngx_http_cert_authz_check_peer(ngx_http_request_t *r, ngx_connection_t *c,
    X509 *cert, ngx_http_cert_authz_conn_t *cc,
    const cert_authz_identity **identity)
{
    SSL_CTX         *ssl_ctx;
    ngx_uint_t       verified, reverified;
    X509_STORE      *store;
    STACK_OF(X509)  *chain;

    /*
     * Read once per connection, verified or not (an unverified one only
     * for the log line).  A renegotiation (TLS 1.2) or post-handshake
     * authentication (TLS 1.3) may change the certificate within a
     * connection: the cache holds a reference to its certificate, so a
     * different pointer is a different certificate.
     */

    verified = (SSL_get_verify_result(c->ssl->connection) == X509_V_OK);

    /*
     * A verified certificate is read with the chain the handshake verified
     * (ca.spki, ca.fingerprint, issuer.spki); a resumed session has none,
     * and gets the one verified again below.
     */

    if (cc->cert != cert) {
        ngx_http_cert_authz_parse(cc, cert,
                                  verified
                                  ? SSL_get0_verified_chain(c->ssl->connection)
                                  : NULL,
                                  c->pool, r->connection->log);
    }

    if (cc->identity == NULL) {
        return CERT_AUTHZ_PEER_UNPARSABLE;
    }

    *identity = cc->identity;

    if (!verified) {
        return CERT_AUTHZ_PEER_UNVERIFIED;
    }

    if (!ngx_http_cert_authz_verified_here(r, c->ssl->connection)) {
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "cert_authz: the client certificate was not verified "
                       "under this server's settings");
        return CERT_AUTHZ_PEER_UNVERIFIED;
    }

    if (SSL_session_reused(c->ssl->connection)) {

        /* the SSL_CTX is the request's server{}'s, as checked above */

        ssl_ctx = SSL_get_SSL_CTX(c->ssl->connection);
        store = SSL_CTX_get_cert_store(ssl_ctx);

        if (store == NULL) {
            return CERT_AUTHZ_PEER_UNVERIFIED;
        }

        if (cc->reverified_store != store) {
            chain = NULL;
            reverified = ngx_http_cert_authz_verify_again(r,
                             c->ssl->connection, cert, ssl_ctx, &chain);

            if (reverified) {
                /* read again with the chain that was verified here */
                ngx_http_cert_authz_parse(cc, cert, chain, c->pool,
                                          r->connection->log);
                sk_X509_pop_free(chain, X509_free);

                if (cc->identity == NULL) {
                    return CERT_AUTHZ_PEER_UNPARSABLE;
                }

                *identity = cc->identity;
            }

            cc->reverified = reverified;
            cc->reverified_store = store;
        }

        if (!cc->reverified) {
            return CERT_AUTHZ_PEER_UNVERIFIED;
        }
    }

    return CERT_AUTHZ_PEER_VERIFIED;
}


/*
 * Whether the request's own server{} verified the peer certificate.  The
 * handshake verified it with the settings of the server{} that SNI chose,
 * or of the listener's default server without SNI; the request then names
 * its server{} in Host, and nginx refuses a different one (421) only when
 * SNI was sent.  A resumed session brings a certificate verified in an
 * earlier handshake: OpenSSL resumes it in the default server's SSL_CTX,
 * before the SNI callback switches to another one.  Tried with Debian's
 * nginx 1.22.1 and OpenSSL 3.0: a session made without SNI at the default
 * server resumes into any server{} of the listener, with TLS 1.2 and 1.3
 * (the CVE-2025-23419 fix rejects only a TLS 1.3 session of another name).
 */

static ngx_uint_t
ngx_http_cert_authz_verified_here(ngx_http_request_t *r,
    ngx_ssl_conn_t *ssl_conn)
{
    const char               *made, *now;
    ngx_http_ssl_srv_conf_t  *sscf;

    sscf = ngx_http_get_module_srv_conf(r, ngx_http_ssl_module);

    /* the configuration refuses a server without verification: in case */

    if (sscf->verify == 0) {
        return 0;
    }

    /* the handshake ran with this server{}'s certificates and CAs */

    if (sscf->ssl.ctx == NULL || SSL_get_SSL_CTX(ssl_conn) != sscf->ssl.ctx) {
        return 0;
    }

    if (!SSL_session_reused(ssl_conn)) {
        return 1;
    }

    /*
     * A session keeps the server name of the handshake that made it.  With
     * TLS 1.2 nginx chooses the server{} of a resumed session by that name
     * (SSL_get_servername() returns it); with TLS 1.3 by the name sent
     * now.  A session made under another name, or under none when one is
     * sent now (or the reverse), was verified elsewhere: refused, although
     * two names of one server{} would do.  A client resumes a session for
     * the name it made it for.
     */

    made = SSL_SESSION_get0_hostname(SSL_get0_session(ssl_conn));
    now = SSL_get_servername(ssl_conn, TLSEXT_NAMETYPE_host_name);

    if (made == NULL || now == NULL) {
        return made == now;
    }

    return ngx_strcmp(made, now) == 0;
}


/*
 * OpenSSL does not verify the certificate of a resumed session again: it
 * keeps the outcome of the handshake that made the session, under whatever
 * server{} that was.  nginx's session id context covers the certificates
 * and the CAs, not the CRL (ssl_crl) or ssl_verify_depth: through a shared
 * session cache or common ticket keys, a session made at a server{} of
 * another listener without a CRL resumes here, and so does one made before
 * a reload that added the CRL.  This verifies the certificate again as the
 * handshake would have here: against the server{}'s own store (its CAs and
 * CRLs, with nginx's CRL flags), with its depth, purpose and security
 * level.  A session keeps the client's certificate but, once stored in the
 * shared cache or a ticket, not the intermediates it sent: a certificate
 * that needs one the server does not have itself is refused.
 */

static ngx_uint_t
ngx_http_cert_authz_verify_again(ngx_http_request_t *r,
    ngx_ssl_conn_t *ssl_conn, X509 *cert, SSL_CTX *ssl_ctx,
    STACK_OF(X509) **chain)
{
    int                 ok, err;
    X509_STORE_CTX     *xsc;
    X509_VERIFY_PARAM  *param;

    xsc = X509_STORE_CTX_new();
    if (xsc == NULL) {
        ngx_ssl_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "cert_authz: X509_STORE_CTX_new() failed");
        return 0;
    }

    /* the intermediates the client sent, if the session still has them */

    if (X509_STORE_CTX_init(xsc, SSL_CTX_get_cert_store(ssl_ctx), cert,
                            SSL_get_peer_cert_chain(ssl_conn))
        != 1)
    {
        ngx_ssl_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "cert_authz: X509_STORE_CTX_init() failed");
        X509_STORE_CTX_free(xsc);
        return 0;
    }

    /* as OpenSSL's ssl_verify_cert_chain() sets up a server's check */

    param = X509_STORE_CTX_get0_param(xsc);

    if (X509_STORE_CTX_set_default(xsc, "ssl_client") != 1
        || X509_VERIFY_PARAM_set1(param, SSL_CTX_get0_param(ssl_ctx)) != 1)
    {
        ngx_ssl_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "cert_authz: setting up the verification failed");
        X509_STORE_CTX_free(xsc);
        return 0;
    }

    X509_VERIFY_PARAM_set_auth_level(param,
                                     SSL_CTX_get_security_level(ssl_ctx));

    ok = X509_verify_cert(xsc);
    err = X509_STORE_CTX_get_error(xsc);

    if (ok == 1) {
        /* a new reference to each: the caller frees them */
        *chain = X509_STORE_CTX_get1_chain(xsc);
    }

    X509_STORE_CTX_free(xsc);

    /* the lookups may leave errors that nginx would report later */
    ERR_clear_error();

    if (ok != 1) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "cert_authz: the client certificate of the resumed "
                      "session does not verify under this server's "
                      "settings: %d:%s",
                      err, X509_verify_cert_error_string(err));
        return 0;
    }

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "cert_authz: verified the resumed session's client "
                   "certificate again");

    return 1;
}


/*
 * Replaces the cached identity with that of cert.  A certificate the core
 * refuses is cached too, as a refused identity that says why: it stays
 * refused, and the deny line gives the reason.
 *
 * The identity replaced is freed with the connection, not now: a request
 * of the connection (an HTTP/2 stream, a log phase still to come) may
 * point into it.  nginx neither renegotiates nor asks for a certificate
 * after the handshake, so a connection's certificate does not change;
 * this is in case a TLS library ever changes it under nginx.
 */

static void
ngx_http_cert_authz_parse(ngx_http_cert_authz_conn_t *cc, X509 *cert,
    STACK_OF(X509) *chain, ngx_pool_t *pool, ngx_log_t *log)
{
    int                   len, clen, i, n, whole;
    u_char               *der, *ders[NGX_HTTP_CERT_AUTHZ_CHAIN];
    size_t                lens[NGX_HTTP_CERT_AUTHZ_CHAIN];
    cert_authz_result     rc;
    ngx_pool_cleanup_t   *cln;
    cert_authz_identity  *identity;

    if (cc->identity) {
        cln = ngx_pool_cleanup_add(pool, 0);

        if (cln == NULL) {
            /* out of memory: it cannot be freed safely, nor kept */
            ngx_log_error(NGX_LOG_ALERT, log, 0,
                          "cert_authz: leaking a replaced identity");

        } else {
            cln->handler = ngx_http_cert_authz_identity_cleanup;
            cln->data = cc->identity;
        }

        cc->identity = NULL;
    }

    ngx_http_cert_authz_conn_cleanup(cc);

    if (X509_up_ref(cert) != 1) {
        return;
    }

    cc->cert = cert;

    der = NULL;
    len = i2d_X509(cert, &der);

    if (len <= 0) {
        ngx_ssl_error(NGX_LOG_ALERT, log, 0, "cert_authz: i2d_X509() failed");
        return;
    }

    /* the chain's DER, up to a depth that no real chain reaches */

    n = 0;
    whole = 1;

    for (i = 0; chain && i < sk_X509_num(chain); i++) {

        if (n == NGX_HTTP_CERT_AUTHZ_CHAIN) {
            whole = 0;
            break;
        }

        ders[n] = NULL;
        clen = i2d_X509(sk_X509_value(chain, i), &ders[n]);

        if (clen <= 0) {
            whole = 0;
            break;
        }

        lens[n++] = (size_t) clen;
    }

    if (!whole) {
        /*
         * without the whole chain a deny of a CA in it could not fire:
         * no identity, so the request is refused
         */
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "cert_authz: the verified chain is deeper than %d "
                      "or cannot be read: refused",
                      NGX_HTTP_CERT_AUTHZ_CHAIN);

        for (i = 0; i < n; i++) {
            OPENSSL_free(ders[i]);
        }

        OPENSSL_free(der);
        return;
    }

    rc = cert_authz_identity_from_der_chain(der, len,
                                            (const uint8_t **) ders, lens,
                                            (size_t) n, &identity);

    for (i = 0; i < n; i++) {
        OPENSSL_free(ders[i]);
    }

    OPENSSL_free(der);

    if (rc != CERT_AUTHZ_OK) {
        ngx_log_error(NGX_LOG_ALERT, log, 0,
                      "cert_authz: reading the client certificate failed: %s",
                      cert_authz_result_name(rc));
        return;
    }

    cc->identity = identity;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, log, 0,
                   "cert_authz: parsed the client certificate, %d bytes",
                   len);
}


/*
 * The connection's identity cache, created on first use.  A pool cleanup
 * both frees it and finds it again: the connection has no field of ours,
 * and ex_data on the SSL object would need a free callback registered in
 * OpenSSL's global state, which outlives this module across a reload.
 */

static ngx_http_cert_authz_conn_t *
ngx_http_cert_authz_conn(ngx_connection_t *c)
{
    ngx_pool_cleanup_t          *cln;
    ngx_http_cert_authz_conn_t  *cc;

    for (cln = c->pool->cleanup; cln; cln = cln->next) {
        if (cln->handler == ngx_http_cert_authz_conn_cleanup) {
            return cln->data;
        }
    }

    cln = ngx_pool_cleanup_add(c->pool, sizeof(ngx_http_cert_authz_conn_t));
    if (cln == NULL) {
        return NULL;
    }

    cc = cln->data;
    cc->cert = NULL;
    cc->identity = NULL;
    cc->reverified_store = NULL;
    cc->reverified = 0;
    cc->verdict_ctx = NULL;
    cc->verdict = CERT_AUTHZ_PEER_UNVERIFIED;

    cln->handler = ngx_http_cert_authz_conn_cleanup;

    return cc;
}


static void
ngx_http_cert_authz_conn_cleanup(void *data)
{
    ngx_http_cert_authz_conn_t  *cc = data;

    cert_authz_identity_free(cc->identity);
    cc->identity = NULL;

    cc->reverified_store = NULL;
    cc->reverified = 0;
    cc->verdict_ctx = NULL;
    cc->verdict = CERT_AUTHZ_PEER_UNVERIFIED;

    if (cc->cert) {
        X509_free(cc->cert);
        cc->cert = NULL;
    }
}


static void
ngx_http_cert_authz_identity_cleanup(void *data)
{
    cert_authz_identity_free(data);
}


/*
 * What the variables show: the verified identity, read for
 * $cert_authz_subject only when something asks for it, and the user the
 * allow authorized, which points into it.
 */

static void
ngx_http_cert_authz_export(ngx_http_cert_authz_loc_conf_t *alcf,
    ngx_http_cert_authz_ctx_t *ctx, const cert_authz_identity *identity)
{
    ctx->identity = identity;

    if (identity == NULL || ctx->decision.allowed != 1
        || alcf->user_attr.len == 0)
    {
        return;
    }

    /*
     * the value the allow authorized, as the core names it: with two CNs
     * the one the rule matched, never simply the first
     */

    ctx->user.data = (u_char *) ctx->decision.user;
    ctx->user.len = ctx->decision.user_len;
}


/* The subject of the request's verified certificate; NGX_DECLINED: none. */

static ngx_int_t
ngx_http_cert_authz_subject(ngx_http_cert_authz_ctx_t *ctx,
    ngx_str_t *subject)
{
    size_t       len;
    const char  *value;

    ngx_str_null(subject);

    if (ctx->identity == NULL
        || cert_authz_identity_subject(ctx->identity, &value, &len)
           != CERT_AUTHZ_OK
        || len == 0)
    {
        return NGX_DECLINED;
    }

    subject->data = (u_char *) value;
    subject->len = len;

    return NGX_OK;
}


/*
 * One error-level line per deny, as the access module's "access forbidden
 * by rule", in the core's words (the same as Apache's and the CLI's); the
 * log context adds the client, server and request line.  The path is the
 * one refused: the URI, or the Destination of a COPY or MOVE (the request
 * line shows the URI then).
 */

static void
ngx_http_cert_authz_log_deny(ngx_http_request_t *r,
    ngx_http_cert_authz_loc_conf_t *alcf, ngx_http_cert_authz_ctx_t *ctx,
    const cert_authz_identity *identity, cert_authz_peer peer)
{
    size_t                len;
    ngx_uint_t            level;
    cert_authz_line_kind  kind;
    u_char                line[CERT_AUTHZ_LINE_MAX];

    if (alcf->mode == NGX_HTTP_CERT_AUTHZ_REPORT) {
        /* nothing is refused: a warning, as the Apache module gives */
        level = NGX_LOG_WARN;
        kind = CERT_AUTHZ_LINE_WOULD_DENY;

    } else {
        level = NGX_LOG_ERR;
        kind = CERT_AUTHZ_LINE_DENY;
    }

    if (r->connection->log->log_level < level) {
        return;
    }

    if (cert_authz_decision_line(&ctx->decision, kind, identity, peer,
                                 (const char *) r->method_name.data,
                                 r->method_name.len,
                                 (const char *) ctx->path.data, ctx->path.len,
                                 (char *) line, sizeof(line), &len)
        != CERT_AUTHZ_OK)
    {
        len = ngx_sprintf(line, "cert_authz: (no log line)") - line;
    }

    ngx_log_error(level, r->connection->log, 0, "%*s", len, line);
}


/*
 * A variable's value for this request: never cached (see the table), and
 * an empty one is "not found", so that log_format shows "-" and
 * proxy_set_header sends no header.
 */

static ngx_int_t
ngx_http_cert_authz_value(ngx_http_variable_value_t *v, u_char *data,
    size_t len)
{
    if (len == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->len = len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    v->data = data;

    return NGX_OK;
}


/* $cert_authz_decision, $cert_authz_user */

static ngx_int_t
ngx_http_cert_authz_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t                  *value;
    ngx_http_cert_authz_ctx_t  *ctx;

    ctx = ngx_http_cert_authz_shown(r);

    if (ctx == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    if (data == 0) {
        value = ctx->decision.allowed == 1 ? &ngx_http_cert_authz_allow
                                           : &ngx_http_cert_authz_deny;

    } else {
        value = (ngx_str_t *) ((u_char *) ctx + data);
    }

    return ngx_http_cert_authz_value(v, value->data, value->len);
}


/* $cert_authz_rule: FILE:LINE of the deciding statement, if one decided */

static ngx_int_t
ngx_http_cert_authz_rule_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_cert_authz_ctx_t  *ctx;

    ctx = ngx_http_cert_authz_shown(r);

    if (ctx == NULL || ctx->decision.rule_file_len == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    /* the core keeps "FILE:LINE" and a NUL for every deciding statement */

    return ngx_http_cert_authz_value(v, (u_char *) ctx->decision.rule_file,
                                     ngx_strlen(ctx->decision.rule_file));
}


/* $cert_authz_subject, RFC 4514, of a verified certificate */

static ngx_int_t
ngx_http_cert_authz_subject_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t                   subject;
    ngx_http_cert_authz_ctx_t  *ctx;

    ctx = ngx_http_cert_authz_shown(r);

    if (ctx == NULL || ngx_http_cert_authz_subject(ctx, &subject) != NGX_OK) {
        /* no subject: "-" in log_format, no proxied header */
        v->not_found = 1;
        return NGX_OK;
    }

    return ngx_http_cert_authz_value(v, subject.data, subject.len);
}


/*
 * $cert_authz_reason, _mode, _groups, _issuer, _serial, _fingerprint,
 * _days_left, _client_cert and _client_cert_chain.  The values of the
 * certificate come only from a verified one; each is made only when
 * something asks for it.
 */

static ngx_int_t
ngx_http_cert_authz_item_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                     *p;
    size_t                      len;
    int64_t                     days;
    ngx_str_t                   value;
    const char                 *text, *attr;
    cert_authz_item             item;
    ngx_http_cert_authz_ctx_t  *ctx;

    ctx = ngx_http_cert_authz_shown(r);

    if (ctx == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    ngx_str_null(&value);

    switch (data) {

    case NGX_HTTP_CERT_AUTHZ_VAR_REASON:
        text = cert_authz_reason_text(ctx->decision.reason);
        value.data = (u_char *) text;
        value.len = ngx_strlen(text);
        break;

    case NGX_HTTP_CERT_AUTHZ_VAR_MODE:
        if (ctx->mode == NGX_HTTP_CERT_AUTHZ_REPORT) {
            ngx_str_set(&value, "report");

        } else {
            ngx_str_set(&value, "enforce");
        }
        break;

    case NGX_HTTP_CERT_AUTHZ_VAR_GROUPS:
        if (ngx_http_cert_authz_groups(r, ctx, &value) != NGX_OK) {
            return NGX_ERROR;
        }
        break;

    case NGX_HTTP_CERT_AUTHZ_VAR_ISSUER:
    case NGX_HTTP_CERT_AUTHZ_VAR_SERIAL:
    case NGX_HTTP_CERT_AUTHZ_VAR_FINGERPRINT:
        attr = (data == NGX_HTTP_CERT_AUTHZ_VAR_ISSUER) ? "issuer"
               : (data == NGX_HTTP_CERT_AUTHZ_VAR_SERIAL) ? "serial"
               : "fingerprint";

        if (ctx->identity
            && cert_authz_identity_attr(ctx->identity, attr, ngx_strlen(attr),
                                        0, &text, &len)
               == CERT_AUTHZ_OK)
        {
            value.data = (u_char *) text;
            value.len = len;
        }
        break;

    case NGX_HTTP_CERT_AUTHZ_VAR_DAYS_LEFT:
        if (ctx->identity
            && cert_authz_identity_days_left(ctx->identity,
                                             (int64_t) ngx_time(), &days)
               == CERT_AUTHZ_OK)
        {
            p = ngx_pnalloc(r->pool, NGX_INT64_LEN);
            if (p == NULL) {
                return NGX_ERROR;
            }

            value.len = ngx_sprintf(p, "%L", (int64_t) days) - p;
            value.data = p;
        }
        break;

    default: /* NGX_HTTP_CERT_AUTHZ_VAR_CERT, NGX_HTTP_CERT_AUTHZ_VAR_CHAIN */
        item = (data == NGX_HTTP_CERT_AUTHZ_VAR_CERT)
               ? CERT_AUTHZ_ITEM_CLIENT_CERT
               : CERT_AUTHZ_ITEM_CLIENT_CERT_CHAIN;

        if (ctx->identity
            && cert_authz_identity_item(ctx->identity, item, &text, &len)
               == CERT_AUTHZ_OK)
        {
            value.data = (u_char *) text;
            value.len = len;
        }
        break;
    }

    return ngx_http_cert_authz_value(v, value.data, value.len);
}


/* The policy's groups that the verified identity is in, comma-separated. */

static ngx_int_t
ngx_http_cert_authz_groups(ngx_http_request_t *r,
    ngx_http_cert_authz_ctx_t *ctx, ngx_str_t *groups)
{
    u_char      *p;
    size_t       cursor, len, total;
    const char  *name;

    ngx_str_null(groups);

    if (ctx->identity == NULL || ctx->policy == NULL) {
        return NGX_OK;
    }

    /* two passes: the first measures, the second writes */

    total = 0;
    cursor = 0;

    while (cert_authz_policy_next_group(ctx->policy, ctx->identity, &cursor,
                                        &name, &len)
           == CERT_AUTHZ_OK)
    {
        total += len + 1;
    }

    if (total == 0) {
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, total);
    if (p == NULL) {
        return NGX_ERROR;
    }

    groups->data = p;
    cursor = 0;

    while (cert_authz_policy_next_group(ctx->policy, ctx->identity, &cursor,
                                        &name, &len)
           == CERT_AUTHZ_OK)
    {
        if (p != groups->data) {
            *p++ = ',';
        }

        p = ngx_cpymem(p, name, len);
    }

    groups->len = p - groups->data;

    return NGX_OK;
}


/*
 * $cert_authz_attr_NAME: NAME is an attribute with "_" for "." (san_uri,
 * subject_ou), and "_N" after it for its N-th value (subject_ou_1).
 * Without an index, an attribute with several values shows none: the
 * backend could not know which one the name stands for.
 */

static ngx_int_t
ngx_http_cert_authz_attr_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    size_t                      len, skip;
    ngx_str_t                  *name;
    const char                 *value;
    ngx_http_cert_authz_ctx_t  *ctx;

    name = (ngx_str_t *) data;
    skip = sizeof("cert_authz_attr_") - 1;

    ctx = ngx_http_cert_authz_shown(r);

    if (ctx == NULL || ctx->identity == NULL || name->len <= skip
        || cert_authz_identity_attr_by_variable(ctx->identity,
                                                (const char *) name->data
                                                + skip,
                                                name->len - skip,
                                                &value, &len)
           != CERT_AUTHZ_OK
        || len == 0)
    {
        v->not_found = 1;
        return NGX_OK;
    }

    return ngx_http_cert_authz_value(v, (u_char *) value, len);
}


/*
 * A $cert_authz_attr_NAME that names no attribute is a configuration
 * error, not a variable that is always empty.  The variables the
 * configuration uses are all indexed by now; ngx_http_variables_init_vars()
 * resolves them only after every postconfiguration.
 */

static ngx_int_t
ngx_http_cert_authz_check_attr_variables(ngx_conf_t *cf)
{
    size_t                      skip;
    ngx_uint_t                  i;
    ngx_hash_key_t             *key;
    ngx_http_variable_t        *v;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    skip = sizeof("cert_authz_attr_") - 1;

    /*
     * "set", "map", "geo" and the like define variables by name, and a
     * named variable takes precedence over a prefix one: a "set
     * $cert_authz_attr_subject_cn $http_x_user" would hand a backend the
     * client's choice under the module's name.
     */

    key = cmcf->variables_keys->keys.elts;

    for (i = 0; i < cmcf->variables_keys->keys.nelts; i++) {

        if (key[i].key.len >= skip
            && ngx_strncmp(key[i].key.data, "cert_authz_attr_", skip) == 0)
        {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "variable \"$%V\" is the cert_authz module's: "
                          "\"set\", \"map\" and the like cannot define it",
                          &key[i].key);
            return NGX_ERROR;
        }
    }

    v = cmcf->variables.elts;

    for (i = 0; i < cmcf->variables.nelts; i++) {

        if (v[i].name.len < skip
            || ngx_strncmp(v[i].name.data, "cert_authz_attr_", skip) != 0)
        {
            continue;
        }

        if (cert_authz_identity_attr_by_variable(NULL,
                                                 (const char *) v[i].name.data
                                                 + skip,
                                                 v[i].name.len - skip,
                                                 NULL, NULL)
            != CERT_AUTHZ_OK)
        {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "variable \"$%V\" names no certificate attribute "
                          "(write one with \"_\" for \".\", e.g. "
                          "$cert_authz_attr_san_uri or "
                          "$cert_authz_attr_subject_ou_1)", &v[i].name);
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * $remote_user where cert_authz is on: the certificate's user that was
 * authorized ($cert_authz_user), or nothing.  nginx's own takes the name
 * from any client's "Authorization: Basic" header, unchecked unless
 * auth_basic runs, and Debian's fastcgi_params hands it to PHP as
 * REMOTE_USER: next to the module's user a client could name its own.
 */

static ngx_int_t
ngx_http_cert_authz_remote_user_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_cert_authz_ctx_t        *ctx;
    ngx_http_cert_authz_loc_conf_t   *alcf;
    ngx_http_cert_authz_main_conf_t  *amcf;

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_cert_authz_module);

    if (!alcf->enable) {
        amcf = ngx_http_get_module_main_conf(r, ngx_http_cert_authz_module);
        return amcf->remote_user(r, v, data);
    }

    ctx = ngx_http_cert_authz_shown(r);

    if (ctx == NULL || ctx->decision.allowed != 1 || ctx->user.len == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    return ngx_http_cert_authz_value(v, ctx->user.data, ctx->user.len);
}


/*
 * Takes over $remote_user.  Runs in postconfiguration, before nginx
 * resolves the variables used by the configuration (fastcgi_param,
 * log_format) against the named ones, so every use gets our handler; not
 * cacheable, so that a value read before the access phase is not kept.
 */

static ngx_int_t
ngx_http_cert_authz_own_remote_user(ngx_conf_t *cf)
{
    ngx_uint_t                        i;
    ngx_hash_key_t                   *key;
    ngx_http_variable_t              *v;
    ngx_http_core_main_conf_t        *cmcf;
    ngx_http_cert_authz_main_conf_t  *amcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);
    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_cert_authz_module);

    key = cmcf->variables_keys->keys.elts;

    for (i = 0; i < cmcf->variables_keys->keys.nelts; i++) {

        if (key[i].key.len != sizeof("remote_user") - 1
            || ngx_strncmp(key[i].key.data, "remote_user",
                           sizeof("remote_user") - 1)
               != 0)
        {
            continue;
        }

        v = key[i].value;

        amcf->remote_user = v->get_handler;
        v->get_handler = ngx_http_cert_authz_remote_user_variable;
        v->flags |= NGX_HTTP_VAR_NOCACHEABLE;

        return NGX_OK;
    }

    ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                  "cert_authz: nginx has no $remote_user to take over");

    return NGX_ERROR;
}


/* cert_authz on|off: remembers where, for the error when no policy is set */

static char *
ngx_http_cert_authz(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_cert_authz_loc_conf_t *alcf = conf;

    char  *rv;

    rv = ngx_conf_set_flag_slot(cf, cmd, conf);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    alcf->enable_file = cf->conf_file->file.name;
    alcf->enable_line = cf->conf_file->line;

    return NGX_CONF_OK;
}


/* cert_authz_policy FILE: relative to the prefix, as nginx's "include" */

static char *
ngx_http_cert_authz_policy(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_cert_authz_loc_conf_t *alcf = conf;

    ngx_str_t  *value, name;

    value = cf->args->elts;
    name = value[1];

    if (name.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "empty policy file name");
        return NGX_CONF_ERROR;
    }

    if (ngx_conf_full_name(cf->cycle, &name, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return ngx_http_cert_authz_add_source(cf, alcf, &name, NULL);
}


/* cert_authz_rule "STATEMENT": one line of the policy language, inline */

static char *
ngx_http_cert_authz_rule(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_cert_authz_loc_conf_t *alcf = conf;

    ngx_str_t  *value;

    value = cf->args->elts;

    return ngx_http_cert_authz_add_source(cf, alcf, NULL, &value[1]);
}


/* cert_authz_user ATTR: an attribute name the core knows */

static char *
ngx_http_cert_authz_user(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_cert_authz_loc_conf_t *alcf = conf;

    ngx_str_t  *value;

    if (alcf->user_attr.data != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (cert_authz_attr_check((const char *) value[1].data, value[1].len)
        != CERT_AUTHZ_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" is not a certificate attribute "
                           "(subject.CN, san.email, serial, ...)",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    alcf->user_attr = value[1];

    return NGX_CONF_OK;
}


/*
 * Adds a policy file or an inline statement to the scope's builder, made
 * on the first one.  An error in it is this directive's: nginx shows it
 * with the directive's own position after the core's FILE:LINE:COL.
 */

static char *
ngx_http_cert_authz_add_source(ngx_conf_t *cf,
    ngx_http_cert_authz_loc_conf_t *alcf, ngx_str_t *file,
    ngx_str_t *statement)
{
    cert_authz_result    rc;
    ngx_pool_cleanup_t  *cln;
    u_char               errors[NGX_HTTP_CERT_AUTHZ_ERRBUF];

    if (alcf->builder == NULL) {
        cln = ngx_pool_cleanup_add(cf->pool, 0);
        if (cln == NULL) {
            return NGX_CONF_ERROR;
        }

        if (cert_authz_policy_builder_new(&alcf->builder) != CERT_AUTHZ_OK) {
            return "cannot make a policy builder";
        }

        /* the build frees it; a configuration that fails before does not */
        cln->handler = ngx_http_cert_authz_builder_cleanup;
        cln->data = alcf;
    }

    errors[0] = '\0';

    if (file) {
        rc = cert_authz_policy_builder_add_file(alcf->builder,
                 (const char *) file->data, file->len,
                 (char *) errors, sizeof(errors));

    } else {
        rc = cert_authz_policy_builder_add_statement(alcf->builder,
                 (const char *) statement->data, statement->len,
                 (const char *) cf->conf_file->file.name.data,
                 cf->conf_file->file.name.len,
                 (uint32_t) cf->conf_file->line,
                 (char *) errors, sizeof(errors));
    }

    if (rc == CERT_AUTHZ_OK) {
        return NGX_CONF_OK;
    }

    if (errors[0] == '\0') {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "cert_authz: %s",
                           cert_authz_result_name(rc));

    } else {
        ngx_http_cert_authz_log_errors(cf, 1, errors);
    }

    return NGX_CONF_ERROR;
}


/*
 * The core's errors, one FILE:LINE:COL line each.  At a directive ("at")
 * nginx appends the directive's own position; while merging, nginx's
 * position is the end of the enclosing block, so the lines go as they are.
 */

static void
ngx_http_cert_authz_log_errors(ngx_conf_t *cf, ngx_uint_t at, u_char *errors)
{
    u_char  *p, *last, *nl;

    p = errors;
    last = p + ngx_strlen(errors);

    while (p < last) {
        nl = ngx_strlchr(p, last, '\n');
        if (nl == NULL) {
            nl = last;
        }

        if (nl > p && at) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "cert_authz: %*s",
                               (size_t) (nl - p), p);

        } else if (nl > p) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0, "cert_authz: %*s",
                          (size_t) (nl - p), p);
        }

        p = nl + 1;
    }
}


/*
 * Builds a scope's own policy, once; errors that show only now (a group
 * that no source defines) carry the core's FILE:LINE:COL.
 */

static ngx_int_t
ngx_http_cert_authz_build(ngx_conf_t *cf,
    ngx_http_cert_authz_loc_conf_t *alcf)
{
    cert_authz_result    rc;
    ngx_pool_cleanup_t  *cln;
    u_char               errors[NGX_HTTP_CERT_AUTHZ_ERRBUF];

    if (alcf->builder == NULL) {
        return NGX_OK;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    errors[0] = '\0';

    rc = cert_authz_policy_builder_build(alcf->builder, (char *) errors,
                                         sizeof(errors), &alcf->policy);

    /* freed by the build, whatever the outcome */
    alcf->builder = NULL;

    if (rc != CERT_AUTHZ_OK) {
        if (errors[0] == '\0') {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "cert_authz: policy failed: %s",
                          cert_authz_result_name(rc));
        }

        ngx_http_cert_authz_log_errors(cf, 0, errors);
        return NGX_ERROR;
    }

    cln->handler = ngx_http_cert_authz_policy_cleanup;
    cln->data = alcf->policy;

    return NGX_OK;
}


static void
ngx_http_cert_authz_builder_cleanup(void *data)
{
    ngx_http_cert_authz_loc_conf_t  *alcf = data;

    cert_authz_policy_builder_free(alcf->builder);
    alcf->builder = NULL;
}


static void
ngx_http_cert_authz_policy_cleanup(void *data)
{
    cert_authz_policy_free(data);
}


/*
 * The core's own log records (not the per-request denies, which come back
 * as data) go to the current cycle's log: ngx_cycle, not a cycle saved at
 * configuration, which a failed reload would free.
 */

static void
ngx_http_cert_authz_log(void *userdata, cert_authz_log_level level,
    const char *message, size_t message_len)
{
    ngx_uint_t  ngx_level;

    switch (level) {

    case CERT_AUTHZ_LOG_ERROR:
        ngx_level = NGX_LOG_ERR;
        break;

    case CERT_AUTHZ_LOG_WARN:
        ngx_level = NGX_LOG_WARN;
        break;

    case CERT_AUTHZ_LOG_INFO:
        ngx_level = NGX_LOG_INFO;
        break;

    default:
        ngx_level = NGX_LOG_DEBUG;
        break;
    }

    if (ngx_cycle == NULL || ngx_cycle->log == NULL) {
        return;
    }

    ngx_log_error(ngx_level, ngx_cycle->log, 0, "cert_authz: %*s",
                  message_len, message);
}


static void *
ngx_http_cert_authz_create_main_conf(ngx_conf_t *cf)
{
    return ngx_pcalloc(cf->pool, sizeof(ngx_http_cert_authz_main_conf_t));
}


static void *
ngx_http_cert_authz_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_cert_authz_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_cert_authz_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->user_attr = { 0, NULL };
     *     conf->builder = NULL;
     *     conf->policy = NULL;
     *     conf->enable_file = { 0, NULL };
     *     conf->enable_line = 0;
     */

    conf->enable = NGX_CONF_UNSET;
    conf->mode = NGX_CONF_UNSET_UINT;

    return conf;
}


static char *
ngx_http_cert_authz_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_cert_authz_loc_conf_t *prev = parent;
    ngx_http_cert_authz_loc_conf_t *conf = child;

    size_t                            rules;
    ngx_http_ssl_srv_conf_t          *sscf;
    ngx_http_core_srv_conf_t         *cscf;
    ngx_http_cert_authz_main_conf_t  *amcf;

    /*
     * The http{} level is only ever a parent: build it here too.  Each
     * scope with sources of its own builds once; the others share their
     * parent's policy.
     */

    if (ngx_http_cert_authz_build(cf, prev) != NGX_OK
        || ngx_http_cert_authz_build(cf, conf) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (conf->policy == NULL) {
        conf->policy = prev->policy;
    }

    if (conf->enable == NGX_CONF_UNSET) {
        conf->enable_file = prev->enable_file;
        conf->enable_line = prev->enable_line;
    }

    ngx_conf_merge_value(conf->enable, prev->enable, 0);
    ngx_conf_merge_uint_value(conf->mode, prev->mode,
                              NGX_HTTP_CERT_AUTHZ_ENFORCE);
    ngx_conf_merge_str_value(conf->user_attr, prev->user_attr, "");

    if (!conf->enable) {
        return NGX_CONF_OK;
    }

    /* an enforced empty policy would refuse everything: say so now */

    rules = 0;

    if (conf->policy == NULL
        || cert_authz_policy_rule_count(conf->policy, &rules)
           != CERT_AUTHZ_OK
        || rules == 0)
    {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"cert_authz on\" in %V:%ui has no policy with rules "
                      "in effect: add cert_authz_policy or cert_authz_rule",
                      &conf->enable_file, conf->enable_line);
        return NGX_CONF_ERROR;
    }

    /*
     * A certificate counts only where the request's own server{} verifies
     * it: in a server{} that does not, every request would be refused, or
     * pass on a certificate that another server{} verified.  While nginx
     * merges, cf->ctx is the server{} of this scope, and the SSL module's
     * settings of it are merged already (it comes first).
     */

    sscf = ngx_http_conf_get_module_srv_conf(cf, ngx_http_ssl_module);
    cscf = ngx_http_conf_get_module_srv_conf(cf, ngx_http_core_module);

    if (sscf->verify == 0) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"cert_authz on\" in %V:%ui is in effect in the "
                      "server in %s:%ui, which does not verify client "
                      "certificates: add \"ssl_verify_client on\" (or "
                      "optional, optional_no_ca) to it, or \"cert_authz "
                      "off\"",
                      &conf->enable_file, conf->enable_line,
                      cscf->file_name, cscf->line);
        return NGX_CONF_ERROR;
    }

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_cert_authz_module);

    if (amcf->listens_checked != cscf) {
        amcf->listens_checked = cscf;

        if (ngx_http_cert_authz_check_listens(cf, conf, cscf) != NGX_OK) {
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


/*
 * A client certificate is verified only on a "listen ... ssl": a server{}
 * with none refuses every request, which is an error as one that does not
 * verify is; a plain listener beside TLS ones refuses every request that
 * comes through it, which may be meant, so it is a warning naming it.
 * While nginx merges, the listeners are still the configuration's
 * (cmcf->ports), each with the servers that listen on it.
 */

static ngx_int_t
ngx_http_cert_authz_check_listens(ngx_conf_t *cf,
    ngx_http_cert_authz_loc_conf_t *conf, ngx_http_core_srv_conf_t *cscf)
{
    ngx_uint_t                  p, a, i, tls, pass;
    ngx_http_conf_port_t       *port;
    ngx_http_conf_addr_t       *addr;
    ngx_http_core_srv_conf_t  **server;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    if (cmcf->ports == NULL) {
        return NGX_OK;
    }

    /* the first pass looks for a TLS listener, the second names plain ones */

    tls = 0;

    for (pass = 0; pass < 2; pass++) {
        port = cmcf->ports->elts;

        for (p = 0; p < cmcf->ports->nelts; p++) {
            addr = port[p].addrs.elts;

            for (a = 0; a < port[p].addrs.nelts; a++) {
                server = addr[a].servers.elts;

                for (i = 0; i < addr[a].servers.nelts; i++) {
                    if (server[i] != cscf) {
                        continue;
                    }

                    if (pass == 0) {
                        tls |= addr[a].opt.ssl;

                    } else if (!addr[a].opt.ssl) {
                        ngx_log_error(NGX_LOG_WARN, cf->log, 0,
                                      "\"cert_authz on\" in %V:%ui is in "
                                      "effect in the server in %s:%ui, "
                                      "which also listens on %V without "
                                      "ssl: every request there is refused",
                                      &conf->enable_file, conf->enable_line,
                                      cscf->file_name, cscf->line,
                                      &addr[a].opt.addr_text);
                    }
                }
            }
        }

        if (pass == 0 && !tls) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"cert_authz on\" in %V:%ui is in effect in the "
                          "server in %s:%ui, which has no \"listen ... "
                          "ssl\": no client certificate can be verified "
                          "there, so every request would be refused",
                          &conf->enable_file, conf->enable_line,
                          cscf->file_name, cscf->line);
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_cert_authz_preconfiguration(ngx_conf_t *cf)
{
    cert_authz_result     rc;
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_cert_authz_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    /* installed again on every configuration load: see the callback */

    rc = cert_authz_set_log_callback(ngx_http_cert_authz_log, NULL,
                                     CERT_AUTHZ_LOG_INFO);
    if (rc != CERT_AUTHZ_OK) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "cert_authz_set_log_callback() failed: %s",
                      cert_authz_result_name(rc));
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_cert_authz_init(ngx_conf_t *cf)
{
    ngx_array_t                     *handlers;
    ngx_http_handler_pt             *h;
    ngx_http_core_main_conf_t       *cmcf;
    ngx_http_cert_authz_loc_conf_t  *alcf;

    /* the http{} level, in case no server{} merged it */

    alcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_cert_authz_module);

    if (ngx_http_cert_authz_build(cf, alcf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_cert_authz_own_remote_user(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_cert_authz_check_attr_variables(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_ACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_cert_authz_handler;

    /*
     * nginx runs a phase's handlers from the last of the array to the
     * first (ngx_http_init_phase_handlers()), and try_files pushed its own
     * precontent handler before this module's postconfiguration runs:
     * pushed, ours would run before try_files, on the URI not yet changed.
     * At index 0 it runs last, after try_files.
     */

    handlers = &cmcf->phases[NGX_HTTP_PRECONTENT_PHASE].handlers;

    h = ngx_array_push(handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h = handlers->elts;
    ngx_memmove(&h[1], &h[0], (handlers->nelts - 1) * sizeof(*h));
    h[0] = ngx_http_cert_authz_precontent_handler;

    return NGX_OK;
}
