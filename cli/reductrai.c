
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 *
 * reductrai: the command-line tool over an archive.  This file parses the
 * command line, opens the storage and dispatches to one subcommand.
 */


#include "ngx_http_reductrai_cli.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


typedef struct {
    const char   *name;
    int         (*run)(ngx_http_reductrai_cli_t *cli);
    unsigned      options;
    const char   *usage;
} ngx_http_reductrai_cli_command_t;


enum {
    NGX_HTTP_REDUCTRAI_OPT_JSON = 256,
    NGX_HTTP_REDUCTRAI_OPT_API_KEY_FP,
    NGX_HTTP_REDUCTRAI_OPT_UNTIL,
    NGX_HTTP_REDUCTRAI_OPT_RATE,
    NGX_HTTP_REDUCTRAI_OPT_CONCURRENCY,
    NGX_HTTP_REDUCTRAI_OPT_RETRIES,
    NGX_HTTP_REDUCTRAI_OPT_RETRY_MAX,
    NGX_HTTP_REDUCTRAI_OPT_TIMEOUT,
    NGX_HTTP_REDUCTRAI_OPT_CHECKPOINT,
    NGX_HTTP_REDUCTRAI_OPT_DRY_RUN,
    NGX_HTTP_REDUCTRAI_OPT_INSECURE,
    NGX_HTTP_REDUCTRAI_OPT_PROGRESS,
    NGX_HTTP_REDUCTRAI_OPT_NO_PROGRESS,
    NGX_HTTP_REDUCTRAI_OPT_WINDOW,
    NGX_HTTP_REDUCTRAI_OPT_INCLUDE_EXPIRED
};


static int ngx_http_reductrai_cli_parse(ngx_http_reductrai_cli_t *cli,
    const ngx_http_reductrai_cli_command_t *cmd, int argc, char **argv);
static int ngx_http_reductrai_cli_option(ngx_http_reductrai_cli_t *cli,
    const ngx_http_reductrai_cli_command_t *cmd, int opt, const char *arg);
static int ngx_http_reductrai_cli_allowed(
    const ngx_http_reductrai_cli_command_t *cmd, int opt);
static int ngx_http_reductrai_cli_open(ngx_http_reductrai_cli_t *cli);
static int ngx_http_reductrai_cli_number(const char *s, double min,
    double max, double *v);
static int ngx_http_reductrai_cli_integer(ngx_http_reductrai_cli_t *cli,
    const char *name, const char *arg, int min, int max, int *value);
static void ngx_http_reductrai_cli_usage(FILE *f);


static const char  ngx_http_reductrai_cli_selectors[] =
    "  -s, --stream NAME     only this stream (repeat, or NAME,NAME)\n"
    "  -f, --from TIME       records at or after TIME\n"
    "  -t, --to TIME         records before the end of TIME (--until too)\n"
    "\n"
    "TIME is 2026-11-25, 2026-11-25T10, 2026-11-25T10:30[:15[.250]],\n"
    "optionally with Z or +HH:MM (UTC otherwise), @UNIXSECONDS, now, or\n"
    "-1h, -30m, -2d, -1h30m (relative to now).  --to is inclusive to the\n"
    "precision given: --to 2026-11-25 covers that whole day.\n";

static const char  ngx_http_reductrai_cli_storage_help[] =
    "STORAGE is file:///dir, s3://bucket[/prefix], gs://bucket[/prefix] or\n"
    "azure://account/container[/prefix], followed by the same name=value\n"
    "parameters as the reductrai_storage directive (region=, endpoint=,\n"
    "style=, secret_key_file=, key_file=, sas=, ca_file=, timeout=, ...).\n"
    "Credentials come from the same environment variables as in nginx\n"
    "(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN,\n"
    "AZURE_STORAGE_KEY, ...).  $REDUCTRAI_STORAGE is used when STORAGE is\n"
    "omitted.\n";


static const ngx_http_reductrai_cli_command_t
    ngx_http_reductrai_commands[] =
{

    { "ls", ngx_http_reductrai_cli_ls,
      NGX_HTTP_REDUCTRAI_CLI_O_SELECT | NGX_HTTP_REDUCTRAI_CLI_O_JSON
      | NGX_HTTP_REDUCTRAI_CLI_O_JOBS,
      "usage: reductrai ls STORAGE [name=value ...] [options]\n"
      "\n"
      "Lists archive objects: key, records, first and last record time,\n"
      "size, raw (decompressed) size and compression ratio.  Keys are pruned\n"
      "by stream, day and hour before anything is fetched; then each\n"
      "object's trailer is read with one ranged GET of its last bytes.\n"
      "\n"
      "%s"
      "  --json                one JSON object per line\n"
      "  -j, --jobs N          trailers fetched in parallel (default 8)\n"
      "  -v, --verbose         report listing and pruning on stderr\n" },

    { "cat", ngx_http_reductrai_cli_cat,
      NGX_HTTP_REDUCTRAI_CLI_O_SELECT | NGX_HTTP_REDUCTRAI_CLI_O_FILTER
      | NGX_HTTP_REDUCTRAI_CLI_O_BODY,
      "usage: reductrai cat STORAGE [name=value ...] [options]\n"
      "\n"
      "Prints the selected records as NDJSON, object by object in key\n"
      "order, streaming (memory is bounded by the longest record).\n"
      "\n"
      "%s"
      "  -g, --grep TEXT       records whose line contains TEXT\n"
      "  -u, --uri PATTERN     records whose uri starts with PATTERN, or\n"
      "                        matches it as a glob when it holds * ? [\n"
      "      --api-key-fp FP   records with this api_key_fp (8 hex digits)\n"
      "  -n, --limit N         stop after N records\n"
      "  -b, --body            print the body alone: the JSON, or the bytes\n"
      "                        of body_b64, each followed by a newline\n"
      "  -v, --verbose         report listing and pruning on stderr\n" },

    { "verify", ngx_http_reductrai_cli_verify,
      NGX_HTTP_REDUCTRAI_CLI_O_SELECT | NGX_HTTP_REDUCTRAI_CLI_O_JOBS,
      "usage: reductrai verify STORAGE [name=value ...] [options]\n"
      "\n"
      "Checks every selected object: it decompresses (zstd frame checksum),\n"
      "every line is a JSON record with the expected fields, stream and\n"
      "hour match the key, and count, raw bytes, SHA-256 and time range\n"
      "match the trailer.  Segment numbers of each worker and stream must\n"
      "run from 1 without gaps (with --from/--to: without inner gaps).\n"
      "Prints one line per problem and a summary; exits 1 on any problem.\n"
      "\n"
      "%s"
      "  -j, --jobs N          objects checked in parallel (default: CPUs)\n"
      "  -v, --verbose         also print a line for each good object\n" },

    { "replay", ngx_http_reductrai_cli_replay,
      NGX_HTTP_REDUCTRAI_CLI_O_SELECT | NGX_HTTP_REDUCTRAI_CLI_O_FILTER
      | NGX_HTTP_REDUCTRAI_CLI_O_REPLAY,
      "usage: reductrai replay STORAGE [name=value ...] --to URL [options]\n"
      "\n"
      "Re-sends the selected records to URL (scheme://host[:port][/path]):\n"
      "the original method, path and query (credential parameters stay\n"
      "REDACTED), Content-Type, User-Agent, and the body encoded again as\n"
      "its original Content-Encoding.  Credentials are never taken from the\n"
      "archive: give them with --header, or $DD_API_KEY (sent as\n"
      "DD-API-KEY) or $REDUCTRAI_REPLAY_HEADER ('Name: value').\n"
      "\n"
      "  -s, --stream NAME     only this stream (repeat, or NAME,NAME)\n"
      "  -f, --from TIME       records at or after TIME\n"
      "      --until TIME      records before the end of TIME\n"
      "  -g, --grep, -u, --uri, --api-key-fp, -n, --limit   as in cat\n"
      "  -t, --to URL          where to send (required)\n"
      "  -H, --header 'N: V'   add a header (repeatable)\n"
      "      --rate N          at most N requests per second\n"
      "      --concurrency N   requests in flight (default 4)\n"
      "      --retries N       retries of a request on 5xx, 429 or a\n"
      "                        connection error (default 5), with capped\n"
      "                        exponential backoff; Retry-After is honoured\n"
      "      --retry-max SECS  longest backoff (default 30)\n"
      "      --timeout SECS    for one request (default 30)\n"
      "      --checkpoint FILE record ids delivered (2xx); a rerun with the\n"
      "                        same FILE skips them\n"
      "      --dry-run         print what would be sent, send nothing\n"
      "      --insecure        do not verify the server's TLS certificate\n"
      "      --[no-]progress   progress line on stderr (default: on a TTY)\n"
      "  -v, --verbose         one line per request on stderr\n"
      "      --window SPEC     the intake's age windows: none, or\n"
      "                        KIND=DURATION|none,... (KIND: metrics, logs,\n"
      "                        traces, events, other; DURATION: 90m, 1h, 2d)\n"
      "      --include-expired send records outside their window too\n"
      "\n"
      "Age windows.  Datadog's intake answers 202 and still drops metric\n"
      "points older than 1 hour (unless historical metrics ingestion is\n"
      "enabled) and logs and events older than 18 hours.  Before sending,\n"
      "replay counts per kind (by the record's path: /api/v1/series,\n"
      "/api/v2/series, /api/beta/sketches, /api/v1/check_run are metrics;\n"
      "/api/v2/logs, /v1/input logs; /api/v1/events events; /api/v0.2/\n"
      "traces traces) the records outside the window, judged by the\n"
      "timestamps in the body (points, sketches, a log's timestamp or date,\n"
      "an event's date_happened), else by the record's arrival time (ts).\n"
      "Records wholly outside are skipped unless --include-expired; records\n"
      "partly outside are sent (the intake keeps their newer part).\n"
      "Defaults: metrics=1h,logs=18h,events=18h,traces=none,other=none.\n"
      "At the end, the count of each HTTP status the target answered; any\n"
      "record not answered 2xx makes the exit code 5.\n"
      "\n"
      "TIME is as in reductrai cat --help.\n"
      "%s" },

    { NULL, NULL, 0, NULL }
};


static const struct option  ngx_http_reductrai_long_options[] = {
    { "stream", required_argument, NULL, 's' },
    { "from", required_argument, NULL, 'f' },
    { "since", required_argument, NULL, 'f' },
    { "to", required_argument, NULL, 't' },
    { "until", required_argument, NULL, NGX_HTTP_REDUCTRAI_OPT_UNTIL },
    { "verbose", no_argument, NULL, 'v' },
    { "help", no_argument, NULL, 'h' },
    { "jobs", required_argument, NULL, 'j' },
    { "json", no_argument, NULL, NGX_HTTP_REDUCTRAI_OPT_JSON },
    { "grep", required_argument, NULL, 'g' },
    { "uri", required_argument, NULL, 'u' },
    { "api-key-fp", required_argument, NULL,
      NGX_HTTP_REDUCTRAI_OPT_API_KEY_FP },
    { "limit", required_argument, NULL, 'n' },
    { "body", no_argument, NULL, 'b' },
    { "header", required_argument, NULL, 'H' },
    { "rate", required_argument, NULL, NGX_HTTP_REDUCTRAI_OPT_RATE },
    { "concurrency", required_argument, NULL,
      NGX_HTTP_REDUCTRAI_OPT_CONCURRENCY },
    { "retries", required_argument, NULL, NGX_HTTP_REDUCTRAI_OPT_RETRIES },
    { "retry-max", required_argument, NULL,
      NGX_HTTP_REDUCTRAI_OPT_RETRY_MAX },
    { "timeout", required_argument, NULL, NGX_HTTP_REDUCTRAI_OPT_TIMEOUT },
    { "checkpoint", required_argument, NULL,
      NGX_HTTP_REDUCTRAI_OPT_CHECKPOINT },
    { "dry-run", no_argument, NULL, NGX_HTTP_REDUCTRAI_OPT_DRY_RUN },
    { "insecure", no_argument, NULL, NGX_HTTP_REDUCTRAI_OPT_INSECURE },
    { "progress", no_argument, NULL, NGX_HTTP_REDUCTRAI_OPT_PROGRESS },
    { "no-progress", no_argument, NULL, NGX_HTTP_REDUCTRAI_OPT_NO_PROGRESS },
    { "window", required_argument, NULL, NGX_HTTP_REDUCTRAI_OPT_WINDOW },
    { "include-expired", no_argument, NULL,
      NGX_HTTP_REDUCTRAI_OPT_INCLUDE_EXPIRED },
    { NULL, 0, NULL, 0 }
};


int
main(int argc, char **argv)
{
    int                                      rc;
    const char                              *name;
    ngx_http_reductrai_cli_t                 cli;
    const ngx_http_reductrai_cli_command_t  *cmd;

    if (argc < 2) {
        ngx_http_reductrai_cli_usage(stderr);
        return NGX_HTTP_REDUCTRAI_CLI_USAGE;
    }

    name = argv[1];

    if (strcmp(name, "-h") == 0 || strcmp(name, "--help") == 0) {
        ngx_http_reductrai_cli_usage(stdout);
        return NGX_HTTP_REDUCTRAI_CLI_OK;
    }

    if (strcmp(name, "-V") == 0 || strcmp(name, "--version") == 0
        || strcmp(name, "version") == 0)
    {
        printf("reductrai %s\n", NGX_HTTP_REDUCTRAI_VERSION);
        return NGX_HTTP_REDUCTRAI_CLI_OK;
    }

    if (strcmp(name, "help") == 0) {
        if (argc < 3) {
            ngx_http_reductrai_cli_usage(stdout);
            return NGX_HTTP_REDUCTRAI_CLI_OK;
        }

        name = argv[2];
        argv[2] = "--help";
    }

    for (cmd = ngx_http_reductrai_commands; cmd->name; cmd++) {
        if (strcmp(cmd->name, name) == 0) {
            break;
        }
    }

    if (cmd->name == NULL) {
        fprintf(stderr, "reductrai: unknown command \"%s\" "
                "(ls, cat, verify, replay; see reductrai --help)\n", name);
        return NGX_HTTP_REDUCTRAI_CLI_USAGE;
    }

    memset(&cli, 0, sizeof(ngx_http_reductrai_cli_t));

    cli.command = cmd->name;
    cli.from = NGX_HTTP_REDUCTRAI_CLI_TIME_MIN;
    cli.to = NGX_HTTP_REDUCTRAI_CLI_TIME_MAX;
    cli.jobs = 0;
    cli.concurrency = 4;
    cli.retries = 5;
    cli.retry_max = 30;
    cli.timeout = 30;
    cli.progress = -1;
    ngx_http_reductrai_cli_window_defaults(cli.window);

    rc = ngx_http_reductrai_cli_parse(&cli, cmd, argc - 1, argv + 1);

    if (rc == NGX_HTTP_REDUCTRAI_CLI_OK) {
        rc = ngx_http_reductrai_cli_open(&cli);

        if (rc == NGX_HTTP_REDUCTRAI_CLI_OK) {
            rc = cmd->run(&cli);
        }

    } else if (rc < 0) {
        /* --help */
        rc = NGX_HTTP_REDUCTRAI_CLI_OK;
    }

    ngx_http_reductrai_storage_destroy(cli.st);

    while (cli.ncopies > 0) {
        free(cli.copies[--cli.ncopies]);
    }

    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "reductrai: %s: writing the output failed: %s\n",
                cli.command, strerror(errno));

        if (rc == NGX_HTTP_REDUCTRAI_CLI_OK) {
            rc = NGX_HTTP_REDUCTRAI_CLI_STORAGE;
        }
    }

    return rc;
}


/* returns 0, -1 after --help, or an exit code */

static int
ngx_http_reductrai_cli_parse(ngx_http_reductrai_cli_t *cli,
    const ngx_http_reductrai_cli_command_t *cmd, int argc, char **argv)
{
    int          opt, rc, i, longindex;
    char         name[64];
    const char  *uri;

    opterr = 0;
    optind = 1;

    for ( ;; ) {
        longindex = -1;
        opt = getopt_long(argc, argv, ":s:f:t:vhj:g:u:n:bH:",
                          ngx_http_reductrai_long_options, &longindex);
        if (opt == -1) {
            break;
        }

        if (opt == 'h') {
            printf(cmd->usage, cmd->options & NGX_HTTP_REDUCTRAI_CLI_O_REPLAY
                               ? ngx_http_reductrai_cli_storage_help
                               : ngx_http_reductrai_cli_selectors);

            if (!(cmd->options & NGX_HTTP_REDUCTRAI_CLI_O_REPLAY)) {
                printf("\n%s", ngx_http_reductrai_cli_storage_help);
            }

            return -1;
        }

        if (opt == '?' || opt == ':') {
            if (optopt >= 256 || optopt == 0) {
                ngx_http_reductrai_cli_error(cli, "%s \"%s\" (see reductrai "
                                             "%s --help)",
                                             opt == ':' ? "missing value for"
                                                        : "unknown option",
                                             argv[optind - 1], cli->command);

            } else {
                ngx_http_reductrai_cli_error(cli, "%s -%c (see reductrai "
                                             "%s --help)",
                                             opt == ':' ? "missing value for"
                                                        : "unknown option",
                                             optopt, cli->command);
            }

            return NGX_HTTP_REDUCTRAI_CLI_USAGE;
        }

        if (!ngx_http_reductrai_cli_allowed(cmd, opt)) {
            if (longindex >= 0) {
                snprintf(name, sizeof(name), "--%s",
                         ngx_http_reductrai_long_options[longindex].name);

            } else {
                snprintf(name, sizeof(name), "-%c", opt);
            }

            ngx_http_reductrai_cli_error(cli, "option \"%s\" does not apply "
                                         "to %s (see reductrai %s --help)",
                                         name, cli->command, cli->command);
            return NGX_HTTP_REDUCTRAI_CLI_USAGE;
        }

        rc = ngx_http_reductrai_cli_option(cli, cmd, opt, optarg);
        if (rc != NGX_HTTP_REDUCTRAI_CLI_OK) {
            return rc;
        }
    }

    /* STORAGE, then name=value parameters */

    i = optind;

    if (i < argc && strstr(argv[i], "://") != NULL) {
        uri = argv[i++];

    } else {
        uri = getenv("REDUCTRAI_STORAGE");

        if (uri == NULL || uri[0] == '\0') {
            ngx_http_reductrai_cli_error(cli, "no storage URI (file:///dir, "
                                         "s3://bucket/prefix, ...; see "
                                         "reductrai %s --help)",
                                         cli->command);
            return NGX_HTTP_REDUCTRAI_CLI_USAGE;
        }
    }

    cli->uri = uri;
    cli->params = argv + i;

    for ( /* void */ ; i < argc; i++) {
        if (strchr(argv[i], '=') == NULL || argv[i][0] == '=') {
            ngx_http_reductrai_cli_error(cli, "unexpected argument \"%s\" "
                                         "(storage parameters are "
                                         "name=value)", argv[i]);
            return NGX_HTTP_REDUCTRAI_CLI_USAGE;
        }

        cli->nparams++;
    }

    if (cli->from != NGX_HTTP_REDUCTRAI_CLI_TIME_MIN
        && cli->to != NGX_HTTP_REDUCTRAI_CLI_TIME_MAX
        && cli->from >= cli->to)
    {
        ngx_http_reductrai_cli_error(cli, "the time range is empty "
                                     "(--from is not before --to)");
        return NGX_HTTP_REDUCTRAI_CLI_USAGE;
    }

    cli->time_limited = cli->from != NGX_HTTP_REDUCTRAI_CLI_TIME_MIN
                        || cli->to != NGX_HTTP_REDUCTRAI_CLI_TIME_MAX;

    if ((cmd->options & NGX_HTTP_REDUCTRAI_CLI_O_REPLAY)
        && cli->target == NULL)
    {
        ngx_http_reductrai_cli_error(cli, "--to URL is required (where to "
                                     "send the records)");
        return NGX_HTTP_REDUCTRAI_CLI_USAGE;
    }

    if (cli->jobs == 0) {
        cli->jobs = 8;

        if (strcmp(cli->command, "verify") == 0) {
            long  n = sysconf(_SC_NPROCESSORS_ONLN);

            cli->jobs = n < 1 ? 1 : (n > 16 ? 16 : (int) n);
        }
    }

    return NGX_HTTP_REDUCTRAI_CLI_OK;
}


static int
ngx_http_reductrai_cli_option(ngx_http_reductrai_cli_t *cli,
    const ngx_http_reductrai_cli_command_t *cmd, int opt, const char *arg)
{
    int          replay;
    char        *copy, *p, *save, err[256];
    size_t       i;
    double       v;
    int64_t      ms;
    const char  *colon;

    replay = (cmd->options & NGX_HTTP_REDUCTRAI_CLI_O_REPLAY) != 0;

    switch (opt) {

    case 's':
        if (cli->ncopies == NGX_HTTP_REDUCTRAI_CLI_MAX_STREAMS) {
            ngx_http_reductrai_cli_error(cli, "too many streams");
            return NGX_HTTP_REDUCTRAI_CLI_USAGE;
        }

        copy = strdup(arg);
        if (copy == NULL) {
            ngx_http_reductrai_cli_error(cli, "out of memory");
            return NGX_HTTP_REDUCTRAI_CLI_USAGE;
        }

        /* streams[] points into the copy: freed at exit */
        cli->copies[cli->ncopies++] = copy;

        for (p = strtok_r(copy, ",", &save); p != NULL;
             p = strtok_r(NULL, ",", &save))
        {
            if (!ngx_http_reductrai_valid_stream((u_char *) p, strlen(p))) {
                ngx_http_reductrai_cli_error(cli, "invalid stream name "
                                             "\"%s\" ([a-z0-9_-]{1,32})", p);
                return NGX_HTTP_REDUCTRAI_CLI_USAGE;
            }

            if (cli->nstreams == NGX_HTTP_REDUCTRAI_CLI_MAX_STREAMS) {
                ngx_http_reductrai_cli_error(cli, "too many streams");
                return NGX_HTTP_REDUCTRAI_CLI_USAGE;
            }

            cli->streams[cli->nstreams++] = p;
        }

        return NGX_HTTP_REDUCTRAI_CLI_OK;

    case 't':
        if (replay) {
            if (strncmp(arg, "http://", 7) != 0
                && strncmp(arg, "https://", 8) != 0)
            {
                ngx_http_reductrai_cli_error(cli, "--to takes the target URL "
                                             "(http:// or https://), not "
                                             "\"%s\"; the end of the time "
                                             "range is --until", arg);
                return NGX_HTTP_REDUCTRAI_CLI_USAGE;
            }

            cli->target = arg;
            return NGX_HTTP_REDUCTRAI_CLI_OK;
        }

        /* fall through */

    case 'f':
    case NGX_HTTP_REDUCTRAI_OPT_UNTIL:
        if (ngx_http_reductrai_cli_parse_time(arg,
                                              ngx_http_reductrai_cli_now_ms(),
                                              opt != 'f', &ms)
            != 0)
        {
            ngx_http_reductrai_cli_error(cli, "invalid time \"%s\" (e.g. "
                                         "2026-11-25T10:30Z, @1764066600, "
                                         "-1h; see reductrai %s --help)",
                                         arg, cli->command);
            return NGX_HTTP_REDUCTRAI_CLI_USAGE;
        }

        if (opt == 'f') {
            cli->from = ms;

        } else {
            cli->to = ms;
        }

        return NGX_HTTP_REDUCTRAI_CLI_OK;

    case 'v':
        cli->verbose++;
        return NGX_HTTP_REDUCTRAI_CLI_OK;

    case 'j':
        return ngx_http_reductrai_cli_integer(cli, "--jobs", arg, 1, 64,
                                              &cli->jobs);

    case NGX_HTTP_REDUCTRAI_OPT_JSON:
        cli->json = 1;
        return NGX_HTTP_REDUCTRAI_CLI_OK;

    case 'g':
        if (arg[0] == '\0') {
            ngx_http_reductrai_cli_error(cli, "--grep needs a text");
            return NGX_HTTP_REDUCTRAI_CLI_USAGE;
        }

        cli->grep = arg;
        return NGX_HTTP_REDUCTRAI_CLI_OK;

    case 'u':
        cli->uri_match = arg;
        cli->uri_glob = strpbrk(arg, "*?[") != NULL;
        return NGX_HTTP_REDUCTRAI_CLI_OK;

    case NGX_HTTP_REDUCTRAI_OPT_API_KEY_FP:
        for (i = 0; arg[i]; i++) {
            if (!((arg[i] >= '0' && arg[i] <= '9')
                  || (arg[i] >= 'a' && arg[i] <= 'f')))
            {
                break;
            }
        }

        if (i != NGX_HTTP_REDUCTRAI_FP_LEN || arg[i] != '\0') {
            ngx_http_reductrai_cli_error(cli, "--api-key-fp takes the 8 "
                                         "lowercase hex digits of a record's "
                                         "api_key_fp, not \"%s\"", arg);
            return NGX_HTTP_REDUCTRAI_CLI_USAGE;
        }

        cli->api_key_fp = arg;
        return NGX_HTTP_REDUCTRAI_CLI_OK;

    case 'n':
        if (ngx_http_reductrai_cli_number(arg, 1, 1e15, &v) != 0
            || v != (uint64_t) v)
        {
            ngx_http_reductrai_cli_error(cli, "--limit must be a positive "
                                         "integer");
            return NGX_HTTP_REDUCTRAI_CLI_USAGE;
        }

        cli->limit = (uint64_t) v;
        return NGX_HTTP_REDUCTRAI_CLI_OK;

    case 'b':
        cli->body = 1;
        return NGX_HTTP_REDUCTRAI_CLI_OK;

    case 'H':
        colon = strchr(arg, ':');

        if (colon == NULL || colon == arg
            || strcspn(arg, " \t\r\n") < (size_t) (colon - arg)
            || strpbrk(arg, "\r\n") != NULL)
        {
            ngx_http_reductrai_cli_error(cli, "--header takes \"Name: "
                                         "value\"");
            return NGX_HTTP_REDUCTRAI_CLI_USAGE;
        }

        if (cli->nheaders == NGX_HTTP_REDUCTRAI_CLI_MAX_HEADERS) {
            ngx_http_reductrai_cli_error(cli, "too many headers");
            return NGX_HTTP_REDUCTRAI_CLI_USAGE;
        }

        cli->headers[cli->nheaders++] = (char *) arg;
        return NGX_HTTP_REDUCTRAI_CLI_OK;

    case NGX_HTTP_REDUCTRAI_OPT_RATE:
        if (ngx_http_reductrai_cli_number(arg, 0.001, 1e6, &v) != 0) {
            ngx_http_reductrai_cli_error(cli, "--rate must be a number of "
                                         "requests per second above 0");
            return NGX_HTTP_REDUCTRAI_CLI_USAGE;
        }

        cli->rate = v;
        return NGX_HTTP_REDUCTRAI_CLI_OK;

    case NGX_HTTP_REDUCTRAI_OPT_CONCURRENCY:
        return ngx_http_reductrai_cli_integer(cli, "--concurrency", arg, 1,
                                              256, &cli->concurrency);

    case NGX_HTTP_REDUCTRAI_OPT_RETRIES:
        return ngx_http_reductrai_cli_integer(cli, "--retries", arg, 0, 100,
                                              &cli->retries);

    case NGX_HTTP_REDUCTRAI_OPT_RETRY_MAX:
    case NGX_HTTP_REDUCTRAI_OPT_TIMEOUT:
        if (ngx_http_reductrai_cli_number(arg, 0.001, 86400, &v) != 0) {
            ngx_http_reductrai_cli_error(cli, "%s must be a number of "
                                         "seconds",
                                         opt == NGX_HTTP_REDUCTRAI_OPT_TIMEOUT
                                         ? "--timeout" : "--retry-max");
            return NGX_HTTP_REDUCTRAI_CLI_USAGE;
        }

        if (opt == NGX_HTTP_REDUCTRAI_OPT_TIMEOUT) {
            cli->timeout = v;

        } else {
            cli->retry_max = v;
        }

        return NGX_HTTP_REDUCTRAI_CLI_OK;

    case NGX_HTTP_REDUCTRAI_OPT_CHECKPOINT:
        cli->checkpoint = arg;
        return NGX_HTTP_REDUCTRAI_CLI_OK;

    case NGX_HTTP_REDUCTRAI_OPT_DRY_RUN:
        cli->dry_run = 1;
        return NGX_HTTP_REDUCTRAI_CLI_OK;

    case NGX_HTTP_REDUCTRAI_OPT_INSECURE:
        cli->insecure = 1;
        return NGX_HTTP_REDUCTRAI_CLI_OK;

    case NGX_HTTP_REDUCTRAI_OPT_PROGRESS:
        cli->progress = 1;
        return NGX_HTTP_REDUCTRAI_CLI_OK;

    case NGX_HTTP_REDUCTRAI_OPT_NO_PROGRESS:
        cli->progress = 0;
        return NGX_HTTP_REDUCTRAI_CLI_OK;

    case NGX_HTTP_REDUCTRAI_OPT_WINDOW:
        if (ngx_http_reductrai_cli_window_parse(cli->window, arg, err,
                                                sizeof(err))
            != 0)
        {
            ngx_http_reductrai_cli_error(cli, "%s", err);
            return NGX_HTTP_REDUCTRAI_CLI_USAGE;
        }

        return NGX_HTTP_REDUCTRAI_CLI_OK;

    case NGX_HTTP_REDUCTRAI_OPT_INCLUDE_EXPIRED:
        cli->include_expired = 1;
        return NGX_HTTP_REDUCTRAI_CLI_OK;
    }

    ngx_http_reductrai_cli_error(cli, "unknown option");

    return NGX_HTTP_REDUCTRAI_CLI_USAGE;
}


static int
ngx_http_reductrai_cli_allowed(const ngx_http_reductrai_cli_command_t *cmd,
    int opt)
{
    unsigned  need;

    switch (opt) {

    case 'v':
        return 1;

    case 's':
    case 'f':
    case NGX_HTTP_REDUCTRAI_OPT_UNTIL:
        need = NGX_HTTP_REDUCTRAI_CLI_O_SELECT;
        break;

    case 't':
        need = NGX_HTTP_REDUCTRAI_CLI_O_SELECT
               | NGX_HTTP_REDUCTRAI_CLI_O_REPLAY;
        break;

    case 'j':
        need = NGX_HTTP_REDUCTRAI_CLI_O_JOBS;
        break;

    case NGX_HTTP_REDUCTRAI_OPT_JSON:
        need = NGX_HTTP_REDUCTRAI_CLI_O_JSON;
        break;

    case 'g':
    case 'u':
    case 'n':
    case NGX_HTTP_REDUCTRAI_OPT_API_KEY_FP:
        need = NGX_HTTP_REDUCTRAI_CLI_O_FILTER;
        break;

    case 'b':
        need = NGX_HTTP_REDUCTRAI_CLI_O_BODY;
        break;

    default:
        need = NGX_HTTP_REDUCTRAI_CLI_O_REPLAY;
        break;
    }

    return (cmd->options & need) != 0;
}


static int
ngx_http_reductrai_cli_open(ngx_http_reductrai_cli_t *cli)
{
    char  cwd[PATH_MAX], err[512];

    if (getcwd(cwd, sizeof(cwd)) == NULL) {
        cwd[0] = '\0';
    }

    cli->st = ngx_http_reductrai_storage_create(cli->uri, cli->nparams,
                                                cli->params,
                                                cwd[0] ? cwd : NULL,
                                                err, sizeof(err));
    if (cli->st == NULL) {
        ngx_http_reductrai_cli_error(cli, "%s", err);
        return NGX_HTTP_REDUCTRAI_CLI_USAGE;
    }

    if (ngx_http_reductrai_storage_global_init() != 0) {
        ngx_http_reductrai_cli_error(cli, "curl_global_init() failed");
        return NGX_HTTP_REDUCTRAI_CLI_STORAGE;
    }

    if (ngx_http_reductrai_storage_init(cli->st, err, sizeof(err)) != 0) {
        ngx_http_reductrai_cli_error(cli, "storage %s: %s", cli->st->uri,
                                     err);
        return NGX_HTTP_REDUCTRAI_CLI_STORAGE;
    }

    return NGX_HTTP_REDUCTRAI_CLI_OK;
}


static int
ngx_http_reductrai_cli_number(const char *s, double min, double max,
    double *v)
{
    char  *end;

    errno = 0;
    *v = strtod(s, &end);

    if (errno != 0 || end == s || *end != '\0' || *v != *v
        || *v < min || *v > max)
    {
        return -1;
    }

    return 0;
}


static int
ngx_http_reductrai_cli_integer(ngx_http_reductrai_cli_t *cli,
    const char *name, const char *arg, int min, int max, int *value)
{
    double  v;

    if (ngx_http_reductrai_cli_number(arg, min, max, &v) != 0
        || v != (int) v)
    {
        ngx_http_reductrai_cli_error(cli, "%s must be %d to %d", name, min,
                                     max);
        return NGX_HTTP_REDUCTRAI_CLI_USAGE;
    }

    *value = (int) v;

    return NGX_HTTP_REDUCTRAI_CLI_OK;
}


static void
ngx_http_reductrai_cli_usage(FILE *f)
{
    fprintf(f,
        "usage: reductrai COMMAND STORAGE [name=value ...] [options]\n"
        "\n"
        "Commands:\n"
        "  ls      list archive objects (records, time range, size, ratio)\n"
        "  cat     print records as NDJSON, or their bodies\n"
        "  verify  check objects, checksums and segment sequences\n"
        "  replay  re-send records to an HTTP endpoint\n"
        "\n"
        "reductrai COMMAND --help describes a command; man reductrai has\n"
        "everything.  reductrai --version prints the version.\n"
        "\n"
        "Exit codes: 0 ok, 1 verify found problems, 2 usage, 3 storage\n"
        "unreachable or refused, 4 corrupt object read, 5 replay left\n"
        "records undelivered, 130 interrupted.\n");
}
