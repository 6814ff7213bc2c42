/* The route table. One row per resource and method; later services add
 * their rows here and to docs/openapi.yaml (tests/e2e/test_gateway.py checks
 * that every row is documented). Permissions are keys of permissions.c. */
#include "services/gateway/routes.h"

#include <string.h>

#include "common/err.h"

#define CMD(m, p, svc, c, perm, ok, sum) {m, p, ZGW_ROUTE_COMMAND, svc, c, perm, ok, NULL, false, sum}
#define TEST(m, p, svc, c, perm, ok, sum) {m, p, ZGW_ROUTE_COMMAND, svc, c, perm, ok, NULL, true, sum}
#define BUILTIN(m, p, name, perm, sum) {m, p, ZGW_ROUTE_BUILTIN, NULL, NULL, perm, 200, name, false, sum}

const zgw_route_t zgw_routes[] = {
    BUILTIN("GET", "/healthz", "healthz", NULL, "the process is up"),
    BUILTIN("GET", "/readyz", "readyz", NULL, "the broker answers and the required services are registered"),
    BUILTIN("GET", "/metrics", "metrics", "metrics.read", "Prometheus text: gateway, broker and service figures"),
    BUILTIN("GET", "/api/v1/whoami", "whoami", "session.create", "the caller's role, area and name"),
    BUILTIN("POST", "/api/v1/session", "session_create", "session.create", "trade a bearer token for a session cookie"),
    BUILTIN("DELETE", "/api/v1/session", "session_delete", NULL, "end the session (clears the cookie)"),
    BUILTIN("POST", "/api/v1/stream-ticket", "ticket", "stream.read", "a short-lived ticket for ?ticket= on the stream URLs"),
    BUILTIN("GET", "/api/v1/stream", "stream", "stream.read", "live events as Server-Sent Events, resumable with Last-Event-ID"),
    BUILTIN("GET", "/api/v1/ws", "ws", "stream.read", "live events over WebSocket, resumable with ?since="),
    BUILTIN("GET", "/api/v1/routes", "routes", "session.create", "this table, for clients and docs"),

    /* ---- grid (services/grid) ---- */
    /* docs/grid.md. The service re-checks the caller's area for every id. */
    CMD("GET", "/api/v1/grid/units", "grid", "grid_units_list", "grid.read", 200, "units under the area: the children of ?parent=, or every unit at ?level= (1 district .. 5 building)"),
    CMD("GET", "/api/v1/grid/units/{code}", "grid", "grid_unit_get", "grid.read", 200, "a unit with its ancestors, number of children and linked police grids"),
    CMD("PUT", "/api/v1/grid/units/{code}", "grid", "grid_unit_upsert", "grid.units.write", 200, "create or change a unit: name, leader, grid party branch (网格党支部), centroid, boundary"),
    CMD("DELETE", "/api/v1/grid/units/{code}", "grid", "grid_unit_remove", "grid.units.write", 200, "remove a unit that holds no units, people, police grids or key persons"),
    CMD("GET", "/api/v1/grid/units/{grid}/police-grids", "grid", "grid_police_grids_list", "grid.read", 200, "the police grids (警格) linked to an admin grid"),
    CMD("GET", "/api/v1/grid/locate", "grid", "grid_locate", "grid.read", 200, "the unit at ?lat=&long=: the smallest whose boundary holds it, else the nearest centroid"),
    CMD("GET", "/api/v1/grid/people", "grid", "grid_people_list", "grid.read", 200, "grid members, auxiliary and community police, station chiefs, mass-prevention force (?kind=)"),
    CMD("PUT", "/api/v1/grid/people/{id}", "grid", "grid_person_upsert", "grid.people.write", 200, "register or change a person and their role"),
    CMD("DELETE", "/api/v1/grid/people/{id}", "grid", "grid_person_remove", "grid.people.write", 200, "remove a person (not while responsible for a key person)"),
    CMD("GET", "/api/v1/grid/teams", "grid", "grid_teams_list", "grid.read", 200, "community police teams (社区警务团队)"),
    CMD("PUT", "/api/v1/grid/teams/{id}", "grid", "grid_team_upsert", "grid.people.write", 200, "create or change a community police team"),
    CMD("DELETE", "/api/v1/grid/teams/{id}", "grid", "grid_team_remove", "grid.people.write", 200, "dissolve a community police team"),
    CMD("GET", "/api/v1/grid/police-grids", "grid", "grid_police_grids_list", "grid.read", 200, "police grids (警格) inside the area"),
    CMD("GET", "/api/v1/grid/police-grids/{id}", "grid", "grid_police_grid_get", "grid.read", 200, "a police grid with its linked admin grids"),
    CMD("PUT", "/api/v1/grid/police-grids/{id}", "grid", "grid_police_grid_upsert", "grid.police.write", 200, "create or change a police grid and the admin grids it covers"),
    CMD("DELETE", "/api/v1/grid/police-grids/{id}", "grid", "grid_police_grid_remove", "grid.police.write", 200, "remove a police grid and its links"),
    CMD("GET", "/api/v1/grid/centers", "grid", "grid_centers_list", "grid.read", 200, "party-member central households (党员中心户)"),
    CMD("PUT", "/api/v1/grid/centers/{building}/{room}", "grid", "grid_center_upsert", "grid.units.write", 200, "name a party-member central household and its linked households"),
    CMD("DELETE", "/api/v1/grid/centers/{building}/{room}", "grid", "grid_center_remove", "grid.units.write", 200, "remove a party-member central household"),
    CMD("POST", "/api/v1/grid/visits", "grid", "grid_visit_record", "grid.visits.write", 201, "record a household or key-person visit (入户走访) with findings and hazards"),
    CMD("GET", "/api/v1/grid/visits", "grid", "grid_visits_list", "grid.visits.read", 200, "visits inside the area in a period (?from=&to=)"),
    CMD("POST", "/api/v1/grid/disputes", "grid", "grid_dispute_register", "grid.disputes.write", 201, "register a dispute (矛盾纠纷录入): parties, type, level, description"),
    CMD("GET", "/api/v1/grid/disputes", "grid", "grid_disputes_list", "grid.disputes.read", 200, "disputes inside the area (?state=)"),
    CMD("GET", "/api/v1/grid/disputes/{id}", "grid", "grid_dispute_get", "grid.disputes.read", 200, "one dispute and its history"),
    CMD("POST", "/api/v1/grid/disputes/{id}/sign", "grid", "grid_dispute_sign", "grid.disputes.write", 200, "sign for a registered dispute (签收)"),
    CMD("POST", "/api/v1/grid/disputes/{id}/mediate", "grid", "grid_dispute_mediate", "grid.disputes.write", 200, "start mediation (办理) with a handler"),
    CMD("POST", "/api/v1/grid/disputes/{id}/resolve", "grid", "grid_dispute_resolve", "grid.disputes.write", 200, "mediation succeeded (化解) with the outcome"),
    CMD("POST", "/api/v1/grid/disputes/{id}/fail", "grid", "grid_dispute_fail", "grid.disputes.write", 200, "mediation failed, with the reason"),
    CMD("POST", "/api/v1/grid/disputes/{id}/evaluate", "grid", "grid_dispute_evaluate", "grid.disputes.write", 200, "follow-up evaluation (跟踪评价)"),
    CMD("POST", "/api/v1/grid/disputes/{id}/archive", "grid", "grid_dispute_archive", "grid.disputes.write", 200, "archive an evaluated dispute (归档)"),
    CMD("POST", "/api/v1/grid/keypersons", "grid", "grid_keyperson_register", "grid.keypersons.write", 201, "put a person under management (重点人员列管); personal fields are sealed at rest"),
    CMD("GET", "/api/v1/grid/keypersons", "grid", "grid_keypersons_list", "grid.keypersons.read", 200, "key persons inside the area, without personal fields (?overdue=1, ?category=)"),
    CMD("GET", "/api/v1/grid/keypersons/{id}", "grid", "grid_keyperson_get", "grid.keypersons.read", 200, "one key person, without personal fields"),
    CMD("PATCH", "/api/v1/grid/keypersons/{id}", "grid", "grid_keyperson_update", "grid.keypersons.write", 200, "change category, risk, responsible member, visit interval or personal fields"),
    CMD("DELETE", "/api/v1/grid/keypersons/{id}", "grid", "grid_keyperson_remove", "grid.keypersons.write", 200, "release from management (解除列管, ?reason=); the personal fields are erased"),
    CMD("POST", "/api/v1/grid/keypersons/{id}/reveal", "grid", "grid_keyperson_reveal", "grid.keypersons.reveal", 201, "ask to read the personal fields: writes the audit event, returns a 60 s grant"),
    CMD("GET", "/api/v1/grid/keypersons/{id}/personal", "grid", "grid_keyperson_personal", "grid.keypersons.reveal", 200, "the personal fields, with ?grant= from reveal"),
    CMD("GET", "/api/v1/qr/{code}", "grid", "grid_qr_resolve", NULL, 200, "the grid or building of a QR code (扫码即办): no token, public fields only"),

    /* ---- petitions (services/petitions) ---- */
    /* Rows before /api/v1/petitions/{id}: the first row that fits wins. */
    CMD("POST", "/api/v1/petitions", "petitions", "petition_create", "petitions.create", 201, "file a petition (12345 hotline push, staff entry); Idempotency-Key is the hotline ticket id"),
    CMD("POST", "/api/v1/petitions/batch", "petitions", "petition_batch_create", "petitions.create", 200, "file up to 1000 petitions {\"petitions\":[...]}: valid rows accepted, bad rows reported by index"),
    CMD("GET", "/api/v1/petitions", "petitions", "petition_list", "petitions.read", 200, "petitions by area, state, category, overdue and time, newest first, cursor-paginated"),
    CMD("GET", "/api/v1/petitions/catalogue", "petitions", "petition_catalogue_get", "petitions.read", 200, "the categories (codes, Chinese names), their deadlines and routing levels"),
    CMD("GET", "/api/v1/petitions/inbox/{unit}", "petitions", "petition_inbox", "petitions.read", 200, "a unit's open petitions, oldest first"),
    CMD("GET", "/api/v1/petitions/units/{unit}/counts", "petitions", "petition_unit_counts_get", "petitions.read", 200, "a unit's returns (退单), reopens (重办) and open petitions"),
    CMD("GET", "/api/v1/petitions/{id}", "petitions", "petition_get", "petitions.read", 200, "one petition (a hotline token reads only what it pushed)"),
    CMD("POST", "/api/v1/petitions/{id}/sign", "petitions", "petition_sign", "petitions.handle", 200, "sign for it (签收): staff or grid members of the assigned unit"),
    CMD("POST", "/api/v1/petitions/{id}/progress", "petitions", "petition_progress", "petitions.handle", 200, "a progress note (办理进展)"),
    CMD("POST", "/api/v1/petitions/{id}/reply", "petitions", "petition_reply", "petitions.handle", 200, "the answer to the citizen (办结)"),
    CMD("POST", "/api/v1/petitions/{id}/return", "petitions", "petition_return", "petitions.handle", 200, "send it back for re-routing (退单) with a reason code"),
    CMD("POST", "/api/v1/petitions/{id}/evaluate", "petitions", "petition_evaluate", "petitions.evaluate", 200, "the citizen's evaluation (回访): solved, 满意/基本满意/不满意; 不满意 reopens it"),
    CMD("POST", "/api/v1/petitions/{id}/assign", "petitions", "petition_assign", "petitions.route", 200, "re-route it to a unit"),
    CMD("POST", "/api/v1/petitions/{id}/merge", "petitions", "petition_merge", "petitions.route", 200, "merge this duplicate into another petition"),
    CMD("POST", "/api/v1/petitions/{id}/urge", "petitions", "petition_urge", "petitions.supervise", 200, "urge the unit (催办)"),
    CMD("POST", "/api/v1/petitions/{id}/extend", "petitions", "petition_extend", "petitions.supervise", 200, "approve an extension of the reply deadline (before it passes)"),
    CMD("POST", "/api/v1/petitions/{id}/archive", "petitions", "petition_archive", "petitions.supervise", 200, "archive an evaluated petition (归档)"),
    CMD("POST", "/api/v1/qr/{code}/petitions", "petitions", "petition_qr_create", NULL, 201, "a resident's QR scan (扫码即办): no token; rate-limited per code and per client address"),

    /* ---- funds (services/funds) ---- */
    /* docs/funds.md. {account} is the compound's 15-digit code; the service
     * checks it against the caller's area and applies the holder rules. */
    CMD("POST", "/api/v1/funds/{account}", "funds", "funds_account_open", "funds.admin", 201, "open a compound's trust account (幸福信托 共有资金独立账户) with its two withdrawal holders"),
    CMD("GET", "/api/v1/funds/{account}", "funds", "funds_account_get", "funds.read", 200, "balance, held and available; holders and credential state in the full view (?ticket= or role)"),
    CMD("PUT", "/api/v1/funds/{account}/credentials/{credential}", "funds", "funds_credential_set", "funds.credentials", 200, "set or change a secret (双密码): holder_a, holder_b by that holder; query by a holder"),
    CMD("POST", "/api/v1/funds/{account}/credentials/{credential}/reset", "funds", "funds_credential_reset", "funds.reset", 200, "one half of the two-party reset of a locked credential (an admin and a supervisor)"),
    CMD("POST", "/api/v1/funds/{account}/unlock", "funds", "funds_query_unlock", "funds.read", 201, "trade the query secret (查询密码) for a short-lived ticket for the full view"),
    CMD("POST", "/api/v1/funds/{account}/deposits", "funds", "funds_deposit", "funds.deposit", 201, "record revenue (物业费, 停车费, 广告位租金, 场地租金, 其他) with payer and receipt number"),
    CMD("GET", "/api/v1/funds/{account}/entries", "funds", "funds_entries_list", "funds.read", 200, "journal entries by period (?from=&to=) and ?category=, oldest first, paged by ?after_seq="),
    CMD("POST", "/api/v1/funds/{account}/entries/{seq}/reverse", "funds", "funds_reverse", "funds.correct", 201, "correct an entry with a new reversing entry (冲正); entries are never edited"),
    CMD("GET", "/api/v1/funds/{account}/statements/{month}", "funds", "funds_statement_get", "funds.read", 200, "the monthly statement: opening, revenue by category, withdrawals by budget line, closing"),
    CMD("GET", "/api/v1/funds/{account}/verify", "funds", "funds_verify", "funds.verify", 200, "recompute the hash chain and balances (现场账目查询) and name the first bad entry"),
    CMD("POST", "/api/v1/funds/{account}/withdrawals", "funds", "funds_withdrawal_request", "funds.withdraw", 201, "request a withdrawal against a budget line (以收定支): held until two holders approve"),
    CMD("GET", "/api/v1/funds/{account}/withdrawals", "funds", "funds_withdrawals_list", "funds.read", 200, "withdrawals, ?state= filter, paged by ?after="),
    CMD("GET", "/api/v1/funds/{account}/withdrawals/{withdrawal_id}", "funds", "funds_withdrawal_get", "funds.read", 200, "one withdrawal with its approvals"),
    CMD("POST", "/api/v1/funds/{account}/withdrawals/{withdrawal_id}/approve", "funds", "funds_withdrawal_approve", "funds.approve", 200, "approve as one of the two holders with that holder's secret; the second approval posts it"),
    CMD("POST", "/api/v1/funds/{account}/withdrawals/{withdrawal_id}/reject", "funds", "funds_withdrawal_reject", "funds.reject", 200, "reject a pending withdrawal (a holder or an admin); the hold is released"),
    CMD("POST", "/api/v1/funds/{account}/withdrawals/{withdrawal_id}/void", "funds", "funds_withdrawal_void", "funds.withdraw", 200, "withdraw one's own pending request; the hold is released"),
    CMD("POST", "/api/v1/funds/{account}/fees/{period}/bills", "funds", "funds_fee_bill", "funds.fees.write", 201, "bill households for a period: per m² of floor area, or flat"),
    CMD("POST", "/api/v1/funds/{account}/fees/{period}/payments", "funds", "funds_fee_pay", "funds.fees.write", 201, "record a household's payment (also a 物业费 deposit under its receipt number)"),
    CMD("GET", "/api/v1/funds/{account}/fees/{period}", "funds", "funds_fee_summary_get", "funds.read", 200, "the collection rate (收缴率) of a period: households billed and paid, amounts"),
    CMD("GET", "/api/v1/funds/{account}/fees/{period}/arrears", "funds", "funds_arrears_list", "funds.fees.read", 200, "households that have not paid the period's bill in full"),
    CMD("POST", "/api/v1/funds/{account}/assets", "funds", "funds_asset_register", "funds.assets.write", 201, "register a public asset (两房一共): name, kind, location, area, status"),
    CMD("GET", "/api/v1/funds/{account}/assets", "funds", "funds_assets_list", "funds.read", 200, "the compound's public assets with their inventory and leases"),
    CMD("POST", "/api/v1/funds/{account}/assets/{asset_id}/steps", "funds", "funds_asset_step", "funds.assets.step", 201, "record the next step of 四步清底法 (部门盘点 → 物业提报 → 现场核验 → 群众审议)"),
    CMD("POST", "/api/v1/funds/{account}/assets/{asset_id}/lease", "funds", "funds_asset_lease", "funds.assets.lease", 201, "lease an inventoried asset to an operator; its monthly rent is posted as 场地租金"),
    CMD("POST", "/api/v1/funds/{account}/assets/{asset_id}/lease/end", "funds", "funds_asset_lease_end", "funds.assets.lease", 200, "end an asset's lease"),
    CMD("POST", "/api/v1/funds/{account}/rent", "funds", "funds_rent_post", "funds.rent", 200, "post the rents due up to now (the service also does this on the 1st of each month)"),

    /* ---- budgets (services/budgets) ---- */
    /* docs/budgets.md. {area} is the compound's 15-digit code; the service
     * checks it against the caller's area and the co-signing roles. */
    CMD("GET", "/api/v1/budgets/catalogue", "budgets", "budgets_catalogue_get", "budgets.read", 200, "the default catalogue: 6 categories, 28 items with codes and Chinese names"),
    CMD("GET", "/api/v1/budgets/{area}/catalogue", "budgets", "budgets_catalogue_get", "budgets.read", 200, "a compound's catalogue: the default items with its own added or renamed ones"),
    CMD("GET", "/api/v1/budgets/{area}/queries", "budgets", "budgets_queries_list", "budgets.read", 200, "owners' queries (质询) of the compound with their public answers, deadlines and overdue flags"),
    CMD("POST", "/api/v1/budgets/{area}/queries/{id}/answer", "budgets", "budgets_query_answer", "budgets.answer", 200, "answer a query (the property company or the owners' committee), once; answers are public"),
    CMD("POST", "/api/v1/budgets/{area}/evaluations", "budgets", "budgets_eval_record", "budgets.evaluate", 201, "record an evaluation (一查三评): account_check, questionnaire, rating (a resident, once a month) or branch"),
    CMD("GET", "/api/v1/budgets/{area}/score/{month}", "budgets", "budgets_score_get", "budgets.read", 200, "the property service score of a month (DESIGN §5 formula) with its components"),
    CMD("GET", "/api/v1/budgets/{area}/lists", "budgets", "budgets_lists_get", "budgets.read", 200, "the three lists (三张清单): party-branch functions, committee duties, property services with standards, progress and meetings"),
    CMD("PUT", "/api/v1/budgets/{area}/services/{service}/standard", "budgets", "budgets_standard_set", "budgets.lists", 200, "set the compound's standard of a property service (S1-S6)"),
    CMD("POST", "/api/v1/budgets/{area}/services/{service}/progress", "budgets", "budgets_progress_add", "budgets.progress", 201, "update the progress of a property service (线上更新履约进度) with date and note"),
    CMD("POST", "/api/v1/budgets/{area}/meetings", "budgets", "budgets_meeting_record", "budgets.meetings", 201, "record a three-party evaluation meeting (三方评议会) with attendees and minutes"),
    CMD("PUT", "/api/v1/budgets/{area}/items/{code}", "budgets", "budgets_item_set", "budgets.draft", 200, "add an item of the compound's own, or rename a default one"),
    CMD("PUT", "/api/v1/budgets/{area}/{year}", "budgets", "budgets_draft", "budgets.draft", 200, "draft (or redraft) the year's budget: expected income and lines (以收定支)"),
    CMD("GET", "/api/v1/budgets/{area}/{year}", "budgets", "budgets_get", "budgets.read", 200, "the year's budget: state, signatures, lines with reserved, spent and remaining"),
    CMD("POST", "/api/v1/budgets/{area}/{year}/submit", "budgets", "budgets_submit", "budgets.draft", 200, "submit the draft for co-signing (联签联审)"),
    CMD("POST", "/api/v1/budgets/{area}/{year}/sign", "budgets", "budgets_sign", "budgets.sign", 200, "co-sign as the caller's party (committee, party_branch, property); all three make it active"),
    CMD("GET", "/api/v1/budgets/{area}/{year}/execution/{month}", "budgets", "budgets_execution_get", "budgets.read", 200, "execution of a month (每月执行公示): per line budget to date, actual, variance, rate"),
    CMD("POST", "/api/v1/budgets/{area}/{year}/queries", "budgets", "budgets_query_raise", "budgets.query", 201, "a resident's query (质询) on a budget line; to be answered within 7 days"),
    CMD("GET", "/api/v1/budgets/{area}/{year}/notice/{month}", "budgets", "budgets_notice_get", "budgets.read", 200, "the month's execution as a printable Chinese HTML notice for the bulletin board (公示栏), in {html}"),
    {"GET", "/api/v1/budgets/{area}/{year}/notice/{month}/print", ZGW_ROUTE_COMMAND, "budgets", "budgets_notice_get", "budgets.read", 200, "html", false, "the same notice as a text/html page to print for the bulletin board (公示栏)"},

    /* ---- reporting (services/reporting) ---- */
    /* docs/reporting.md. A command route whose `builtin` names a renderer
     * (report_csv.c) has its result rendered: "report" writes a rate of a
     * zero denominator as null, "report_csv" as CSV for Excel. */
    {"GET", "/api/v1/report", ZGW_ROUTE_COMMAND, "reporting", "report_get", "report.read", 200, "report", false, "the one table (一张表): ?area=&period=2026-10|2026&level=community, each indicator this period and a year before, with totals"},
    {"GET", "/api/v1/report.csv", ZGW_ROUTE_COMMAND, "reporting", "report_get", "report.read", 200, "report_csv", false, "the one table as CSV (UTF-8 with BOM, Chinese headers) for Excel"},
    CMD("GET", "/api/v1/report/cells", "reporting", "report_cells", "report.read", 200, "drill-down: the events behind one cell (?area=&period=&indicator=&part=), paginated"),
    CMD("GET", "/api/v1/report/redblack", "reporting", "report_redblack", "report.redblack", 200, "the property red/black list (红黑榜) of the compounds under ?area= for a month"),
    CMD("GET", "/api/v1/report/alerts", "reporting", "report_alerts", "report.read", 200, "alert states (raised and cleared) inside the caller's scope"),
    CMD("POST", "/api/v1/report/rebuild", "reporting", "report_rebuild", "report.rebuild", 200, "drop the projection and replay every source from seq 1 (operators)"),

    /* Test-only resources on the test counter service (tests/testsvc). */
    TEST("POST", "/api/v1/test/counters", "testsvc", "counter_add", "test.counter.write", 201, "add to a test counter"),
    TEST("GET", "/api/v1/test/counters/{name}", "testsvc", "counter_get", "test.counter.read", 200, "read a test counter"),
};

const int zgw_route_count = (int)(sizeof zgw_routes / sizeof zgw_routes[0]);

/* Does `path` fit `pattern`? Fills params for {x} segments. */
static bool fits(const char *pattern, const char *path, int path_len, zgw_param_t *params,
                 int *count)
{
    const char *p = pattern;
    int at = 0;
    *count = 0;
    while (*p != '\0') {
        if (*p == '{') {
            const char *close = strchr(p, '}');
            int start = at;
            while (at < path_len && path[at] != '/') {
                at++;
            }
            if (at == start || *count == ZGW_PATH_PARAMS_MAX) {
                return false;
            }
            params[*count] = (zgw_param_t){p + 1, (int)(close - p - 1), path + start, at - start};
            (*count)++;
            p = close + 1;
        } else {
            if (at >= path_len || path[at] != *p) {
                return false;
            }
            at++;
            p++;
        }
    }
    return at == path_len;
}

/* Routes are looked up by their group: the pattern up to its fourth '/'
 * ("/api/v1/budgets", "/healthz"), so a request walks only the few rows of its
 * resource instead of the whole table (the walk was 5k instructions a request,
 * a tenth of the gateway's own work on its read route). A pattern with a
 * '{' inside its group key fits any group and is kept in every list, in table
 * order, so the first row that fits still wins. Built once. */
#define GROUPS_MAX 64
#define ROUTES_MAX (int)(sizeof zgw_routes / sizeof zgw_routes[0])

typedef struct {
    const char *key; /* a slice of the first pattern of the group */
    int key_len;
    int rows[ROUTES_MAX];
    int row_count;
} group_t;

static group_t groups[GROUPS_MAX];
static int group_count;
static group_t any_group; /* the rows every group holds: a path outside all groups walks these */
static int literal_len[ROUTES_MAX];
static bool index_ready;

/* Length of s's group key (s up to its fourth '/', or all of it). */
static int key_len_of(const char *s, int len)
{
    int slashes = 0;
    for (int i = 0; i < len; i++) {
        if (s[i] == '/' && ++slashes == 4) {
            return i;
        }
    }
    return len;
}

static group_t *group_find(const char *key, int key_len)
{
    for (int g = 0; g < group_count; g++) {
        if (groups[g].key_len == key_len && memcmp(groups[g].key, key, (size_t)key_len) == 0) {
            return &groups[g];
        }
    }
    return NULL;
}

static void index_init(void)
{
    for (int i = 0; i < zgw_route_count; i++) {
        const char *pattern = zgw_routes[i].pattern;
        const char *brace = strchr(pattern, '{');
        literal_len[i] = (int)(brace != NULL ? (size_t)(brace - pattern) : strlen(pattern));
        int key_len = key_len_of(pattern, (int)strlen(pattern));
        if (key_len > literal_len[i] || group_find(pattern, key_len) != NULL) {
            continue;
        }
        ZASSERT(group_count < GROUPS_MAX);
        groups[group_count++] = (group_t){.key = pattern, .key_len = key_len};
    }
    for (int i = 0; i < zgw_route_count; i++) {
        const char *pattern = zgw_routes[i].pattern;
        int key_len = key_len_of(pattern, (int)strlen(pattern));
        bool any = key_len > literal_len[i];
        for (int g = 0; g < group_count; g++) {
            if (any || (groups[g].key_len == key_len &&
                        memcmp(groups[g].key, pattern, (size_t)key_len) == 0)) {
                groups[g].rows[groups[g].row_count++] = i;
            }
        }
        if (any) {
            any_group.rows[any_group.row_count++] = i;
        }
    }
    index_ready = true;
}

int zgw_route_match(const char *method, int method_len, const char *path, int path_len,
                    bool test_routes, zgw_param_t params[ZGW_PATH_PARAMS_MAX], int *param_count)
{
    if (!index_ready) {
        index_init();
    }
    const group_t *group = group_find(path, key_len_of(path, path_len));
    if (group == NULL) {
        group = &any_group;
    }
    int found = -1;
    for (int k = 0; k < group->row_count; k++) {
        int i = group->rows[k];
        const zgw_route_t *r = &zgw_routes[i];
        int head = literal_len[i];
        if ((r->test_only && !test_routes) || head > path_len ||
            memcmp(r->pattern, path, (size_t)head) != 0 ||
            !fits(r->pattern, path, path_len, params, param_count)) {
            continue;
        }
        if ((int)strlen(r->method) == method_len && memcmp(r->method, method, (size_t)method_len) == 0) {
            return i;
        }
        found = -2;
    }
    return found;
}
