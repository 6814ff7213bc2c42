/* reporting: the rules of the one table (一张表) on plain values, no I/O
 * (docs/reporting.md). What every event adds to which measure, the indicator
 * table (columns, formulas), periods of the local calendar, the roll-up of an
 * area to every level above it, rates with a null for a zero denominator,
 * the property red/black list (红黑榜) and the alert rules and their crossings.
 *
 * Measures are the additive counters kept per (area, period); an indicator
 * is a formula over measures. Measure ids are stored in keys: an id is never
 * reused, and a new source adds measures with new ids. */
#ifndef ZHILI_REPORTING_RULES_H
#define ZHILI_REPORTING_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/area.h"
#include "services/reporting/limits.h"
#include "zhili.pb-c.h"

/* ---- measures ----------------------------------------------------------- */

enum {
    ZREP_M_NONE = 0,
    /* petitions (docs/reporting.md, "petitions") */
    ZREP_M_PET_RECEIVED = 1,        /* petitions.received */
    ZREP_M_PET_ASSIGNED = 2,        /* first petitions.assigned of a petition */
    ZREP_M_PET_SIGNED = 3,          /* first petitions.signed */
    ZREP_M_PET_SIGNED_ON_TIME = 4,  /* ... with on_time */
    ZREP_M_PET_REPLIED = 5,         /* first petitions.replied */
    ZREP_M_PET_REPLIED_ON_TIME = 6, /* ... with on_time */
    ZREP_M_PET_EVALUATED = 7,       /* petitions.evaluated */
    ZREP_M_PET_SATISFIED = 8,       /* ... 满意 or 基本满意 */
    ZREP_M_PET_SOLVED = 9,          /* ... solved */
    ZREP_M_PET_ESCALATED = 10,      /* petitions.overdue_sign, petitions.overdue_reply */
    ZREP_M_PET_MERGED = 11,         /* petitions.merged */
    ZREP_M_PROP_COMPLAINTS = 12,    /* petitions.received of category property */
    ZREP_M_PROP_OVERDUE = 13,       /* petitions.overdue_reply of category property */
    ZREP_M_PROP_REPLIED = 14,       /* first petitions.replied of category property */
    /* grid */
    ZREP_M_DISPUTES_REGISTERED = 30, /* grid.dispute_registered */
    ZREP_M_DISPUTES_RESOLVED = 31,   /* grid.dispute_resolved */
    ZREP_M_DISPUTES_FAILED = 32,     /* grid.dispute_failed */
    ZREP_M_VISITS = 33,              /* grid.visit_recorded */
    ZREP_M_KEYPERSONS = 34,          /* stock: +1 keyperson_registered, -1 keyperson_removed */
    ZREP_M_KEYPERSON_MISSED = 35,    /* grid.keyperson_visit_overdue */
    /* funds (docs/reporting.md, "funds") */
    ZREP_M_FUND_BALANCE = 50,     /* stock in fen: + deposits, - withdrawals */
    ZREP_M_REV_PROPERTY_FEE = 51, /* sums in fen by revenue category */
    ZREP_M_REV_PARKING = 52,
    ZREP_M_REV_ADVERTISING = 53,
    ZREP_M_REV_VENUE = 54,
    ZREP_M_REV_OTHER = 55,  /* interest and other */
    ZREP_M_WITHDRAWN = 56,  /* executed withdrawals, fen */
    ZREP_M_FEE_BILLED = 57, /* households billed, in the fee's period */
    ZREP_M_FEE_PAID = 58,   /* households paid in full, in the fee's period */
    /* budgets (docs/reporting.md, "How budgets events count"); 70 and 71 held
     * nothing before the execution handler, so they took these meanings */
    ZREP_M_BUDGET_PLANNED = 70,  /* the month's budget (budget_month over the lines), fen */
    ZREP_M_BUDGET_ACTUAL = 71,   /* the month's actual spending (actual_month), fen */
    ZREP_M_QUERIES_OPEN = 72,    /* stock: + raised, - answered (waiting) */
    ZREP_M_QUERIES_OVERDUE = 73, /* waiting */
};

/* Is measure m kept as a stock (a running total over all periods up to the
 * period asked) rather than a flow (what happened in the period)? */
bool zrep_measure_is_stock(int m);

/* ---- indicators (the table's columns) ----------------------------------- */

typedef enum {
    ZREP_KIND_COUNT = 0, /* value = the measure in the period */
    ZREP_KIND_RATE,      /* numerator / sum of denominators; null when 0 */
    ZREP_KIND_SUM_FEN,   /* value in fen */
    ZREP_KIND_STOCK,     /* value = the running total at the end of the period */
    ZREP_KIND_STOCK_FEN,
    ZREP_KIND_SCORE, /* from another service's evaluations (budgets) */
} zrep_kind_t;

typedef struct {
    const char *code; /* stable ASCII, the JSON key: "ontime_sign_rate" */
    const char *name; /* 中文, the CSV header: 及时签收率 */
    zrep_kind_t kind;
    const char *source;                 /* the service whose events feed it */
    bool pending;                       /* no handler for its source's events yet */
    uint8_t num;                        /* the value's measure, or the rate's numerator */
    uint8_t den[ZREP_DEN_MEASURES_MAX]; /* rates: denominator measures, 0 = none */
    const char *formula;
    bool parts_fen; /* rates: numerator and denominator are amounts in fen */
    /* Its figures arrive after the month ends (budgets publishes a month's
     * execution on the 1st of the next): alerts judge the month before. */
    bool after_month;
} zrep_indicator_t;

extern const zrep_indicator_t zrep_indicators[];
extern const int zrep_indicator_count;

/* The indicator with that code, or NULL. */
const zrep_indicator_t *zrep_indicator_find(const char *code);

/* "count", "rate", "sum_fen", "stock", "stock_fen", "score". */
const char *zrep_kind_name(zrep_kind_t kind);

/* ---- periods (the local calendar, common/caltime.h) --------------------- */

typedef struct {
    int key; /* 202610 for a month, 2026 for a year */
    bool year;
} zrep_period_t;

/* "2026-10" or "2026" (years ZREP_YEAR_MIN..ZREP_YEAR_MAX). 0 or -1. */
int zrep_period_parse(const char *text, zrep_period_t *out);

/* "2026-10" / "2026"; out holds 8 bytes. */
void zrep_period_format(zrep_period_t p, char out[8]);

/* The same period a year before. */
zrep_period_t zrep_period_previous_year(zrep_period_t p);

/* The month and the year an event at ms belongs to (local time). */
zrep_period_t zrep_period_month_of(int64_t ms);
zrep_period_t zrep_period_year_of(int64_t ms);

/* Month keys: the first and last month of a period, and the month after m. */
int zrep_period_first_month(zrep_period_t p);
int zrep_period_last_month(zrep_period_t p);
int zrep_month_next(int month_key);

/* ---- areas -------------------------------------------------------------- */

/* The areas an event located at `area` counts in: "" (everything) and each
 * level prefix of the code down to the code itself ("220503001001002" →
 * "", "220503", "220503001", "220503001001", "220503001001002"). A code
 * that is not an area code counts in "" only. Returns how many. */
int zrep_rollup(const char *area, char out[ZREP_LEVELS][ZREP_AREA_BUF]);

/* street, community, grid (compound), building, district, or "1".."5". 0 or -1. */
int zrep_level_parse(const char *text, zarea_level_t *out);

/* "district", "street", "community", "grid", "building" ("all" for ZAREA_NONE). */
const char *zrep_level_code(zarea_level_t level);

/* The level of a report area: "" is ZAREA_NONE (everything); -1 when area is
 * neither "" nor an area code. */
int zrep_area_level(const char *area, zarea_level_t *out);

/* ---- figures ------------------------------------------------------------ */

typedef struct {
    int64_t value;
    int64_t numerator, denominator;
    bool has_rate; /* false: the denominator is 0 — a null, not 0 % or 100 % */
    double rate;   /* numerator / denominator */
} zrep_figure_t;

/* The figure of an indicator from the measures of one (area, period); stock
 * measures hold their running total. */
void zrep_figure(const zrep_indicator_t *ind, const int64_t measures[ZREP_MEASURES_MAX],
                 zrep_figure_t *out);

/* ---- events → measures -------------------------------------------------- */

typedef struct {
    uint8_t measure;
    int64_t amount;
} zrep_contrib_t;

/* What reporting remembers of an open petition, to count each petition
 * (件) once for assigned, signed and replied. */
enum {
    ZREP_PET_ASSIGNED = 1,
    ZREP_PET_SIGNED = 2,
    ZREP_PET_REPLIED = 4,
};

typedef struct {
    zrep_contrib_t items[ZREP_CONTRIBS_MAX];
    int count;
    bool petition;      /* a petitions event whose flags were read and may change */
    bool petition_done; /* the petition is closed for good: forget its flags */
    /* The period the change belongs to when it is not the event's own month
     * (a property-fee bill counts in the fee's period: a month, or a year
     * only for an annual bill). */
    bool has_period;
    zrep_period_t period;
} zrep_contribs_t;

/* The measures an event changes. *pet_flags is the petition's flags before
 * (petitions events; 0 for a petition never seen) and is updated. Events
 * that feed nothing give count 0; so does budgets.execution_published,
 * which zrep_execution_contribs counts (it needs what was counted before). */
void zrep_event_contribs(const Zhili__V1__Event *ev, uint8_t *pet_flags, zrep_contribs_t *out);

/* What reporting has counted of one compound's month of budget execution
 * (budgets.execution_published), kept per (area, month) so that a month
 * published again counts only what changed. */
typedef struct {
    int64_t budget, actual; /* fen */
} zrep_exec_t;

/* The published month (202610) of a budgets.execution_published event that
 * can be counted: a valid area code on the event, a month 1..12 of a year
 * ZREP_YEAR_MIN..ZREP_YEAR_MAX. 0 for any other event. */
int zrep_execution_month(const Zhili__V1__Event *ev);

/* The measures a budgets.execution_published event changes, counted in the
 * published month (out->has_period): the month's budget and actual summed
 * over the rows, less *counted (what the same area and month added before;
 * zero for a month first published), which becomes the new sums. Both
 * measures are always listed, a difference of 0 too, so the drill-down
 * shows every publication. -1 (count 0, *counted unchanged) when the event
 * is not a countable execution or its sums overflow. */
int zrep_execution_contribs(const Zhili__V1__Event *ev, zrep_exec_t *counted, zrep_contribs_t *out);

/* ---- the property red/black list (DESIGN §5 budgets) ------------------- */

typedef enum { ZREP_LIST_UNRATED = 0, ZREP_LIST_NONE, ZREP_LIST_RED, ZREP_LIST_BLACK } zrep_list_t;

typedef struct {
    bool has_score;
    double score;               /* 0..100, zrep_property_score */
    bool account_check_failed;  /* 现场账目查询 failed in the month */
    int64_t complaints_overdue; /* property complaints past their reply deadline */
} zrep_property_month_t;

#define ZREP_REASONS_MAX 3

/* The list a compound is on for a month, and why (static sentences). */
zrep_list_t zrep_redblack(const zrep_property_month_t *m, const char *reasons[ZREP_REASONS_MAX],
                          int *reason_count);
const char *zrep_list_name(zrep_list_t list);

/* The monthly property service score (一查三评), DESIGN §5: 20 × account
 * check passed + 0.3 × questionnaire (0–100) + 6 × mean online rating (1–5)
 * + 0.2 × branch evaluation (0–100); a component without data is left out
 * and the others re-weighted to 100. false when no component has data. */
typedef struct {
    bool has_check, has_questionnaire, has_rating, has_branch;
    bool check_passed;
    double questionnaire, rating, branch;
} zrep_score_parts_t;
bool zrep_property_score(const zrep_score_parts_t *p, double *score);

/* ---- alerts ------------------------------------------------------------- */

typedef enum { ZREP_CMP_LT = 0, ZREP_CMP_LE, ZREP_CMP_GT, ZREP_CMP_GE } zrep_cmp_t;

typedef struct {
    char name[ZREP_ALERT_RULE_BYTES_MAX]; /* canonical: "ontime_sign_rate<0.9@street" */
    const zrep_indicator_t *indicator;
    zrep_cmp_t cmp;
    double threshold; /* a fraction for rates (90% → 0.9) */
    zarea_level_t level;
    int64_t min_denominator; /* rates: no judgement below it */
} zrep_alert_rule_t;

typedef struct {
    zrep_alert_rule_t rules[ZREP_ALERT_RULES_MAX];
    int count;
} zrep_alert_rules_t;

/* The default rule: on-time sign rate below 90 % for a street. */
#define ZREP_ALERTS_DEFAULT "ontime_sign_rate<90%@street"

/* Parse rules separated by commas, semicolons or newlines ('#' starts a
 * comment): INDICATOR OP THRESHOLD @ LEVEL [min=N], OP one of < <= > >=,
 * THRESHOLD a number or a percentage. 0, or -1 with a sentence in err. */
int zrep_alert_rules_parse(const char *text, zrep_alert_rules_t *out, char *err, size_t err_len);

const char *zrep_cmp_name(zrep_cmp_t cmp);

typedef enum { ZREP_ALERT_KEEP = 0, ZREP_ALERT_RAISE, ZREP_ALERT_CLEAR } zrep_alert_step_t;

/* One evaluation: raise when the figure crosses into the rule and the alert
 * is not active, clear when it is back and the alert is active, else keep.
 * A rate with a null or a denominator below the rule's minimum is not
 * judged (keep). *value is what was compared. */
zrep_alert_step_t zrep_alert_step(const zrep_alert_rule_t *rule, const zrep_figure_t *f,
                                  bool active, double *value);

#endif
