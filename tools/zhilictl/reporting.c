/* zhilictl reporting …: the one table's ops commands (docs/reporting.md).
 *
 *   zhilictl reporting rebuild [--wait] [--timeout S]
 *        drop the projection and replay every source from seq 1; with --wait,
 *        return once the replay is back where the table was (stats
 *        reporting_rebuilding = 0)
 *   zhilictl reporting export --period P [--area A] [--level L] [--csv] [--out FILE]
 *        the table as the gateway gives it: JSON (rates of a zero denominator
 *        null), or CSV for Excel (UTF-8 with a BOM, Chinese headers)
 *   zhilictl reporting alerts
 *        every alert state, one JSON object per line
 *
 * Exit status: 0 OK, 1 the reply was not OK (printed as JSON), 2 usage or
 * transport errors. The actor is the operator (admin, everywhere). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/codec.h"
#include "common/err.h"
#include "services/gateway/report_csv.h"
#include "tools/zhilictl/commands.h"

#define SERVICE "reporting"
#define CALL_TIMEOUT_MS 30000
#define WAIT_S_DEFAULT 600
#define WAIT_S_MAX 86400
#define POLL_MS 200

static int usage(void)
{
    fprintf(stderr, "usage: zhilictl reporting rebuild [--wait] [--timeout S]\n"
                    "       zhilictl reporting export --period YYYY-MM|YYYY [--area A] [--level L] "
                    "[--csv] [--out FILE]\n"
                    "       zhilictl reporting alerts\n");
    return 2;
}

/* Send cmd as the operator; 0 with *reply, 2 when nobody answered. */
static int call(zbus_client_t *client, Zhili__V1__Command *cmd, Zhili__V1__Reply **reply)
{
    Zhili__V1__Actor cli = ZHILI__V1__ACTOR__INIT;
    cli.id = "zhilictl";
    cli.role = "admin";
    cmd->actor = &cli;
    int rc = zbus_call(client, SERVICE, cmd, CALL_TIMEOUT_MS, reply);
    cmd->actor = NULL;
    if (rc != 0) {
        fprintf(stderr, "zhilictl: no reply from service '%s' within %d ms (%s)\n", SERVICE,
                CALL_TIMEOUT_MS, zerr_name(rc));
        return 2;
    }
    return 0;
}

static void print_msg(const ProtobufCMessage *m, FILE *out)
{
    json_t *j = zjson_from_msg(m);
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    if (s != NULL) {
        fprintf(out, "%s\n", s);
    }
    free(s);
    json_decref(j);
}

/* A reply that is not OK: printed, status 1. */
static int not_ok(Zhili__V1__Reply *r)
{
    print_msg(&r->base, stdout);
    zhili__v1__reply__free_unpacked(r, NULL);
    return 1;
}

static int64_t stat_value(const Zhili__V1__Stats *st, const char *name)
{
    for (size_t i = 0; st != NULL && i < st->n_stats; i++) {
        if (strcmp(st->stats[i]->name, name) == 0) {
            return st->stats[i]->value;
        }
    }
    return -1;
}

/* Poll the stats until the rebuild caught up, or timeout_s passed. */
static int wait_caught_up(zbus_client_t *client, long timeout_s)
{
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        Zhili__V1__StatsRequest sr = ZHILI__V1__STATS_REQUEST__INIT;
        Zhili__V1__Command cmd = ZHILI__V1__COMMAND__INIT;
        cmd.body_case = ZHILI__V1__COMMAND__BODY_STATS;
        cmd.stats = &sr;
        Zhili__V1__Reply *r = NULL;
        if (call(client, &cmd, &r) != 0) {
            return 2;
        }
        int64_t busy = stat_value(r->stats, "reporting_rebuilding");
        zhili__v1__reply__free_unpacked(r, NULL);
        if (busy == 0) {
            return 0;
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - start.tv_sec >= timeout_s) {
            fprintf(stderr, "zhilictl: the rebuild has not caught up after %ld s (it goes on)\n",
                    timeout_s);
            return 1;
        }
        struct timespec pause = {0, POLL_MS * 1000000L};
        nanosleep(&pause, NULL);
    }
}

static int cmd_rebuild(zbus_client_t *client, int argc, char **argv)
{
    bool wait = false;
    long timeout_s = WAIT_S_DEFAULT;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--wait") == 0) {
            wait = true;
        } else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
            char *end = NULL;
            errno = 0;
            timeout_s = strtol(argv[++i], &end, 10);
            if (errno != 0 || *end != '\0' || timeout_s < 1 || timeout_s > WAIT_S_MAX) {
                fprintf(stderr, "zhilictl: --timeout must be 1 to %d seconds\n", WAIT_S_MAX);
                return 2;
            }
        } else {
            return usage();
        }
    }
    Zhili__Reporting__Rebuild rb = ZHILI__REPORTING__REBUILD__INIT;
    Zhili__V1__Command cmd = ZHILI__V1__COMMAND__INIT;
    char rid[33];
    zbus_request_id_new(rid);
    cmd.request_id = rid; /* resends of this invocation are one rebuild */
    cmd.body_case = ZHILI__V1__COMMAND__BODY_REPORT_REBUILD;
    cmd.report_rebuild = &rb;
    Zhili__V1__Reply *r = NULL;
    if (call(client, &cmd, &r) != 0) {
        return 2;
    }
    if (r->status != ZHILI__V1__STATUS__STATUS_OK) {
        return not_ok(r);
    }
    print_msg(&r->report_rebuild->base, stdout);
    zhili__v1__reply__free_unpacked(r, NULL);
    return wait ? wait_caught_up(client, timeout_s) : 0;
}

typedef struct {
    const char *period, *area, *level, *out;
    bool csv;
} export_args_t;

static int export_args(int argc, char **argv, export_args_t *a)
{
    *a = (export_args_t){NULL, "", "", NULL, false};
    for (int i = 0; i < argc; i++) {
        bool more = i + 1 < argc;
        if (strcmp(argv[i], "--csv") == 0) {
            a->csv = true;
        } else if (strcmp(argv[i], "--period") == 0 && more) {
            a->period = argv[++i];
        } else if (strcmp(argv[i], "--area") == 0 && more) {
            a->area = argv[++i];
        } else if (strcmp(argv[i], "--level") == 0 && more) {
            a->level = argv[++i];
        } else if (strcmp(argv[i], "--out") == 0 && more) {
            a->out = argv[++i];
        } else {
            return -1;
        }
    }
    return a->period == NULL ? -1 : 0;
}

/* The rendered table into `out` (stdout when NULL). */
static int write_table(const Zhili__Reporting__Report *report, const export_args_t *a)
{
    json_t *j = zjson_from_msg(&report->base);
    char *text = NULL;
    size_t len = 0;
    char filename[96];
    if (j != NULL && a->csv) {
        text = zgw_report_csv(j, &len, filename, sizeof filename);
    } else if (j != NULL) {
        zgw_report_nulls(j);
        text = json_dumps(j, JSON_COMPACT);
        len = text ? strlen(text) : 0;
    }
    json_decref(j);
    if (text == NULL) {
        fprintf(stderr, "zhilictl: out of memory\n");
        return 2;
    }
    FILE *f = a->out ? fopen(a->out, "wb") : stdout;
    if (f == NULL) {
        fprintf(stderr, "zhilictl: cannot write %s: %s\n", a->out, strerror(errno));
        free(text);
        return 2;
    }
    bool ok = fwrite(text, 1, len, f) == len && (a->csv || fputc('\n', f) != EOF);
    ok = (a->out ? fclose(f) : fflush(f)) == 0 && ok;
    free(text);
    if (!ok) {
        fprintf(stderr, "zhilictl: writing the table failed: %s\n", strerror(errno));
        return 2;
    }
    return 0;
}

static int cmd_export(zbus_client_t *client, int argc, char **argv)
{
    export_args_t a;
    if (export_args(argc, argv, &a) != 0) {
        return usage();
    }
    Zhili__Reporting__ReportGet q = ZHILI__REPORTING__REPORT_GET__INIT;
    q.period = (char *)a.period;
    q.level = (char *)a.level;
    Zhili__V1__Command cmd = ZHILI__V1__COMMAND__INIT;
    cmd.area = (char *)a.area;
    cmd.body_case = ZHILI__V1__COMMAND__BODY_REPORT_GET;
    cmd.report_get = &q;
    Zhili__V1__Reply *r = NULL;
    if (call(client, &cmd, &r) != 0) {
        return 2;
    }
    if (r->status != ZHILI__V1__STATUS__STATUS_OK || r->report == NULL) {
        return not_ok(r);
    }
    int rc = write_table(r->report, &a);
    zhili__v1__reply__free_unpacked(r, NULL);
    return rc;
}

static int cmd_alerts(zbus_client_t *client, int argc)
{
    if (argc != 0) {
        return usage();
    }
    Zhili__Reporting__AlertsList q = ZHILI__REPORTING__ALERTS_LIST__INIT;
    Zhili__V1__Command cmd = ZHILI__V1__COMMAND__INIT;
    cmd.body_case = ZHILI__V1__COMMAND__BODY_REPORT_ALERTS;
    cmd.report_alerts = &q;
    Zhili__V1__Reply *r = NULL;
    if (call(client, &cmd, &r) != 0) {
        return 2;
    }
    if (r->status != ZHILI__V1__STATUS__STATUS_OK || r->report_alerts == NULL) {
        return not_ok(r);
    }
    for (size_t i = 0; i < r->report_alerts->n_alerts; i++) {
        print_msg(&r->report_alerts->alerts[i]->base, stdout);
    }
    zhili__v1__reply__free_unpacked(r, NULL);
    return 0;
}

int zctl_reporting(zbus_client_t *client, const zcfg_common_t *cfg, int argc, char **argv)
{
    (void)cfg;
    if (argc < 2) {
        return usage();
    }
    if (strcmp(argv[1], "rebuild") == 0) {
        return cmd_rebuild(client, argc - 2, argv + 2);
    }
    if (strcmp(argv[1], "export") == 0) {
        return cmd_export(client, argc - 2, argv + 2);
    }
    if (strcmp(argv[1], "alerts") == 0) {
        return cmd_alerts(client, argc - 2);
    }
    return usage();
}
