/* budgets: pure rules (see budgets.h). */
#include "services/budgets/budgets.h"

#include <stdio.h>
#include <string.h>

#include "common/err.h"

/* The default catalogue (DESIGN §5, after the cost heads of 物业服务定价成本):
 * 6 categories, 28 items. Codes are "<category>-<item>". */
const zbud_item_t zbud_catalogue[] = {
    {"1-01", "管理人员工资"},
    {"1-02", "服务人员工资"},
    {"1-03", "社会保险和住房公积金"},
    {"1-04", "福利与培训"},
    {"2-01", "电梯维保"},
    {"2-02", "消防设施维保"},
    {"2-03", "二次供水设备维保"},
    {"2-04", "监控门禁系统维护"},
    {"2-05", "公共照明维修"},
    {"2-06", "给排水管道疏通维修"},
    {"2-07", "房屋本体日常维修"},
    {"3-01", "修剪浇灌"},
    {"3-02", "病虫害防治"},
    {"3-03", "补植补种"},
    {"4-01", "公共区域保洁"},
    {"4-02", "垃圾清运"},
    {"4-03", "化粪池清掏"},
    {"4-04", "消杀"},
    {"5-01", "门岗值守"},
    {"5-02", "安全巡逻"},
    {"5-03", "车辆停放管理"},
    {"5-04", "消防安全巡查"},
    {"6-01", "公共区域电费"},
    {"6-02", "公共区域水费"},
    {"6-03", "共用部位及公众责任保险"},
    {"6-04", "办公费用"},
    {"6-05", "物业服务酬金"},
    {"6-06", "审计与公示费用"},
};
const int zbud_catalogue_count = (int)(sizeof zbud_catalogue / sizeof zbud_catalogue[0]);
_Static_assert(sizeof zbud_catalogue / sizeof zbud_catalogue[0] == 28, "28 default items");

static const char *const category_names[] = {
    NULL, "人员费用", "设备维修", "绿化养护", "清洁卫生", "秩序维护", "公共能耗与管理",
};

const char *zbud_category_name(int category)
{
    return category >= 1 && category <= 6 ? category_names[category] : NULL;
}

const zbud_item_t *zbud_item_find(const char *code)
{
    for (int i = 0; i < zbud_catalogue_count; i++) {
        if (strcmp(zbud_catalogue[i].code, code) == 0) {
            return &zbud_catalogue[i];
        }
    }
    return NULL;
}

bool zbud_code_valid(const char *code)
{
    return code != NULL && strlen(code) == 4 && code[0] >= '1' && code[0] <= '6' &&
           code[1] == '-' && code[2] >= '0' && code[2] <= '9' && code[3] >= '0' && code[3] <= '9' &&
           !(code[2] == '0' && code[3] == '0');
}

int64_t zbud_remaining(int64_t budget, int64_t reserved, int64_t spent)
{
    return budget - reserved - spent;
}

/* Fen as yuan with two decimals, for sentences people read. */
static void yuan(int64_t fen, char out[32])
{
    const char *sign = fen < 0 ? "-" : "";
    int64_t a = fen < 0 ? -fen : fen;
    snprintf(out, 32, "%s%lld.%02lld", sign, (long long)(a / 100), (long long)(a % 100));
}

int zbud_reserve_check(const char *line, int64_t budget, int64_t reserved, int64_t spent,
                       int64_t amount, char msg[ZBUD_MSG_BYTES])
{
    if (amount <= 0 || amount > ZBUD_AMOUNT_MAX) {
        snprintf(msg, ZBUD_MSG_BYTES, "amount must be 1..%lld fen", (long long)ZBUD_AMOUNT_MAX);
        return ZE_INVALID;
    }
    int64_t left = zbud_remaining(budget, reserved, spent);
    if (amount > left) {
        char a[32], l[32], s[32];
        yuan(amount, a);
        yuan(left, l);
        yuan(amount - left, s);
        snprintf(msg, ZBUD_MSG_BYTES,
                 "预算科目余额不足 (以收定支): line %s has %s yuan left, %s asked, %s yuan short",
                 line, l, a, s);
        return ZE_CONFLICT;
    }
    return 0;
}

int zbud_profile(int64_t amount, const int64_t *monthly, size_t n, int64_t out[ZBUD_MONTHS],
                 char msg[ZBUD_MSG_BYTES])
{
    if (amount <= 0 || amount > ZBUD_AMOUNT_MAX) {
        snprintf(msg, ZBUD_MSG_BYTES, "a line's amount must be 1..%lld fen",
                 (long long)ZBUD_AMOUNT_MAX);
        return ZE_INVALID;
    }
    if (n == 0) {
        for (int m = 0; m < ZBUD_MONTHS; m++) {
            out[m] = amount / ZBUD_MONTHS + (m < amount % ZBUD_MONTHS ? 1 : 0);
        }
        return 0;
    }
    if (n != ZBUD_MONTHS) {
        snprintf(msg, ZBUD_MSG_BYTES,
                 "monthly must have 12 amounts (or none for an even split), "
                 "not %zu",
                 n);
        return ZE_INVALID;
    }
    int64_t sum = 0;
    for (int m = 0; m < ZBUD_MONTHS; m++) {
        if (monthly[m] < 0 || monthly[m] > ZBUD_AMOUNT_MAX) {
            snprintf(msg, ZBUD_MSG_BYTES, "monthly amount %d must be 0..%lld fen", m + 1,
                     (long long)ZBUD_AMOUNT_MAX);
            return ZE_INVALID;
        }
        sum += monthly[m];
        out[m] = monthly[m];
    }
    if (sum != amount) {
        snprintf(msg, ZBUD_MSG_BYTES,
                 "the 12 monthly amounts add up to %lld fen, not the line's "
                 "%lld",
                 (long long)sum, (long long)amount);
        return ZE_INVALID;
    }
    return 0;
}

int zbud_income_check(int64_t total, int64_t expected_income, char msg[ZBUD_MSG_BYTES])
{
    if (total > expected_income) {
        char t[32], e[32], s[32];
        yuan(total, t);
        yuan(expected_income, e);
        yuan(total - expected_income, s);
        snprintf(
            msg, ZBUD_MSG_BYTES,
            "以收定支: the lines total %s yuan but the expected income is %s yuan, %s yuan short",
            t, e, s);
        return ZE_INVALID;
    }
    return 0;
}

unsigned zbud_party_bit(const char *role)
{
    if (role == NULL) {
        return 0;
    }
    if (strcmp(role, "committee") == 0) {
        return 1u;
    }
    if (strcmp(role, "party_branch") == 0) {
        return 2u;
    }
    if (strcmp(role, "property") == 0) {
        return 4u;
    }
    return 0;
}

int zbud_sign(zbud_state_t state, unsigned *signed_mask, const char *role, char msg[ZBUD_MSG_BYTES])
{
    unsigned bit = zbud_party_bit(role);
    if (bit == 0) {
        snprintf(msg, ZBUD_MSG_BYTES,
                 "联签联审: only the owners' committee, the party branch "
                 "and the property company co-sign, not role \"%s\"",
                 role != NULL ? role : "");
        return ZE_FORBIDDEN;
    }
    if (state != ZBUD_SUBMITTED) {
        snprintf(msg, ZBUD_MSG_BYTES, "the budget is %s: only a submitted budget is co-signed",
                 zbud_state_name(state));
        return ZE_CONFLICT;
    }
    if ((*signed_mask & bit) != 0) {
        snprintf(msg, ZBUD_MSG_BYTES, "联签联审: %s has already signed; each party signs once",
                 role);
        return ZE_CONFLICT;
    }
    *signed_mask |= bit;
    return 0;
}

int64_t zbud_rate_bp(int64_t actual, int64_t budget)
{
    return budget > 0 ? actual * 10000 / budget : 0;
}

void zbud_exec_line(const int64_t monthly[ZBUD_MONTHS], const int64_t actual[ZBUD_MONTHS],
                    int month, zbud_exec_t *out)
{
    memset(out, 0, sizeof *out);
    if (month < 1 || month > ZBUD_MONTHS) {
        return;
    }
    for (int m = 0; m < month; m++) {
        out->budget_to_date += monthly[m];
        out->actual_to_date += actual[m];
    }
    out->budget_month = monthly[month - 1];
    out->actual_month = actual[month - 1];
    out->variance = out->budget_to_date - out->actual_to_date;
    out->rate_bp = zbud_rate_bp(out->actual_to_date, out->budget_to_date);
}

const char *zbud_state_name(zbud_state_t state)
{
    switch (state) {
    case ZBUD_DRAFT:
        return "draft";
    case ZBUD_SUBMITTED:
        return "submitted";
    case ZBUD_ACTIVE:
        return "active";
    }
    return "unknown";
}

int64_t zbud_score_x100(const zbud_evals_t *e)
{
    /* Points in hundredths and the weight of the components present. */
    int64_t points = 0, weight = 0;
    if (e->has_check) {
        points += e->check_passed ? 2000 : 0;
        weight += 20;
    }
    if (e->has_questionnaire) {
        points += 30 * e->questionnaire; /* 0.3 × q, in hundredths */
        weight += 30;
    }
    if (e->ratings > 0) {
        points += 600 * e->rating_sum / e->ratings; /* 6 × mean, in hundredths */
        weight += 30;
    }
    if (e->has_branch) {
        points += 20 * e->branch;
        weight += 20;
    }
    return weight == 0 ? -1 : points * 100 / weight;
}

/* 三张清单 (docs/budgets.md, "The three lists"). */
const zbud_list_entry_t zbud_branch_functions[5] = {
    {"B1", "政治引领", "把方向: 宣传落实党的路线方针政策, 引领业委会和物业服务企业依法履职"},
    {"B2", "统筹协调", "管大局: 组织召开三方联席会、三方评议会, 协调重大事项"},
    {"B3", "监督评议", "抓监督: 监督共有资金收支和预算执行, 组织一查三评"},
    {"B4", "矛盾调处", "解纠纷: 调处业主、业委会、物业之间的矛盾纠纷"},
    {"B5", "服务群众", "促服务: 组织党员中心户和志愿者服务业主"},
};
const zbud_list_entry_t zbud_committee_duties[7] = {
    {"C1", "召集业主大会", "召集和主持业主大会会议, 报告工作"},
    {"C2", "执行业主大会决定", "执行业主大会的决定和决议"},
    {"C3", "选聘物业服务企业", "代表业主与业主大会选聘的物业服务企业签订物业服务合同"},
    {"C4", "监督物业服务", "监督物业服务企业履行物业服务合同, 每月核对履约进度"},
    {"C5", "编制和公示预算", "会同物业编制年度开放式预算, 每月公示收支和执行情况"},
    {"C6", "督促遵守管理规约", "督促业主遵守管理规约、按时交纳物业费"},
    {"C7", "配合社区和党支部", "配合社区居委会和小区党支部开展工作, 接受其指导和监督"},
};
const zbud_list_entry_t zbud_property_services[6] = {
    {"S1", "综合管理服务", "服务中心每日8:00-18:00有人值守, 24小时报修电话, 报修30分钟内响应"},
    {"S2", "共用部位维修养护", "每月巡查房屋本体一次, 发现损坏3日内修复"},
    {"S3", "共用设施设备运行维护",
     "电梯每半月维保一次, 消防设施每月检查一次, 照明损坏24小时内修复"},
    {"S4", "绿化养护", "草坪高度不超过10厘米, 每年修剪不少于4次, 枯死苗木1个月内补植"},
    {"S5", "环境卫生", "公共区域每日清扫一次, 生活垃圾日产日清, 化粪池每年清掏一次"},
    {"S6", "秩序维护", "门岗24小时值守, 每日巡逻不少于4次, 车辆有序停放"},
};

const zbud_list_entry_t *zbud_service_find(const char *code)
{
    for (int i = 0; code != NULL && i < 6; i++) {
        if (strcmp(zbud_property_services[i].code, code) == 0) {
            return &zbud_property_services[i];
        }
    }
    return NULL;
}

bool zbud_date_valid(const char *d)
{
    if (d == NULL || strlen(d) != 10 || d[4] != '-' || d[7] != '-') {
        return false;
    }
    for (int i = 0; i < 10; i++) {
        if (i != 4 && i != 7 && (d[i] < '0' || d[i] > '9')) {
            return false;
        }
    }
    int y = (d[0] - '0') * 1000 + (d[1] - '0') * 100 + (d[2] - '0') * 10 + (d[3] - '0');
    int m = (d[5] - '0') * 10 + (d[6] - '0'), day = (d[8] - '0') * 10 + (d[9] - '0');
    static const int days[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < ZBUD_YEAR_MIN || y > ZBUD_YEAR_MAX || m < 1 || m > 12 || day < 1 || day > days[m - 1]) {
        return false;
    }
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return !(m == 2 && day == 29 && !leap);
}
