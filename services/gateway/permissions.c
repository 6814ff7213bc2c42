/* permissions: the roles and the one permission table of docs/auth.md.
 *
 * A route names the permission it needs; zgw_permit answers from the table
 * below and nothing else, so the table here and the one in docs/auth.md are
 * the whole truth about who may do what. Area scoping (zgw_area_within) is a
 * second, separate check on every read and write. */
#include <stdint.h>
#include <string.h>

#include "common/err.h"
#include "services/gateway/auth.h"

const char *const zgw_roles[] = {
    "admin",          /* 系统管理员 */
    "command_center", /* 指挥中心 */
    "hotline",        /* 12345热线 */
    "staff",          /* 街道/社区工作人员 */
    "grid_member",    /* 网格员 */
    "police",         /* 社区民警 */
    "committee",      /* 业委会 */
    "supervisor",     /* 小区监察人 */
    "property",       /* 物业公司 */
    "party_branch",   /* 党支部 */
    "resident",       /* 居民 */
    NULL,
};

_Static_assert(ZARRAY_LEN(zgw_roles) - 1 <= ZGW_ROLES_MAX, "more roles than ZGW_ROLES_MAX");

typedef struct {
    const char *permission;
    const char *roles[ZGW_ROLES_MAX + 1]; /* NULL-terminated */
} permission_row_t;

/* THE permission table (docs/auth.md, "Permissions"). Later issues add their
 * rows here and to docs/auth.md in the same change, for example
 *   {"petitions.create", {"hotline", "staff", "grid_member", "admin", NULL}},
 *   {"petitions.sign",   {"staff", "grid_member", "police", NULL}},
 * A permission is "<area>.<verb>"; a role not listed on a row is refused. */
static const permission_row_t permission_table[] = {
    /* The live event stream (SSE / WebSocket), always filtered by area too.
     * Not hotline (an outside system that polls its own petitions) and not
     * resident (events carry other people's matters). */
    {"stream.read",
     {"admin", "command_center", "staff", "grid_member", "police", "committee", "supervisor",
      "property", "party_branch", NULL}},
    {"metrics.read", {"admin", "command_center", NULL}},
    {"token.manage", {"admin", NULL}},
    /* Trading a token for a dashboard session cookie or a stream ticket. */
    {"session.create",
     {"admin", "command_center", "hotline", "staff", "grid_member", "police", "committee",
      "supervisor", "property", "party_branch", "resident", NULL}},
    /* ---- grid (services/grid) ---- */
    /* docs/grid.md. Personal fields of key persons: police and grid members
     * only, and the service narrows that to the responsible grid. */
    {"grid.read",
     {"admin", "command_center", "staff", "grid_member", "police", "party_branch", NULL}},
    {"grid.units.write", {"admin", "staff", NULL}},
    {"grid.people.write", {"admin", "staff", "police", NULL}},
    {"grid.police.write", {"admin", "staff", "police", NULL}},
    {"grid.visits.read", {"admin", "command_center", "staff", "grid_member", "police", NULL}},
    {"grid.visits.write", {"admin", "staff", "grid_member", "police", NULL}},
    {"grid.disputes.read",
     {"admin", "command_center", "staff", "grid_member", "police", "party_branch", NULL}},
    {"grid.disputes.write", {"admin", "staff", "grid_member", "police", NULL}},
    {"grid.keypersons.read", {"admin", "command_center", "staff", "grid_member", "police", NULL}},
    {"grid.keypersons.write", {"admin", "staff", "grid_member", "police", NULL}},
    {"grid.keypersons.reveal", {"grid_member", "police", NULL}},

    /* ---- petitions (services/petitions) ---- */
    /* docs/petitions.md: the services re-check each rule against the actor
     * (only the assigned unit signs; a hotline token reads what it pushed). */
    {"petitions.create", {"admin", "hotline", "staff", "grid_member", NULL}},
    {"petitions.read",
     {"admin", "command_center", "hotline", "staff", "grid_member", "police", NULL}},
    {"petitions.handle", {"staff", "grid_member", NULL}},
    {"petitions.route", {"admin", "command_center", "staff", NULL}},
    {"petitions.supervise", {"admin", "command_center", NULL}},
    {"petitions.evaluate", {"admin", "command_center", "hotline", NULL}},

    /* ---- funds (services/funds) ---- */
    /* docs/funds.md: the service narrows each to the account's holders,
     * requester or area (a resident reads the public view only). */
    {"funds.read",
     {"admin", "command_center", "staff", "committee", "supervisor", "property", "party_branch",
      "resident", NULL}},
    {"funds.admin", {"admin", "staff", NULL}},
    {"funds.credentials", {"admin", "committee", "supervisor", NULL}},
    {"funds.reset", {"admin", "supervisor", NULL}},
    {"funds.deposit", {"admin", "staff", "property", "committee", NULL}},
    {"funds.correct", {"admin", "staff", "committee", NULL}},
    {"funds.verify", {"admin", "command_center", "staff", "committee", "supervisor", NULL}},
    {"funds.withdraw", {"admin", "staff", "property", "committee", NULL}},
    {"funds.approve", {"committee", "supervisor", NULL}},
    {"funds.reject", {"admin", "committee", "supervisor", NULL}},
    {"funds.fees.write", {"admin", "staff", "property", "committee", NULL}},
    {"funds.fees.read",
     {"admin", "command_center", "staff", "property", "committee", "supervisor", NULL}},
    {"funds.assets.write", {"admin", "staff", "property", "committee", NULL}},
    {"funds.assets.step",
     {"admin", "staff", "property", "committee", "supervisor", "party_branch", NULL}},
    {"funds.assets.lease", {"admin", "committee", NULL}},
    {"funds.rent", {"admin", "staff", "property", "committee", NULL}},

    /* ---- budgets (services/budgets) ---- */
    /* docs/budgets.md: budgets are public to the compound (开放式预算); the
     * service re-checks the area, who drafts and which party signs. */
    {"budgets.read",
     {"admin", "command_center", "staff", "committee", "supervisor", "property", "party_branch",
      "resident", NULL}},
    {"budgets.draft", {"admin", "property", NULL}},
    {"budgets.sign", {"committee", "party_branch", "property", NULL}},
    {"budgets.query", {"resident", NULL}},
    {"budgets.answer", {"committee", "property", NULL}},
    {"budgets.lists", {"admin", "property", "committee", NULL}},
    {"budgets.progress", {"property", NULL}},
    {"budgets.meetings", {"admin", "staff", "committee", "party_branch", NULL}},
    {"budgets.evaluate",
     {"admin", "staff", "committee", "supervisor", "party_branch", "resident", NULL}},

    /* ---- reporting (services/reporting) ---- */
    /* docs/reporting.md: the one table, its drill-down to event references
     * (no personal data) and alerts for those who lead and supervise; the
     * red/black list (红黑榜) is published, so the compound's parties and
     * residents read it too; rebuild is an operator's. */
    {"report.read",
     {"admin", "command_center", "staff", "grid_member", "police", "party_branch", NULL}},
    {"report.redblack",
     {"admin", "command_center", "staff", "grid_member", "police", "party_branch", "committee",
      "supervisor", "property", "resident", NULL}},
    {"report.rebuild", {"admin", NULL}},

    /* Used only by the test routes over the test service. */
    {"test.counter.read", {"admin", "staff", NULL}},
    {"test.counter.write", {"admin", "staff", NULL}},
};

static bool list_has(const char *const *list, const char *name)
{
    for (size_t i = 0; list[i] != NULL; i++) {
        if (strcmp(list[i], name) == 0) {
            return true;
        }
    }
    return false;
}

/* Routes pass the same static strings every time: a small cache keyed by
 * the string's address saves the walk of the table (strcmp per row) on
 * every request. A hit is confirmed by one strcmp (the address may be a
 * buffer holding another name by now); a miss falls back to the walk. */
#define ROW_CACHE 64
static struct {
    const char *key;
    const permission_row_t *row;
} row_cache[ROW_CACHE];

static const permission_row_t *permission_row(const char *permission)
{
    size_t slot = ((uintptr_t)permission >> 3) & (ROW_CACHE - 1);
    if (row_cache[slot].key == permission &&
        strcmp(row_cache[slot].row->permission, permission) == 0) {
        return row_cache[slot].row;
    }
    for (size_t i = 0; i < ZARRAY_LEN(permission_table); i++) {
        if (strcmp(permission_table[i].permission, permission) == 0) {
            row_cache[slot].key = permission;
            row_cache[slot].row = &permission_table[i];
            return &permission_table[i];
        }
    }
    return NULL;
}

bool zgw_role_valid(const char *role)
{
    return role != NULL && list_has(zgw_roles, role);
}

bool zgw_permission_known(const char *permission)
{
    return permission != NULL && permission_row(permission) != NULL;
}

bool zgw_permit(const char *role, const char *permission)
{
    if (role == NULL || permission == NULL || !zgw_role_valid(role)) {
        return false;
    }
    const permission_row_t *row = permission_row(permission);
    return row != NULL && list_has(row->roles, role);
}

const char *zgw_permission_of(const char *role, size_t index, size_t *next)
{
    for (size_t i = index; i < ZARRAY_LEN(permission_table); i++) {
        if (role != NULL && list_has(permission_table[i].roles, role)) {
            *next = i + 1;
            return permission_table[i].permission;
        }
    }
    *next = ZARRAY_LEN(permission_table);
    return NULL;
}

bool zgw_area_within(const char *scope, const char *area)
{
    ZASSERT(scope != NULL && area != NULL);
    size_t scope_len = strlen(scope);
    /* "" contains everything; otherwise scope must be a prefix of area, so an
     * area shorter than the scope (a street, for a community's token) is out. */
    return strncmp(area, scope, scope_len) == 0;
}
