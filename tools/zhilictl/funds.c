/* zhilictl funds …: the trust accounts' ops commands (docs/funds.md).
 *
 *   zhilictl funds verify ACCOUNT              recompute the hash chain and the
 *                                              balances; names the first bad entry
 *   zhilictl funds statement ACCOUNT YYYY-MM   the monthly statement, printable
 *   zhilictl funds pipe [--service NAME] [--timeout MS]
 *                                              one Command (JSON) per stdin line to
 *                                              the funds service, one Reply (JSON)
 *                                              per stdout line, in order
 *
 * verify exits 0 when the journal is intact, 1 when it is not (or the reply
 * was not OK), 2 on usage or transport errors. The actor is the operator
 * (admin, everywhere) unless a pipe line carries its own. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/codec.h"
#include "common/err.h"
#include "tools/zhilictl/commands.h"

#define CALL_TIMEOUT_MS 30000
#define PIPE_LINE_BYTES_MAX (1u << 20)
#define SERVICE_DEFAULT "funds"

static int usage(void)
{
    fprintf(stderr, "usage: zhilictl funds verify ACCOUNT\n"
                    "       zhilictl funds statement ACCOUNT YYYY-MM\n"
                    "       zhilictl funds pipe [--service NAME] [--timeout MS]  (JSON lines)\n");
    return 2;
}

static int call(zbus_client_t *client, const char *service, Zhili__V1__Command *cmd, int timeout_ms,
                Zhili__V1__Reply **reply)
{
    Zhili__V1__Actor cli = ZHILI__V1__ACTOR__INIT;
    cli.id = "zhilictl";
    cli.role = "admin";
    bool own = cmd->actor == NULL;
    if (own) {
        cmd->actor = &cli;
    }
    int rc = zbus_call(client, service, cmd, timeout_ms, reply);
    if (own) {
        cmd->actor = NULL;
    }
    if (rc != 0) {
        fprintf(stderr, "zhilictl: no reply from service '%s' within %d ms (%s)\n", service,
                timeout_ms, zerr_name(rc));
        return 2;
    }
    return 0;
}

static void print_hex(const ProtobufCBinaryData *b)
{
    for (size_t i = 0; i < b->len; i++) {
        printf("%02x", b->data[i]);
    }
}

static int cmd_verify(zbus_client_t *client, int argc, char **argv)
{
    if (argc != 1) {
        return usage();
    }
    Zhili__Funds__Verify v = ZHILI__FUNDS__VERIFY__INIT;
    v.account = argv[0];
    Zhili__V1__Command cmd = ZHILI__V1__COMMAND__INIT;
    cmd.area = argv[0];
    cmd.body_case = ZHILI__V1__COMMAND__BODY_FUNDS_VERIFY;
    cmd.funds_verify = &v;
    Zhili__V1__Reply *r = NULL;
    if (call(client, SERVICE_DEFAULT, &cmd, CALL_TIMEOUT_MS, &r) != 0) {
        return 2;
    }
    int status = 1;
    if (r->status != ZHILI__V1__STATUS__STATUS_OK || r->funds_verify == NULL) {
        fprintf(stderr, "zhilictl: %s\n", r->message);
    } else {
        const Zhili__Funds__VerifyResult *vr = r->funds_verify;
        if (vr->ok) {
            printf("ok account=%s entries=%llu balance=%lld held=%lld head=", vr->account,
                   (unsigned long long)vr->entries, (long long)vr->balance, (long long)vr->held);
            print_hex(&vr->head_hash);
            printf("\n");
            status = 0;
        } else {
            printf("BAD account=%s first_bad_entry=%llu entries_checked=%llu problem=\"%s\"\n",
                   vr->account, (unsigned long long)vr->first_bad_seq,
                   (unsigned long long)vr->entries, vr->problem);
        }
    }
    zhili__v1__reply__free_unpacked(r, NULL);
    return status;
}

static const char *category_zh(int c)
{
    static const char *const names[] = {"",         "物业费",   "停车费", "广告位租金",
                                        "场地租金", "利息收入", "其他"};
    return c >= 1 && c <= 6 ? names[c] : "?";
}

static void yuan(const char *label, int64_t fen)
{
    const char *sign = fen < 0 ? "-" : "";
    long long a = fen < 0 ? -(long long)fen : (long long)fen;
    printf("  %-24s %s%lld.%02lld 元\n", label, sign, a / 100, a % 100);
}

static int cmd_statement(zbus_client_t *client, int argc, char **argv)
{
    if (argc != 2) {
        return usage();
    }
    Zhili__Funds__StatementGet g = ZHILI__FUNDS__STATEMENT_GET__INIT;
    g.account = argv[0];
    g.month = argv[1];
    Zhili__V1__Command cmd = ZHILI__V1__COMMAND__INIT;
    cmd.area = argv[0];
    cmd.body_case = ZHILI__V1__COMMAND__BODY_FUNDS_STATEMENT_GET;
    cmd.funds_statement_get = &g;
    Zhili__V1__Reply *r = NULL;
    if (call(client, SERVICE_DEFAULT, &cmd, CALL_TIMEOUT_MS, &r) != 0) {
        return 2;
    }
    int status = 1;
    if (r->status != ZHILI__V1__STATUS__STATUS_OK || r->funds_statement == NULL) {
        fprintf(stderr, "zhilictl: %s\n", r->message);
    } else {
        const Zhili__Funds__Statement *s = r->funds_statement;
        printf("%s 共有资金月度收支公示 %s\n", s->account, s->month);
        yuan("期初余额 opening", s->opening);
        for (size_t i = 0; i < s->n_revenue; i++) {
            char label[64];
            snprintf(label, sizeof label, "收入 %s", category_zh((int)s->revenue[i]->category));
            yuan(label, s->revenue[i]->amount);
        }
        yuan("收入合计 revenue", s->revenue_total);
        for (size_t i = 0; i < s->n_withdrawals; i++) {
            char label[96];
            snprintf(label, sizeof label, "支出 %s", s->withdrawals[i]->line);
            yuan(label, s->withdrawals[i]->amount);
        }
        yuan("支出合计 withdrawals", s->withdrawals_total);
        yuan("期末余额 closing", s->closing);
        yuan("冻结待付 held", s->held);
        status = 0;
    }
    zhili__v1__reply__free_unpacked(r, NULL);
    return status;
}

static void print_reply(const Zhili__V1__Reply *r)
{
    json_t *j = zjson_from_msg(&r->base);
    char *s = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
    puts(s != NULL ? s : "{}");
    free(s);
    json_decref(j);
}

/* Commands as JSON lines, each answered before the next is sent, so a line
 * may depend on the ones before it (a test driver, a bulk import). */
static int cmd_pipe(zbus_client_t *client, int argc, char **argv)
{
    const char *service = SERVICE_DEFAULT;
    int timeout_ms = CALL_TIMEOUT_MS;
    for (int i = 0; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--service") == 0) {
            service = argv[i + 1];
        } else if (strcmp(argv[i], "--timeout") == 0) {
            timeout_ms = atoi(argv[i + 1]);
        } else {
            return usage();
        }
    }
    if (argc % 2 != 0 || timeout_ms <= 0) {
        return usage();
    }
    char *line = malloc(PIPE_LINE_BYTES_MAX);
    if (line == NULL) {
        return 2;
    }
    int status = 0;
    while (fgets(line, PIPE_LINE_BYTES_MAX, stdin) != NULL) {
        size_t len = strcspn(line, "\r\n");
        line[len] = '\0';
        if (len == 0) {
            continue;
        }
        ProtobufCMessage *m = NULL;
        char err[ZCODEC_ERR_BYTES], field[ZCODEC_ERR_BYTES];
        if (zjson_parse_msg(line, len, &zhili__v1__command__descriptor, &m, err, field) != 0) {
            printf("{\"status\":\"invalid\",\"message\":\"zhilictl: %s\"}\n", "not a Command");
            fflush(stdout);
            status = 1;
            continue;
        }
        Zhili__V1__Command *cmd = (Zhili__V1__Command *)m;
        Zhili__V1__Reply *r = NULL;
        int rc = call(client, service, cmd, timeout_ms, &r);
        zhili__v1__command__free_unpacked(cmd, NULL);
        if (rc != 0) {
            printf("{\"status\":\"timeout\",\"message\":\"no reply\"}\n");
            status = 2;
        } else {
            print_reply(r);
            zhili__v1__reply__free_unpacked(r, NULL);
        }
        fflush(stdout);
    }
    free(line);
    return status;
}

int zctl_funds(zbus_client_t *client, const zcfg_common_t *cfg, int argc, char **argv)
{
    (void)cfg;
    if (argc < 2) {
        return usage();
    }
    if (strcmp(argv[1], "verify") == 0) {
        return cmd_verify(client, argc - 2, argv + 2);
    }
    if (strcmp(argv[1], "statement") == 0) {
        return cmd_statement(client, argc - 2, argv + 2);
    }
    if (strcmp(argv[1], "pipe") == 0) {
        return cmd_pipe(client, argc - 2, argv + 2);
    }
    return usage();
}
