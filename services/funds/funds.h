/* funds: the domain rules of the compound trust accounts (幸福信托 共有资金独立
 * 账户), on plain structs, with no I/O (docs/funds.md). The handlers load rows,
 * ask these functions what the rules say, and store the outcome.
 *
 * The journal is double entry and append-only; each entry's record carries
 * the BLAKE2b-256 hash of the entry before it and its own hash, so changing,
 * removing or reordering any entry breaks the chain at that entry. Balances
 * are derived: the ledger row caches them and verification recomputes them.
 * Ledger invariants (TigerBeetle's, for one cash account): 0 <= held <=
 * balance, so available = balance - held is never negative and money on hold
 * is always there when its withdrawal is posted. */
#ifndef ZHILI_FUNDS_H
#define ZHILI_FUNDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "services/funds/limits.h"

/* Values of the proto enums, for code that does not include the generated
 * headers (the tests, the bench). Checked against funds.pb-c.h in funds.c. */
enum {
    ZFUNDS_KIND_DEPOSIT = 1,
    ZFUNDS_KIND_WITHDRAWAL = 2,
    ZFUNDS_KIND_REVERSAL = 3,
};

enum {
    ZFUNDS_PARTY_ORGANISATION = 1,
    ZFUNDS_PARTY_PERSON = 2,
    ZFUNDS_PARTY_HOUSEHOLD = 3,
};

enum {
    ZFUNDS_HOLDER_A = 1,
    ZFUNDS_HOLDER_B = 2,
    ZFUNDS_QUERY = 3,
};

enum {
    ZFUNDS_W_RESERVING = 1,
    ZFUNDS_W_PENDING = 2,
    ZFUNDS_W_POSTED = 3,
    ZFUNDS_W_REJECTED = 4,
    ZFUNDS_W_VOIDED = 5,
    ZFUNDS_W_EXPIRED = 6,
    ZFUNDS_W_REFUSED = 7,
};

enum {
    ZFUNDS_STEP_DEPARTMENT_COUNT = 1,
    ZFUNDS_STEP_PROPERTY_REPORT = 2,
    ZFUNDS_STEP_SITE_VERIFY = 3,
    ZFUNDS_STEP_PUBLIC_REVIEW = 4,
};

/* ---- text --------------------------------------------------------------- */

/* Valid UTF-8 of min..max bytes without control characters. */
bool zfunds_text_ok(const char *s, size_t min, size_t max);

/* An account is a compound's area code: exactly 15 ASCII digits. */
bool zfunds_account_ok(const char *s);

/* A secret: 6..128 bytes of UTF-8 without control characters. */
bool zfunds_secret_ok(const char *s);

/* A building code (18 digits) inside the account (its first 15 digits). */
bool zfunds_building_in(const char *building, const char *account);

/* ASCII code and Chinese name of a revenue category, NULL when unknown. */
const char *zfunds_category_code(int category);
const char *zfunds_category_zh(int category);

/* "<account>-w<n>" into out (ZFUNDS_WITHDRAWAL_ID_BYTES_MAX + 1 bytes). */
void zfunds_withdrawal_id(const char *account, uint64_t n, char *out);

/* The number of a withdrawal id of this account; 0 when it is not one. */
uint64_t zfunds_withdrawal_number(const char *id, const char *account);

/* ---- periods (local calendar) ------------------------------------------- */

/* "2026-11" -> 202611. 0 or ZE_INVALID. */
int zfunds_month_parse(const char *s, int *key);

/* "2026-11" -> 202611, "2026" -> 2026. 0 or ZE_INVALID. */
int zfunds_period_parse(const char *s, int *key);

/* 202611 -> "2026-11" (8 bytes with the NUL); 2026 -> "2026". */
void zfunds_period_format(int key, char out[8]);

/* The month after 202612 is 202701. */
int zfunds_month_next(int key);

/* ---- the journal ---------------------------------------------------------- */

typedef struct {
    const char *p; /* not NUL-terminated when decoded; NULL means "" */
    size_t len;
} zfunds_str_t;

typedef struct {
    uint64_t seq;
    int64_t ts_ms;
    uint8_t kind;     /* ZFUNDS_KIND_* */
    uint8_t category; /* deposits and reversals of deposits */
    uint8_t payer_kind, payee_kind;
    uint8_t rev_kind;  /* a reversal: the kind of the entry it reverses */
    int64_t amount;    /* > 0 */
    int64_t balance;   /* cash after the entry */
    uint64_t reverses; /* a reversal: the seq it reverses */
    uint8_t prev_hash[ZFUNDS_HASH_BYTES];
    uint8_t hash[ZFUNDS_HASH_BYTES];
    zfunds_str_t account, payer, receipt, withdrawal_id, line, payee, purpose, memo, actor;
} zfunds_entry_t;

/* The record: a fixed header, nine strings (u16 length + bytes), then the
 * hash of everything before it. */
#define ZFUNDS_ENTRY_HEADER_BYTES 81
#define ZFUNDS_ENTRY_BYTES_MAX                                                                     \
    (ZFUNDS_ENTRY_HEADER_BYTES + 9 * 2 + ZFUNDS_ACCOUNT_BYTES + 2 * ZFUNDS_PARTY_BYTES_MAX +       \
     ZFUNDS_RECEIPT_BYTES_MAX + ZFUNDS_WITHDRAWAL_ID_BYTES_MAX + ZFUNDS_LINE_BYTES_MAX +           \
     ZFUNDS_PURPOSE_BYTES_MAX + ZFUNDS_MEMO_BYTES_MAX + ZFUNDS_ACTOR_BYTES_MAX +                   \
     ZFUNDS_HASH_BYTES)

/* The whole effect of one entry on the derived figures. */
typedef struct {
    int64_t cash;    /* + in, - out */
    int category;    /* revenue category touched, 0 none */
    int64_t revenue; /* signed, net */
    int64_t spent;   /* signed, net (withdrawals by line) */
} zfunds_effect_t;

/* Effect of an entry; ZE_INVALID when its kind or fields make no sense. */
int zfunds_entry_effect(const zfunds_entry_t *e, zfunds_effect_t *out);

/* Serialize e into out (cap >= ZFUNDS_ENTRY_BYTES_MAX), compute its hash
 * (stored in e->hash and at the record's end). ZE_INVALID when a string is
 * longer than its bound. */
int zfunds_entry_encode(zfunds_entry_t *e, uint8_t *out, size_t cap, size_t *len);

/* Parse a record; the strings point into buf. ZE_INVALID when malformed.
 * Does not check the hash (zfunds_entry_hash_ok does). */
int zfunds_entry_decode(const uint8_t *buf, size_t len, zfunds_entry_t *e);

/* Does the record's stored hash match its content? */
bool zfunds_entry_hash_ok(const uint8_t *buf, size_t len);

/* ---- the ledger (one row per account: cached, derived figures) ---------- */

typedef struct {
    int64_t balance;
    int64_t held;
    uint64_t entries; /* the last seq */
    int64_t last_ts_ms;
    uint8_t head_hash[ZFUNDS_HASH_BYTES];
    uint64_t next_withdrawal; /* numbers handed out so far */
    uint64_t next_asset;
    int64_t revenue[ZFUNDS_CATEGORIES];
    int64_t spent;
} zfunds_ledger_t;

#define ZFUNDS_LEDGER_BYTES (4 + 8 * 4 + ZFUNDS_HASH_BYTES + 8 * 2 + 8 * ZFUNDS_CATEGORIES + 8)

void zfunds_ledger_encode(const zfunds_ledger_t *l, uint8_t out[ZFUNDS_LEDGER_BYTES]);
int zfunds_ledger_decode(const uint8_t *buf, size_t len, zfunds_ledger_t *l);

int64_t zfunds_available(const zfunds_ledger_t *l);

/* Put `amount` on hold (以收定支): ZE_CONFLICT when available is short. */
int zfunds_hold(zfunds_ledger_t *l, int64_t amount);

/* Take a hold off: ZE_INTERNAL when less is held (a damaged store). */
int zfunds_hold_release(zfunds_ledger_t *l, int64_t amount);

/* Append e to the ledger: sets e->seq, e->ts_ms (never before the previous
 * entry), e->prev_hash and e->balance, then checks the invariants.
 * ZE_CONFLICT when the entry would take cash below what is held (or below
 * zero); ZE_INVALID when it is malformed or would pass ZFUNDS_BALANCE_MAX.
 * The ledger changes only on 0. The caller encodes e afterwards and stores
 * e->hash as the ledger's head (zfunds_ledger_head). */
int zfunds_ledger_append(zfunds_ledger_t *l, zfunds_entry_t *e, int64_t now_ms);

/* After encoding the appended entry: it is the new head of the chain. */
void zfunds_ledger_head(zfunds_ledger_t *l, const zfunds_entry_t *e);

/* ---- approvals (双密码: two holders, two distinct people) --------------- */

typedef struct {
    int holder;        /* ZFUNDS_HOLDER_A or _B */
    const char *actor; /* actor id */
} zfunds_approval_t;

/* May `holder`, acting as `actor`, approve after `done`? 0; ZE_FORBIDDEN when
 * that holder or that person already approved; ZE_CONFLICT when two have. */
int zfunds_approval_check(const zfunds_approval_t *done, size_t n, int holder, const char *actor);

/* Two approvals by the two holders, by two different actors. */
bool zfunds_approvals_complete(const zfunds_approval_t *done, size_t n);

/* Withdrawal states: which hold money, and which transitions exist. */
bool zfunds_withdrawal_holds(int state);
int zfunds_withdrawal_transition(int from, int to);

/* ---- verification of a journal (现场账目查询) --------------------------- */

typedef struct {
    uint64_t checked;
    uint64_t expected_seq;
    uint8_t running[ZFUNDS_HASH_BYTES];
    int64_t balance;
    int64_t revenue[ZFUNDS_CATEGORIES];
    int64_t spent;
    uint64_t first_bad_seq; /* 0 while none */
    bool bad;
    char problem[256];
} zfunds_verifier_t;

void zfunds_verifier_init(zfunds_verifier_t *v);

/* Check the next stored record, found under key seq `key_seq`. Returns false
 * once a problem was found (the first one is kept). */
bool zfunds_verifier_feed(zfunds_verifier_t *v, uint64_t key_seq, const uint8_t *rec, size_t len);

/* Compare the recomputed figures with the stored ledger and the hold that the
 * withdrawals add up to. */
void zfunds_verifier_finish(zfunds_verifier_t *v, const zfunds_ledger_t *stored, int64_t held);

/* ---- monthly statements ---------------------------------------------------- */

typedef struct {
    int64_t opening;
    int64_t revenue[ZFUNDS_CATEGORIES];
    int64_t revenue_total;
    int64_t withdrawals_total;
    int64_t closing;
} zfunds_statement_t;

/* Start a statement at `opening`, add entries' effects, then close it:
 * closing = opening + revenue_total - withdrawals_total. zfunds_statement_check
 * says whether an independently known closing (the last entry's balance)
 * agrees: 0 or ZE_INTERNAL. */
void zfunds_statement_init(zfunds_statement_t *s, int64_t opening);
void zfunds_statement_add(zfunds_statement_t *s, const zfunds_effect_t *effect);
void zfunds_statement_close(zfunds_statement_t *s);
int zfunds_statement_check(const zfunds_statement_t *s, int64_t closing);

/* ---- property fees (物业费) -------------------------------------------------- */

/* A household's bill: rate × floor area (0.01 m²), rounded half up to the
 * fen, or the flat amount; exactly one of the two. ZE_INVALID otherwise, or
 * when the amount is 0 or above ZFUNDS_AMOUNT_MAX. */
int zfunds_fee_amount(int64_t rate_fen_per_m2, int64_t area_centi_m2, int64_t flat_fen,
                      int64_t *out);

/* num / den in ‰, rounded down; 0 when den is 0. */
uint32_t zfunds_permille(uint64_t num, uint64_t den);

/* ---- public assets: the four-step inventory (四步清底法) ------------------- */

/* May `step` follow `last` (0: nothing yet)? 0 with *new_round when it starts
 * another round after a complete one; ZE_CONFLICT when out of order. */
int zfunds_inventory_next(int last, int step, bool *new_round);
bool zfunds_inventory_complete(int last);
const char *zfunds_step_zh(int step);

#endif
