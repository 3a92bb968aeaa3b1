
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 *
 * Directives, configuration and process hooks.
 */


#include "ngx_http_reductrai_module.h"


static ngx_int_t ngx_http_reductrai_postconfiguration(ngx_conf_t *cf);
static void *ngx_http_reductrai_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_reductrai_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_reductrai_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_reductrai_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static ngx_int_t ngx_http_reductrai_init_module(ngx_cycle_t *cycle);
static ngx_int_t ngx_http_reductrai_init_process(ngx_cycle_t *cycle);
static void ngx_http_reductrai_exit_process(ngx_cycle_t *cycle);

static char *ngx_http_reductrai_storage(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static void ngx_http_reductrai_storage_cleanup(void *data);
static void ngx_http_reductrai_storage_source(ngx_conf_t *cf,
    ngx_http_reductrai_storage_t *st);
static char *ngx_http_reductrai_spool(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_reductrai_instance(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_reductrai_enable(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_reductrai_stream(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_reductrai_forward(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_reductrai_ack(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_reductrai_body_format_set(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_reductrai_check_bounds(ngx_conf_t *cf, void *post,
    void *data);
static char *ngx_http_reductrai_check_size(ngx_conf_t *cf, void *post,
    void *data);
static char *ngx_http_reductrai_check_msec(ngx_conf_t *cf, void *post,
    void *data);
static char *ngx_http_reductrai_set_enum(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_reductrai_default_instance(ngx_conf_t *cf,
    ngx_str_t *instance);
static ngx_int_t ngx_http_reductrai_check_spool(ngx_conf_t *cf,
    ngx_http_reductrai_main_conf_t *rmcf);


static int64_t   ngx_http_reductrai_worker_start;
static uint64_t  ngx_http_reductrai_worker_records;


/* bounds checked as each directive is read, so errors point at it */

typedef struct {
    ngx_conf_post_handler_pt  post_handler;
    ngx_int_t                 low;
    ngx_int_t                 high;
} ngx_http_reductrai_bounds_t;


static ngx_http_reductrai_bounds_t  ngx_http_reductrai_level_bounds = {
    ngx_http_reductrai_check_bounds, 1, 19
};

static ngx_http_reductrai_bounds_t  ngx_http_reductrai_concurrency_bounds = {
    ngx_http_reductrai_check_bounds, 1, 256
};

static ngx_http_reductrai_bounds_t  ngx_http_reductrai_segment_size_bounds = {
    ngx_http_reductrai_check_size, 4096, NGX_MAX_INT_T_VALUE
};

static ngx_http_reductrai_bounds_t  ngx_http_reductrai_segment_age_bounds = {
    ngx_http_reductrai_check_msec, 1000, NGX_MAX_INT_T_VALUE
};

static ngx_http_reductrai_bounds_t  ngx_http_reductrai_commit_timeout_bounds = {
    ngx_http_reductrai_check_msec, 1, NGX_MAX_INT_T_VALUE
};

static ngx_http_reductrai_bounds_t  ngx_http_reductrai_buffer_bounds = {
    ngx_http_reductrai_check_size, 64 * 1024, NGX_MAX_INT_T_VALUE
};

static ngx_http_reductrai_bounds_t  ngx_http_reductrai_decoded_bounds = {
    ngx_http_reductrai_check_size, 4 * 1024, NGX_MAX_INT_T_VALUE
};


static ngx_conf_enum_t  ngx_http_reductrai_durability_values[] = {
    { ngx_string("async"), NGX_HTTP_REDUCTRAI_ASYNC },
    { ngx_string("write"), NGX_HTTP_REDUCTRAI_WRITE },
    { ngx_string("fsync"), NGX_HTTP_REDUCTRAI_FSYNC },
    { ngx_null_string, 0 }
};


static ngx_conf_enum_t  ngx_http_reductrai_spool_full_values[] = {
    { ngx_string("auto"), NGX_HTTP_REDUCTRAI_FULL_AUTO },
    { ngx_string("reject"), NGX_HTTP_REDUCTRAI_FULL_REJECT },
    { ngx_string("bypass"), NGX_HTTP_REDUCTRAI_FULL_BYPASS },
    { ngx_null_string, 0 }
};


static ngx_command_t  ngx_http_reductrai_commands[] = {

    { ngx_string("reductrai_storage"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_reductrai_storage,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("reductrai_spool"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_reductrai_spool,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("reductrai_buffer_size"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_reductrai_main_conf_t, buffer_size),
      &ngx_http_reductrai_buffer_bounds },

    { ngx_string("reductrai_max_decoded_size"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_reductrai_main_conf_t, max_decoded_size),
      &ngx_http_reductrai_decoded_bounds },

    { ngx_string("reductrai_segment_size"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_reductrai_main_conf_t, segment_size),
      &ngx_http_reductrai_segment_size_bounds },

    { ngx_string("reductrai_segment_age"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_reductrai_main_conf_t, segment_age),
      &ngx_http_reductrai_segment_age_bounds },

    { ngx_string("reductrai_compression_level"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_reductrai_main_conf_t, compression_level),
      &ngx_http_reductrai_level_bounds },

    { ngx_string("reductrai_thread_pool"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_reductrai_main_conf_t, thread_pool_name),
      NULL },

    { ngx_string("reductrai_upload_thread_pool"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_reductrai_main_conf_t, upload_thread_pool_name),
      NULL },

    { ngx_string("reductrai_upload_concurrency"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_reductrai_main_conf_t, upload_concurrency),
      &ngx_http_reductrai_concurrency_bounds },

    { ngx_string("reductrai_seal_concurrency"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_reductrai_main_conf_t, seal_concurrency),
      &ngx_http_reductrai_concurrency_bounds },

    { ngx_string("reductrai_instance"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_reductrai_instance,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("reductrai_durability"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_reductrai_set_enum,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_reductrai_main_conf_t, durability),
      &ngx_http_reductrai_durability_values },

    { ngx_string("reductrai_commit_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_reductrai_main_conf_t, commit_timeout),
      &ngx_http_reductrai_commit_timeout_bounds },

    { ngx_string("reductrai_spool_full"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_reductrai_set_enum,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_reductrai_loc_conf_t, spool_full),
      &ngx_http_reductrai_spool_full_values },

    { ngx_string("reductrai"),
      NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_http_reductrai_enable,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_reductrai_loc_conf_t, enable),
      NULL },

    { ngx_string("reductrai_stream"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_reductrai_stream,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("reductrai_forward"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_reductrai_forward,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("reductrai_ack"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_reductrai_ack,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("reductrai_body_format"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_reductrai_body_format_set,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_reductrai_loc_conf_t, body_format),
      NULL },

    { ngx_string("reductrai_health"),
      NGX_HTTP_LOC_CONF|NGX_CONF_ANY,
      ngx_http_reductrai_health,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("reductrai_metrics"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_reductrai_metrics,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_reductrai_module_ctx = {
    ngx_http_reductrai_add_variables,      /* preconfiguration */
    ngx_http_reductrai_postconfiguration,  /* postconfiguration */

    ngx_http_reductrai_create_main_conf,   /* create main configuration */
    ngx_http_reductrai_init_main_conf,     /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_reductrai_create_loc_conf,    /* create location configuration */
    ngx_http_reductrai_merge_loc_conf      /* merge location configuration */
};


ngx_module_t  ngx_http_reductrai_module = {
    NGX_MODULE_V1,
    &ngx_http_reductrai_module_ctx,        /* module context */
    ngx_http_reductrai_commands,           /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    ngx_http_reductrai_init_module,        /* init module */
    ngx_http_reductrai_init_process,       /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_reductrai_exit_process,       /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_str_t  ngx_http_reductrai_default_spool =
    ngx_string("/var/spool/nginx/reductrai");

static ngx_str_t  ngx_http_reductrai_default_pool = ngx_string("default");


static void *
ngx_http_reductrai_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_reductrai_main_conf_t  *rmcf;

    rmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_reductrai_main_conf_t));
    if (rmcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     rmcf->storage = NULL;
     *     rmcf->spool = { 0, NULL };
     *     rmcf->thread_pool_name = { 0, NULL };
     *     rmcf->upload_thread_pool_name = { 0, NULL };
     *     rmcf->instance = { 0, NULL };
     *     rmcf->tapped = 0;
     *     rmcf->rejecting = 0;
     */

    rmcf->spool_max_size = NGX_CONF_UNSET;
    rmcf->buffer_size = NGX_CONF_UNSET_SIZE;
    rmcf->max_decoded_size = NGX_CONF_UNSET_SIZE;
    rmcf->segment_size = NGX_CONF_UNSET_SIZE;
    rmcf->segment_age = NGX_CONF_UNSET_MSEC;
    rmcf->compression_level = NGX_CONF_UNSET;
    rmcf->upload_concurrency = NGX_CONF_UNSET_UINT;
    rmcf->seal_concurrency = NGX_CONF_UNSET_UINT;
    rmcf->durability = NGX_CONF_UNSET_UINT;
    rmcf->commit_timeout = NGX_CONF_UNSET_MSEC;
    rmcf->request_id_index = NGX_ERROR;

    return rmcf;
}


static char *
ngx_http_reductrai_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_reductrai_main_conf_t *rmcf = conf;

    ngx_str_t  name;

    if (rmcf->spool.data == NULL) {
        rmcf->spool = ngx_http_reductrai_default_spool;
    }

    if (rmcf->spool_max_size == NGX_CONF_UNSET) {
        rmcf->spool_max_size = 1024 * 1024 * 1024;
    }

    ngx_conf_init_size_value(rmcf->buffer_size, 64 * 1024 * 1024);
    ngx_conf_init_size_value(rmcf->max_decoded_size, 64 * 1024 * 1024);
    ngx_conf_init_size_value(rmcf->segment_size, 8 * 1024 * 1024);
    ngx_conf_init_msec_value(rmcf->segment_age, 30000);
    ngx_conf_init_value(rmcf->compression_level, 1);
    ngx_conf_init_uint_value(rmcf->upload_concurrency, 4);
    ngx_conf_init_uint_value(rmcf->seal_concurrency, 2);
    ngx_conf_init_uint_value(rmcf->durability, NGX_HTTP_REDUCTRAI_WRITE);
    ngx_conf_init_msec_value(rmcf->commit_timeout, 10000);

    if (rmcf->instance.data == NULL
        && ngx_http_reductrai_default_instance(cf, &rmcf->instance) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (rmcf->thread_pool_name.data == NULL) {
        rmcf->thread_pool_name = ngx_http_reductrai_default_pool;
    }

    if (rmcf->upload_thread_pool_name.data == NULL) {
        rmcf->upload_thread_pool_name = rmcf->thread_pool_name;
    }

    /* a configuration that only reads /metrics starts no threads */

    if (rmcf->tapped || rmcf->storage != NULL) {
        rmcf->thread_pool = ngx_thread_pool_add(cf, &rmcf->thread_pool_name);
        if (rmcf->thread_pool == NULL) {
            return NGX_CONF_ERROR;
        }

        rmcf->upload_thread_pool = ngx_thread_pool_add(cf,
                                               &rmcf->upload_thread_pool_name);
        if (rmcf->upload_thread_pool == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    ngx_str_set(&name, "request_id");

    rmcf->request_id_index = ngx_http_get_variable_index(cf, &name);
    if (rmcf->request_id_index == NGX_ERROR) {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_reductrai_check_spool(cf, rmcf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_reductrai_shm_add(cf, rmcf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * The spool directory is registered as an nginx path, so that nginx
 * creates it and hands it to the worker user (mode 0700) as it does its
 * temporary directories; we only add the parents nginx would not create.
 */

static ngx_int_t
ngx_http_reductrai_check_spool(ngx_conf_t *cf,
    ngx_http_reductrai_main_conf_t *rmcf)
{
    u_char      *p;
    ngx_err_t    err;
    ngx_path_t  *path;

    if (ngx_conf_full_name(cf->cycle, &rmcf->spool, 0) != NGX_OK) {
        return NGX_ERROR;
    }

    while (rmcf->spool.len > 1
           && rmcf->spool.data[rmcf->spool.len - 1] == '/')
    {
        rmcf->spool.len--;
    }

    /* room for a segment name, a prefix and "quarantine/" below it */

    if (rmcf->spool.len
        > NGX_MAX_PATH - NGX_HTTP_REDUCTRAI_NAME_MAX - 32)
    {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"reductrai_spool\" path \"%V\" is too long",
                      &rmcf->spool);
        return NGX_ERROR;
    }

    /* the workers and their threads use it as a C string */

    p = ngx_pnalloc(cf->pool, rmcf->spool.len + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(p, rmcf->spool.data, rmcf->spool.len);
    p[rmcf->spool.len] = '\0';
    rmcf->spool.data = p;

    if (!rmcf->tapped && rmcf->storage == NULL) {
        return NGX_OK;
    }

    err = ngx_create_full_path(rmcf->spool.data, 0755);
    if (err != 0) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, err,
                      "cannot create the parents of \"reductrai_spool\" "
                      "\"%V\"", &rmcf->spool);
        return NGX_ERROR;
    }

    path = ngx_pcalloc(cf->pool, sizeof(ngx_path_t));
    if (path == NULL) {
        return NGX_ERROR;
    }

    path->name = rmcf->spool;
    path->conf_file = rmcf->storage_file;
    path->line = rmcf->storage_line;

    return ngx_add_path(cf, &path);
}


static char *
ngx_http_reductrai_check_bounds(ngx_conf_t *cf, void *post, void *data)
{
    ngx_http_reductrai_bounds_t  *b = post;
    ngx_int_t                    *np = data;

    ngx_str_t  *value;

    if (*np >= b->low && *np <= b->high) {
        return NGX_CONF_OK;
    }

    value = cf->args->elts;

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "\"%V\" must be between %i and %i", &value[0],
                       b->low, b->high);

    return NGX_CONF_ERROR;
}


static char *
ngx_http_reductrai_check_size(ngx_conf_t *cf, void *post, void *data)
{
    ngx_http_reductrai_bounds_t  *b = post;
    size_t                       *sp = data;

    ngx_str_t  *value;

    if (*sp >= (size_t) b->low) {
        return NGX_CONF_OK;
    }

    value = cf->args->elts;

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "\"%V\" must be at least %uzk", &value[0],
                       (size_t) b->low / 1024);

    return NGX_CONF_ERROR;
}


static char *
ngx_http_reductrai_check_msec(ngx_conf_t *cf, void *post, void *data)
{
    ngx_http_reductrai_bounds_t  *b = post;
    ngx_msec_t                   *mp = data;

    ngx_str_t  *value;

    if (*mp >= (ngx_msec_t) b->low) {
        return NGX_CONF_OK;
    }

    value = cf->args->elts;

    if (b->low % 1000 == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" must be at least %Ms", &value[0],
                           (ngx_msec_t) b->low / 1000);
    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" must be at least %Mms", &value[0],
                           (ngx_msec_t) b->low);
    }

    return NGX_CONF_ERROR;
}


/* ngx_conf_set_enum_slot() with a message that says where and what */

static char *
ngx_http_reductrai_set_enum(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char  *p = conf;

    u_char           *last, buf[128];
    ngx_str_t        *value;
    ngx_uint_t        i, *np;
    ngx_conf_enum_t  *e;

    np = (ngx_uint_t *) (p + cmd->offset);

    if (*np != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;
    e = cmd->post;
    last = buf;

    for (i = 0; e[i].name.len != 0; i++) {
        if (e[i].name.len == value[1].len
            && ngx_strcasecmp(e[i].name.data, value[1].data) == 0)
        {
            *np = e[i].value;
            return NGX_CONF_OK;
        }

        last = ngx_slprintf(last, buf + sizeof(buf), "%s\"%V\"",
                            i ? ", " : "", &e[i].name);
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid value \"%V\" in \"%V\", it must be %*s",
                       &value[1], &value[0], last - buf, buf);

    return NGX_CONF_ERROR;
}


static ngx_int_t
ngx_http_reductrai_default_instance(ngx_conf_t *cf, ngx_str_t *instance)
{
    size_t   len, i;
    u_char  *p, c;

    len = ngx_min(cf->cycle->hostname.len, NGX_HTTP_REDUCTRAI_INSTANCE_MAX);

    p = ngx_pnalloc(cf->pool, len + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    /* a host name may hold anything; the key may not */

    for (i = 0; i < len; i++) {
        c = cf->cycle->hostname.data[i];
        p[i] = (isalnum(c) || c == '.' || c == '_' || c == '-') ? c : '-';
    }

    if (len == 0 || p[0] == '.') {
        ngx_str_set(instance, "nginx");
        return NGX_OK;
    }

    instance->data = p;
    instance->len = len;

    return NGX_OK;
}


static void *
ngx_http_reductrai_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_reductrai_loc_conf_t  *rlcf;

    rlcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_reductrai_loc_conf_t));
    if (rlcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     rlcf->ack_body = { 0, NULL };
     *     rlcf->health_upstreams = NULL;
     *     rlcf->health_peers = NULL;
     *     rlcf->forward_var = NULL;
     *     rlcf->forward_file = NULL;
     */

    rlcf->enable = NGX_CONF_UNSET;
    rlcf->stream = NGX_CONF_UNSET_PTR;
    rlcf->forward = NGX_CONF_UNSET_UINT;
    rlcf->ack_status = NGX_CONF_UNSET_UINT;
    rlcf->spool_full = NGX_CONF_UNSET_UINT;
    rlcf->body_format = NGX_CONF_UNSET_UINT;
    rlcf->health_live = NGX_CONF_UNSET;

    return rlcf;
}


static char *
ngx_http_reductrai_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_reductrai_loc_conf_t *prev = parent;
    ngx_http_reductrai_loc_conf_t *conf = child;

    ngx_str_t                       *name;
    ngx_uint_t                       forwards;
    ngx_http_core_loc_conf_t        *clcf;
    ngx_http_reductrai_main_conf_t  *rmcf;

    ngx_conf_merge_value(conf->enable, prev->enable, 0);
    ngx_conf_merge_ptr_value(conf->stream, prev->stream, NULL);
    ngx_conf_merge_uint_value(conf->spool_full, prev->spool_full,
                              NGX_HTTP_REDUCTRAI_FULL_AUTO);
    ngx_conf_merge_uint_value(conf->body_format, prev->body_format,
                              NGX_HTTP_REDUCTRAI_FORMAT_AUTO);
    ngx_conf_merge_value(conf->health_live, prev->health_live, 0);

    if (conf->forward == NGX_CONF_UNSET_UINT) {
        conf->forward = prev->forward;
        conf->forward_var = prev->forward_var;
        conf->forward_file = prev->forward_file;
        conf->forward_line = prev->forward_line;
    }

    if (conf->forward == NGX_CONF_UNSET_UINT) {
        conf->forward = 1;
    }

    if (conf->ack_status == NGX_CONF_UNSET_UINT) {
        conf->ack_status = prev->ack_status;
        conf->ack_body = prev->ack_body;
    }

    if (conf->ack_status == NGX_CONF_UNSET_UINT) {
        conf->ack_status = NGX_HTTP_ACCEPTED;
        ngx_str_set(&conf->ack_body, "{}");
    }

    if (ngx_http_reductrai_health_merge(cf, prev, conf) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    if (conf->enable_file == NULL) {
        conf->enable_file = prev->enable_file;
        conf->enable_line = prev->enable_line;
    }

    if (!conf->enable) {
        return NGX_CONF_OK;
    }

    rmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_reductrai_module);
    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    /* names known now get their slots when the zone is set up (shm.c) */

    if (conf->stream == NULL || conf->stream->lengths == NULL) {
        if (rmcf->streams == NULL) {
            rmcf->streams = ngx_array_create(cf->pool, 4, sizeof(ngx_str_t));
            if (rmcf->streams == NULL) {
                return NGX_CONF_ERROR;
            }
        }

        name = ngx_array_push(rmcf->streams);
        if (name == NULL) {
            return NGX_CONF_ERROR;
        }

        if (conf->stream == NULL) {
            ngx_str_set(name, "default");

        } else {
            *name = conf->stream->value;
        }
    }

    forwards = conf->forward != 0;

    /*
     * Forwarding means resuming the phases into a content handler; without
     * one nginx's static module would answer every POST with 405.
     */

    /* an "if" block has no handler of its own but runs its location's */

    if (forwards && clcf->handler == NULL && !clcf->noname) {
        if (conf->forward_file != NULL) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"reductrai_forward\" is on or a variable, but "
                          "location \"%V\" has no content handler such as "
                          "\"proxy_pass\" (use \"reductrai_forward off\" to "
                          "answer locally) in %s:%ui",
                          &clcf->name, conf->forward_file,
                          conf->forward_line);

        } else {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"reductrai on\" forwards by default, but "
                          "location \"%V\" has no content handler such as "
                          "\"proxy_pass\" (add \"reductrai_forward off\" to "
                          "answer locally) in %s:%ui",
                          &clcf->name, conf->enable_file, conf->enable_line);
        }

        return NGX_CONF_ERROR;
    }

    /* readiness must know whether some request may be refused */

    if (conf->spool_full == NGX_HTTP_REDUCTRAI_FULL_REJECT
        || (conf->spool_full == NGX_HTTP_REDUCTRAI_FULL_AUTO
            && conf->forward != 1))
    {
        rmcf->rejecting = 1;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_reductrai_postconfiguration(ngx_conf_t *cf)
{
    ngx_http_reductrai_main_conf_t  *rmcf;

    rmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_reductrai_module);

    if (rmcf->tapped && rmcf->storage == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"reductrai on\" requires \"reductrai_storage\" "
                      "in the http block");
        return NGX_ERROR;
    }

    return ngx_http_reductrai_tap_init(cf);
}


static char *
ngx_http_reductrai_storage(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_reductrai_main_conf_t *rmcf = conf;

    char                *uri, **params, *base;
    u_char               err[256];
    ngx_str_t           *value;
    ngx_uint_t           i;
    ngx_pool_cleanup_t  *cln;

    if (rmcf->storage != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;

    uri = (char *) ngx_pnalloc(cf->pool, value[1].len + 1);
    params = ngx_palloc(cf->pool, cf->args->nelts * sizeof(char *));
    base = (char *) ngx_pnalloc(cf->pool, cf->cycle->prefix.len + 1);

    if (uri == NULL || params == NULL || base == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_cpystrn((u_char *) uri, value[1].data, value[1].len + 1);
    ngx_cpystrn((u_char *) base, cf->cycle->prefix.data,
                cf->cycle->prefix.len + 1);

    for (i = 2; i < cf->args->nelts; i++) {
        params[i - 2] = (char *) value[i].data;
    }

    rmcf->storage = ngx_http_reductrai_storage_create(uri,
                                                     cf->args->nelts - 2,
                                                     params, base,
                                                     (char *) err,
                                                     sizeof(err));
    if (rmcf->storage == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"reductrai_storage\": %s", err);
        return NGX_CONF_ERROR;
    }

    if (ngx_http_reductrai_secret_warning((char *) err, sizeof(err))) {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0, "\"reductrai_storage\": %s",
                           err);
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        ngx_http_reductrai_storage_destroy(rmcf->storage);
        rmcf->storage = NULL;
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_http_reductrai_storage_cleanup;
    cln->data = rmcf->storage;

    rmcf->storage_file = cf->conf_file->file.name.data;
    rmcf->storage_line = cf->conf_file->line;

    if (ngx_test_config) {
        ngx_http_reductrai_storage_source(cf, rmcf->storage);
    }

    return NGX_CONF_OK;
}


/*
 * "nginx -t" names the credential source that this environment gives;
 * workers see only the variables that nginx's "env" directive passes.
 */

static void
ngx_http_reductrai_storage_source(ngx_conf_t *cf,
    ngx_http_reductrai_storage_t *st)
{
    u_char       err[256];
    ngx_uint_t   level;
    const char  *source;

    if (ngx_http_reductrai_storage_init(st, (char *) err, sizeof(err)) != 0) {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "\"reductrai_storage\": credentials: %s", err);
        return;
    }

    source = ngx_http_reductrai_storage_credentials(st, NULL, 0);

    if (source == NULL) {
        return;
    }

    level = ngx_strcmp(source, "none") ? NGX_LOG_NOTICE : NGX_LOG_WARN;

    ngx_conf_log_error(level, cf, 0, "\"reductrai_storage\": credentials: %s%s",
                       source, ngx_strcmp(source, "none") == 0
                       ? " (uploads wait in the spool; anonymous=on sends "
                         "them unsigned)" : "");
}


static void
ngx_http_reductrai_storage_cleanup(void *data)
{
    ngx_http_reductrai_storage_destroy(data);
}


static char *
ngx_http_reductrai_spool(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_reductrai_main_conf_t *rmcf = conf;

    ngx_str_t  *value, s;

    if (rmcf->spool.data != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len == 0) {
        return "has an empty path";
    }

    rmcf->spool = value[1];

    if (cf->args->nelts == 3) {
        if (ngx_strncmp(value[2].data, "max_size=", 9) != 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\"", &value[2]);
            return NGX_CONF_ERROR;
        }

        s.data = value[2].data + 9;
        s.len = value[2].len - 9;

        rmcf->spool_max_size = ngx_parse_offset(&s);

        if (rmcf->spool_max_size == NGX_ERROR
            || rmcf->spool_max_size < 1024 * 1024)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid max_size \"%V\" "
                               "(at least 1m)", &s);
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_reductrai_instance(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_reductrai_main_conf_t *rmcf = conf;

    ngx_str_t  *value;

    if (rmcf->instance.data != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (!ngx_http_reductrai_valid_instance(value[1].data, value[1].len)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid instance name \"%V\" "
                           "(1 to 64 of A-Z a-z 0-9 . _ -, not starting "
                           "with a dot)", &value[1]);
        return NGX_CONF_ERROR;
    }

    rmcf->instance = value[1];

    return NGX_CONF_OK;
}


static char *
ngx_http_reductrai_enable(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_reductrai_loc_conf_t *rlcf = conf;

    char                            *rv;
    ngx_http_reductrai_main_conf_t  *rmcf;

    rv = ngx_conf_set_flag_slot(cf, cmd, conf);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    if (rlcf->enable) {
        rmcf = ngx_http_conf_get_module_main_conf(cf,
                                                  ngx_http_reductrai_module);
        rmcf->tapped = 1;
    }

    rlcf->enable_file = cf->conf_file->file.name.data;
    rlcf->enable_line = cf->conf_file->line;

    return NGX_CONF_OK;
}


static char *
ngx_http_reductrai_stream(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_reductrai_loc_conf_t *rlcf = conf;

    ngx_str_t                         *value;
    ngx_http_compile_complex_value_t   ccv;

    if (rlcf->stream != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_http_script_variables_count(&value[1]) == 0
        && !ngx_http_reductrai_valid_stream(value[1].data, value[1].len))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid stream name \"%V\" "
                           "(1 to 32 of a-z 0-9 _ -, or a variable)",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    rlcf->stream = ngx_palloc(cf->pool, sizeof(ngx_http_complex_value_t));
    if (rlcf->stream == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

    ccv.cf = cf;
    ccv.value = &value[1];
    ccv.complex_value = rlcf->stream;

    if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_reductrai_forward(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_reductrai_loc_conf_t *rlcf = conf;

    ngx_str_t                         *value;
    ngx_http_compile_complex_value_t   ccv;

    if (rlcf->forward != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    rlcf->forward_file = cf->conf_file->file.name.data;
    rlcf->forward_line = cf->conf_file->line;

    if (ngx_strcmp(value[1].data, "on") == 0) {
        rlcf->forward = 1;
        return NGX_CONF_OK;
    }

    if (ngx_strcmp(value[1].data, "off") == 0) {
        rlcf->forward = 0;
        return NGX_CONF_OK;
    }

    if (ngx_http_script_variables_count(&value[1]) == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\", it must be \"on\", "
                           "\"off\" or a variable", &value[1]);
        return NGX_CONF_ERROR;
    }

    rlcf->forward_var = ngx_palloc(cf->pool,
                                   sizeof(ngx_http_complex_value_t));
    if (rlcf->forward_var == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

    ccv.cf = cf;
    ccv.value = &value[1];
    ccv.complex_value = rlcf->forward_var;

    if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    rlcf->forward = NGX_HTTP_REDUCTRAI_FORWARD_VAR;

    return NGX_CONF_OK;
}


/*
 * reductrai_body_format auto | none | NAME: how a body is archived.  auto
 * detects the format per request from its path and Content-Type; none keeps
 * every body as JSON or body_b64; a NAME ("otlp.ExportTraceServiceRequest",
 * …) decodes every body of the location as that message.
 */

static char *
ngx_http_reductrai_body_format_set(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_reductrai_loc_conf_t *rlcf = conf;

    u_char                                  *p, *names;
    size_t                                   len;
    unsigned                                 i;
    ngx_str_t                               *value;
    const ngx_http_reductrai_body_format_t  *bf;

    if (rlcf->body_format != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "auto") == 0) {
        rlcf->body_format = NGX_HTTP_REDUCTRAI_FORMAT_AUTO;
        return NGX_CONF_OK;
    }

    if (ngx_strcmp(value[1].data, "none") == 0) {
        rlcf->body_format = NGX_HTTP_REDUCTRAI_FORMAT_NONE;
        return NGX_CONF_OK;
    }

    rlcf->body_format = ngx_http_reductrai_body_format_lookup(value[1].data,
                                                              value[1].len);

    if (rlcf->body_format != NGX_HTTP_REDUCTRAI_FORMAT_NONE) {
        return NGX_CONF_OK;
    }

    /* the valid names, from the format table itself */

    len = sizeof("auto, none") - 1;

    for (i = 1; (bf = ngx_http_reductrai_body_format(i)) != NULL; i++) {
        len += 2 + ngx_strlen(bf->name);
    }

    names = ngx_pnalloc(cf->temp_pool, len);
    if (names == NULL) {
        return NGX_CONF_ERROR;
    }

    p = ngx_cpymem(names, "auto, none", sizeof("auto, none") - 1);

    for (i = 1; (bf = ngx_http_reductrai_body_format(i)) != NULL; i++) {
        p = ngx_sprintf(p, ", %s", bf->name);
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "unknown body format \"%V\" (%*s)", &value[1],
                       (size_t) (p - names), names);

    return NGX_CONF_ERROR;
}


/* the body format of a request, from its location and, with auto, itself */

ngx_uint_t
ngx_http_reductrai_request_format(ngx_http_request_t *r)
{
    ngx_table_elt_t                *ct;
    ngx_http_reductrai_loc_conf_t  *rlcf;

    rlcf = ngx_http_get_module_loc_conf(r, ngx_http_reductrai_module);

    if (rlcf->body_format != NGX_HTTP_REDUCTRAI_FORMAT_AUTO) {
        return rlcf->body_format;
    }

    ct = r->headers_in.content_type;

    if (ct == NULL) {
        return NGX_HTTP_REDUCTRAI_FORMAT_NONE;
    }

    return ngx_http_reductrai_body_format_detect(r->uri.data, r->uri.len,
                                                 ct->value.data,
                                                 ct->value.len);
}


static char *
ngx_http_reductrai_ack(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_reductrai_loc_conf_t *rlcf = conf;

    ngx_int_t   status;
    ngx_str_t  *value;

    if (rlcf->ack_status != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    status = ngx_atoi(value[1].data, value[1].len);

    if (status == NGX_ERROR || status < 200 || status > 599
        || value[1].len != 3)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid status \"%V\" (200 to 599)", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (status == NGX_HTTP_NO_CONTENT && cf->args->nelts == 3
        && value[2].len > 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "status 204 cannot have a body");
        return NGX_CONF_ERROR;
    }

    rlcf->ack_status = status;

    if (cf->args->nelts == 3) {
        rlcf->ack_body = value[2];

    } else if (status == NGX_HTTP_NO_CONTENT) {
        ngx_str_null(&rlcf->ack_body);

    } else {
        ngx_str_set(&rlcf->ack_body, "{}");
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_reductrai_init_module(ngx_cycle_t *cycle)
{
    ngx_http_reductrai_main_conf_t  *rmcf;

    rmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_reductrai_module);
    if (rmcf == NULL || rmcf->storage == NULL) {
        return NGX_OK;
    }

    /* libcurl's global setup is not thread-safe: once, before forking */

    if (ngx_http_reductrai_storage_global_init() != 0) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "curl_global_init() failed");
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_reductrai_init_process(ngx_cycle_t *cycle)
{
    u_char                           err[256];
    ngx_uint_t                       level;
    const char                      *src;
    ngx_http_reductrai_main_conf_t  *rmcf;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    ngx_http_reductrai_shm_init_process(cycle);

    rmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_reductrai_module);
    if (rmcf == NULL || rmcf->storage == NULL) {
        return NGX_OK;
    }

    /* credentials from the environment nginx's "env" passed to us */

    if (ngx_http_reductrai_storage_init(rmcf->storage, (char *) err,
                                        sizeof(err))
        != 0)
    {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "reductrai storage %s: %s", rmcf->storage->uri, err);
        return NGX_ERROR;
    }

    src = ngx_http_reductrai_storage_credentials(rmcf->storage, NULL, 0);

    if (src != NULL) {
        level = ngx_strcmp(src, "none") ? NGX_LOG_NOTICE : NGX_LOG_WARN;
        ngx_log_error(level, cycle->log, 0,
                      "reductrai storage %s: credentials: %s",
                      rmcf->storage->uri, src);
    }

    ngx_http_reductrai_worker_start = ngx_http_reductrai_now_ms();

    if (ngx_http_reductrai_spool_init_process(cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_reductrai_shipper_init_process(cycle);
}


static void
ngx_http_reductrai_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_reductrai_spool_exit_process(cycle);
}


ngx_http_reductrai_main_conf_t *
ngx_http_reductrai_worker_conf(void)
{
    return ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_reductrai_module);
}


const char *
ngx_http_reductrai_spool_path(void)
{
    return (const char *) ngx_http_reductrai_worker_conf()->spool.data;
}


int64_t
ngx_http_reductrai_now_ms(void)
{
    ngx_time_t  *tp;

    tp = ngx_timeofday();

    return (int64_t) tp->sec * 1000 + tp->msec;
}


/* the worker's identity in record ids and object keys */

int64_t
ngx_http_reductrai_worker_start_ms(void)
{
    return ngx_http_reductrai_worker_start;
}


u_char *
ngx_http_reductrai_next_id(u_char *p)
{
    ngx_http_reductrai_main_conf_t  *rmcf;

    rmcf = ngx_http_reductrai_worker_conf();

    return ngx_sprintf(p, "%V-%P-%L-%uL", &rmcf->instance, ngx_pid,
                       ngx_http_reductrai_worker_start,
                       ++ngx_http_reductrai_worker_records);
}


/*
 * A thread job: handler runs in a thread with data, done back in the event
 * loop with the event's data set to the same.
 */

void
ngx_http_reductrai_task_init(ngx_thread_task_t *task,
    void (*handler)(void *data, ngx_log_t *log), ngx_event_handler_pt done,
    void *data, ngx_log_t *log)
{
    ngx_memzero(task, sizeof(ngx_thread_task_t));

    task->ctx = data;
    task->handler = handler;
    task->event.handler = done;
    task->event.data = data;
    task->event.log = log;
}


ngx_thread_task_t *
ngx_http_reductrai_task_create(ngx_cycle_t *cycle,
    void (*handler)(void *data, ngx_log_t *log), ngx_event_handler_pt done,
    void *data)
{
    ngx_thread_task_t  *task;

    task = ngx_palloc(cycle->pool, sizeof(ngx_thread_task_t));
    if (task == NULL) {
        return NULL;
    }

    ngx_http_reductrai_task_init(task, handler, done, data, cycle->log);

    return task;
}


void
ngx_http_reductrai_record_free(ngx_http_reductrai_record_t *rec)
{
    if (rec->fd != NGX_INVALID_FILE) {
        (void) ngx_close_file(rec->fd);
    }

    ngx_free(rec);
}
