/* Goal: the funds rules hold on their own (services/funds/funds.c, store.c):
 * the ledger never lets cash drop below what is held, holds move available
 * and not balance, two approvals must come from the two holders as two
 * people, the hash chain names the first changed, removed or reordered entry,
 * a statement adds up, the fee of a household is rate × area rounded half up,
 * and the four inventory steps go in order. Every error path has its case. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ftw.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/caltime.h"
#include "common/err.h"
#include "services/funds/funds.h"
#include "services/funds/store.h"

#define ACCOUNT "220503001001002"

static zfunds_str_t s(const char *text)
{
    return (zfunds_str_t){text, strlen(text)};
}

/* A deposit entry appended to l and encoded into rec. */
static size_t deposit(zfunds_ledger_t *l, int64_t amount, int category, const char *receipt,
                      int64_t now_ms, uint8_t *rec)
{
    zfunds_entry_t e;
    memset(&e, 0, sizeof e);
    e.kind = ZFUNDS_KIND_DEPOSIT;
    e.category = (uint8_t)category;
    e.amount = amount;
    e.account = s(ACCOUNT);
    e.payer = s("张三");
    e.payer_kind = ZFUNDS_PARTY_PERSON;
    e.receipt = s(receipt);
    assert_int_equal(zfunds_ledger_append(l, &e, now_ms), 0);
    size_t len = 0;
    assert_int_equal(zfunds_entry_encode(&e, rec, ZFUNDS_ENTRY_BYTES_MAX, &len), 0);
    zfunds_ledger_head(l, &e);
    return len;
}

static size_t withdrawal(zfunds_ledger_t *l, int64_t amount, const char *line, uint8_t *rec)
{
    zfunds_entry_t e;
    memset(&e, 0, sizeof e);
    e.kind = ZFUNDS_KIND_WITHDRAWAL;
    e.amount = amount;
    e.account = s(ACCOUNT);
    e.line = s(line);
    e.payee = s("某物业公司");
    e.payee_kind = ZFUNDS_PARTY_ORGANISATION;
    assert_int_equal(zfunds_ledger_append(l, &e, 1000), 0);
    size_t len = 0;
    assert_int_equal(zfunds_entry_encode(&e, rec, ZFUNDS_ENTRY_BYTES_MAX, &len), 0);
    zfunds_ledger_head(l, &e);
    return len;
}

static void test_text_and_ids(void **state)
{
    (void)state;
    assert_true(zfunds_account_ok(ACCOUNT));
    assert_false(zfunds_account_ok("22050300100100"));
    assert_false(zfunds_account_ok("2205030010010021"));
    assert_false(zfunds_account_ok("22050300100100x"));
    assert_false(zfunds_account_ok(NULL));
    assert_true(zfunds_text_ok("幸福里小区", 1, 120));
    assert_false(zfunds_text_ok("", 1, 120));
    assert_false(zfunds_text_ok("tab\there", 1, 120));
    assert_false(zfunds_text_ok("\xff\xfe", 1, 120));
    assert_false(zfunds_text_ok("\xc0\xaf", 1, 120));     /* overlong */
    assert_false(zfunds_text_ok("\xed\xa0\x80", 1, 120)); /* surrogate */
    assert_false(zfunds_text_ok("\xc2\x85", 1, 120));     /* C1 control */
    assert_false(zfunds_text_ok("abcdef", 1, 5));
    assert_true(zfunds_secret_ok("123456"));
    assert_false(zfunds_secret_ok("12345"));
    char long_secret[ZFUNDS_SECRET_BYTES_MAX + 2];
    memset(long_secret, 'x', sizeof long_secret - 1);
    long_secret[sizeof long_secret - 1] = '\0';
    assert_false(zfunds_secret_ok(long_secret));
    assert_true(zfunds_building_in("220503001001002003", ACCOUNT));
    assert_false(zfunds_building_in("220503001001003003", ACCOUNT));
    assert_false(zfunds_building_in("22050300100100200", ACCOUNT));
    char id[ZFUNDS_WITHDRAWAL_ID_BYTES_MAX + 1];
    zfunds_withdrawal_id(ACCOUNT, 17, id);
    assert_string_equal(id, ACCOUNT "-w17");
    assert_true(zfunds_withdrawal_number(id, ACCOUNT) == 17);
    assert_true(zfunds_withdrawal_number(ACCOUNT "-w0", ACCOUNT) == 0);
    assert_true(zfunds_withdrawal_number(ACCOUNT "-w01", ACCOUNT) == 0);
    assert_true(zfunds_withdrawal_number(ACCOUNT "-w1x", ACCOUNT) == 0);
    assert_true(zfunds_withdrawal_number("220503001001003-w1", ACCOUNT) == 0);
    assert_true(zfunds_withdrawal_number(ACCOUNT "-x1", ACCOUNT) == 0);
    assert_string_equal(zfunds_category_code(1), "property_fee");
    assert_string_equal(zfunds_category_zh(3), "广告位租金");
    assert_null(zfunds_category_code(0));
    assert_null(zfunds_category_code(ZFUNDS_CATEGORIES));
}

static void test_periods(void **state)
{
    (void)state;
    int key = 0;
    assert_int_equal(zfunds_month_parse("2026-11", &key), 0);
    assert_int_equal(key, 202611);
    assert_int_equal(zfunds_period_parse("2026", &key), 0);
    assert_int_equal(key, 2026);
    assert_int_equal(zfunds_period_parse("2026-12", &key), 0);
    assert_int_equal(key, 202612);
    const char *bad[] = {"2026-13", "2026-00", "26-11", "2026/11", "1999-01", "2026-1", "", "x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(zfunds_period_parse(bad[i], &key), ZE_INVALID);
    }
    assert_int_equal(zfunds_month_parse("2026", &key), ZE_INVALID);
    char out[8];
    zfunds_period_format(202611, out);
    assert_string_equal(out, "2026-11");
    zfunds_period_format(2026, out);
    assert_string_equal(out, "2026");
    assert_int_equal(zfunds_month_next(202612), 202701);
    assert_int_equal(zfunds_month_next(202611), 202612);
}

/* Holds reduce available, not balance; cash never drops below what is held. */
static void test_ledger_and_holds(void **state)
{
    (void)state;
    zfunds_ledger_t l;
    memset(&l, 0, sizeof l);
    uint8_t rec[ZFUNDS_ENTRY_BYTES_MAX];
    deposit(&l, 10000, 1, "R1", 1000, rec);
    assert_true(l.balance == 10000 && l.entries == 1 && l.revenue[1] == 10000);
    assert_int_equal(zfunds_hold(&l, 6000), 0);
    assert_true(l.balance == 10000 && zfunds_available(&l) == 4000);
    assert_int_equal(zfunds_hold(&l, 4001), ZE_CONFLICT);
    assert_int_equal(zfunds_hold(&l, 0), ZE_INVALID);
    assert_int_equal(zfunds_hold(&l, ZFUNDS_AMOUNT_MAX + 1), ZE_INVALID);
    /* A withdrawal of money that is held by someone else is refused. */
    zfunds_entry_t e;
    memset(&e, 0, sizeof e);
    e.kind = ZFUNDS_KIND_WITHDRAWAL;
    e.amount = 5000;
    e.line = s("2-01");
    zfunds_ledger_t before = l;
    assert_int_equal(zfunds_ledger_append(&l, &e, 1000), ZE_CONFLICT);
    assert_memory_equal(&before, &l, sizeof l);
    /* Posting the held withdrawal: release, then append. */
    assert_int_equal(zfunds_hold_release(&l, 6000), 0);
    withdrawal(&l, 6000, "2-01", rec);
    assert_true(l.balance == 4000 && l.held == 0 && l.spent == 6000 && l.entries == 2);
    assert_int_equal(zfunds_hold_release(&l, 1), ZE_INTERNAL);
    /* Malformed entries never touch the ledger. */
    before = l;
    memset(&e, 0, sizeof e);
    e.kind = ZFUNDS_KIND_DEPOSIT;
    e.amount = 100; /* no category */
    assert_int_equal(zfunds_ledger_append(&l, &e, 1000), ZE_INVALID);
    e.category = 1;
    e.amount = -5;
    assert_int_equal(zfunds_ledger_append(&l, &e, 1000), ZE_INVALID);
    e.amount = 100;
    e.kind = 9;
    assert_int_equal(zfunds_ledger_append(&l, &e, 1000), ZE_INVALID);
    assert_memory_equal(&before, &l, sizeof l);
    /* Time never runs backwards in the journal. */
    deposit(&l, 1, 1, "R3", 10, rec);
    zfunds_entry_t d;
    assert_int_equal(zfunds_entry_decode(rec, sizeof rec, &d), ZE_INVALID); /* wrong length */
    l.balance = ZFUNDS_BALANCE_MAX;
    memset(&e, 0, sizeof e);
    e.kind = ZFUNDS_KIND_DEPOSIT;
    e.category = 1;
    e.amount = 1;
    assert_int_equal(zfunds_ledger_append(&l, &e, 1000), ZE_INVALID);
}

static void test_ledger_row_roundtrip(void **state)
{
    (void)state;
    zfunds_ledger_t l, back;
    memset(&l, 0, sizeof l);
    uint8_t rec[ZFUNDS_ENTRY_BYTES_MAX], row[ZFUNDS_LEDGER_BYTES];
    deposit(&l, 123, 2, "P1", 5, rec);
    l.held = 100;
    l.next_withdrawal = 7;
    l.next_asset = 3;
    zfunds_ledger_encode(&l, row);
    assert_int_equal(zfunds_ledger_decode(row, sizeof row, &back), 0);
    assert_memory_equal(&l, &back, sizeof l);
    assert_int_equal(zfunds_ledger_decode(row, sizeof row - 1, &back), ZE_INVALID);
    row[0] = 'X';
    assert_int_equal(zfunds_ledger_decode(row, sizeof row, &back), ZE_INVALID);
}

static void test_approvals(void **state)
{
    (void)state;
    zfunds_approval_t done[2] = {{0, ""}, {0, ""}};
    assert_int_equal(zfunds_approval_check(done, 0, ZFUNDS_HOLDER_A, "li"), 0);
    done[0] = (zfunds_approval_t){ZFUNDS_HOLDER_A, "li"};
    /* The same holder, or the same person under the other holder, is refused. */
    assert_int_equal(zfunds_approval_check(done, 1, ZFUNDS_HOLDER_A, "li"), ZE_FORBIDDEN);
    assert_int_equal(zfunds_approval_check(done, 1, ZFUNDS_HOLDER_A, "wang"), ZE_FORBIDDEN);
    assert_int_equal(zfunds_approval_check(done, 1, ZFUNDS_HOLDER_B, "li"), ZE_FORBIDDEN);
    assert_int_equal(zfunds_approval_check(done, 1, ZFUNDS_HOLDER_B, "wang"), 0);
    assert_false(zfunds_approvals_complete(done, 1));
    done[1] = (zfunds_approval_t){ZFUNDS_HOLDER_B, "wang"};
    assert_true(zfunds_approvals_complete(done, 2));
    assert_int_equal(zfunds_approval_check(done, 2, ZFUNDS_HOLDER_B, "zhao"), ZE_CONFLICT);
    /* Either order works; two of one holder, or one person twice, never. */
    zfunds_approval_t ba[2] = {{ZFUNDS_HOLDER_B, "wang"}, {ZFUNDS_HOLDER_A, "li"}};
    assert_true(zfunds_approvals_complete(ba, 2));
    zfunds_approval_t aa[2] = {{ZFUNDS_HOLDER_A, "li"}, {ZFUNDS_HOLDER_A, "wang"}};
    assert_false(zfunds_approvals_complete(aa, 2));
    zfunds_approval_t same[2] = {{ZFUNDS_HOLDER_A, "li"}, {ZFUNDS_HOLDER_B, "li"}};
    assert_false(zfunds_approvals_complete(same, 2));
    zfunds_approval_t query[2] = {{ZFUNDS_HOLDER_A, "li"}, {ZFUNDS_QUERY, "wang"}};
    assert_false(zfunds_approvals_complete(query, 2));
}

static void test_withdrawal_states(void **state)
{
    (void)state;
    assert_true(zfunds_withdrawal_holds(ZFUNDS_W_RESERVING));
    assert_true(zfunds_withdrawal_holds(ZFUNDS_W_PENDING));
    assert_false(zfunds_withdrawal_holds(ZFUNDS_W_POSTED));
    assert_int_equal(zfunds_withdrawal_transition(ZFUNDS_W_RESERVING, ZFUNDS_W_PENDING), 0);
    assert_int_equal(zfunds_withdrawal_transition(ZFUNDS_W_RESERVING, ZFUNDS_W_REFUSED), 0);
    assert_int_equal(zfunds_withdrawal_transition(ZFUNDS_W_RESERVING, ZFUNDS_W_POSTED),
                     ZE_CONFLICT);
    int from_pending[] = {ZFUNDS_W_POSTED, ZFUNDS_W_REJECTED, ZFUNDS_W_VOIDED, ZFUNDS_W_EXPIRED};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(zfunds_withdrawal_transition(ZFUNDS_W_PENDING, from_pending[i]), 0);
    }
    for (int final = ZFUNDS_W_POSTED; final <= ZFUNDS_W_REFUSED; final++) {
        for (int to = 1; to <= ZFUNDS_W_REFUSED; to++) {
            assert_int_equal(zfunds_withdrawal_transition(final, to), ZE_CONFLICT);
        }
    }
}

/* Build a journal of n entries in memory: records[i] is entry i+1. */
typedef struct {
    uint8_t rec[64][ZFUNDS_ENTRY_BYTES_MAX];
    size_t len[64];
    int n;
    zfunds_ledger_t l;
} journal_t;

static void journal_build(journal_t *j, int n)
{
    memset(j, 0, sizeof *j);
    for (int i = 0; i < n; i++) {
        char receipt[16];
        snprintf(receipt, sizeof receipt, "R%d", i);
        if (i % 5 == 4) {
            j->len[i] = withdrawal(&j->l, 50, "3-01", j->rec[i]);
        } else {
            j->len[i] = deposit(&j->l, 100 + i, 1 + i % 6, receipt, 1000 + i, j->rec[i]);
        }
    }
    j->n = n;
}

static zfunds_verifier_t verify(const journal_t *j, const int *order, int n)
{
    zfunds_verifier_t v;
    zfunds_verifier_init(&v);
    for (int k = 0; k < n; k++) {
        int i = order != NULL ? order[k] : k;
        if (!zfunds_verifier_feed(&v, (uint64_t)i + 1, j->rec[i], j->len[i])) {
            break;
        }
    }
    zfunds_verifier_finish(&v, &j->l, j->l.held);
    return v;
}

static void test_chain_clean(void **state)
{
    (void)state;
    static journal_t j;
    journal_build(&j, 20);
    zfunds_verifier_t v = verify(&j, NULL, j.n);
    assert_false(v.bad);
    assert_true(v.checked == 20 && v.balance == j.l.balance && v.first_bad_seq == 0);
    /* Each entry carries the hash of the one before; the first carries zeros. */
    zfunds_entry_t e1, e2;
    assert_int_equal(zfunds_entry_decode(j.rec[0], j.len[0], &e1), 0);
    assert_int_equal(zfunds_entry_decode(j.rec[1], j.len[1], &e2), 0);
    uint8_t zero[ZFUNDS_HASH_BYTES] = {0};
    assert_memory_equal(e1.prev_hash, zero, sizeof zero);
    assert_memory_equal(e2.prev_hash, e1.hash, ZFUNDS_HASH_BYTES);
    assert_true(e1.payer.len == strlen("张三") && memcmp(e1.payer.p, "张三", e1.payer.len) == 0);
    /* An empty journal is fine for an empty account. */
    zfunds_ledger_t empty;
    memset(&empty, 0, sizeof empty);
    zfunds_verifier_t ve;
    zfunds_verifier_init(&ve);
    zfunds_verifier_finish(&ve, &empty, 0);
    assert_false(ve.bad);
}

/* One changed byte anywhere in entry k names entry k. */
static void test_chain_tamper_bytes(void **state)
{
    (void)state;
    static journal_t j;
    journal_build(&j, 12);
    for (int k = 0; k < j.n; k++) {
        for (size_t at = 0; at < j.len[k]; at += 7) {
            uint8_t saved = j.rec[k][at];
            j.rec[k][at] ^= 0x01;
            zfunds_verifier_t v = verify(&j, NULL, j.n);
            j.rec[k][at] = saved;
            assert_true(v.bad);
            assert_true(v.first_bad_seq == (uint64_t)k + 1);
        }
    }
}

/* Re-hashing a changed entry moves the break to the next link. */
static void test_chain_tamper_rehashed(void **state)
{
    (void)state;
    static journal_t j;
    journal_build(&j, 6);
    zfunds_entry_t e;
    assert_int_equal(zfunds_entry_decode(j.rec[2], j.len[2], &e), 0);
    /* Forge entry 3 with a larger amount and a correct own hash. */
    uint8_t copy[ZFUNDS_ENTRY_BYTES_MAX];
    memcpy(copy, j.rec[2], j.len[2]);
    zfunds_entry_t f;
    assert_int_equal(zfunds_entry_decode(copy, j.len[2], &f), 0);
    f.amount += 1000;
    f.balance += 1000;
    size_t len = 0;
    assert_int_equal(zfunds_entry_encode(&f, j.rec[2], ZFUNDS_ENTRY_BYTES_MAX, &len), 0);
    j.len[2] = len;
    zfunds_verifier_t v = verify(&j, NULL, j.n);
    assert_true(v.bad);
    /* The forged entry is consistent in itself; the next one no longer links. */
    assert_true(v.first_bad_seq == 4);
    assert_non_null(strstr(v.problem, "does not carry the hash"));
}

static void test_chain_missing_reordered_truncated(void **state)
{
    (void)state;
    static journal_t j;
    journal_build(&j, 8);
    /* Entry 4 removed: the verifier meets 5 where 4 should be. */
    zfunds_verifier_t v;
    zfunds_verifier_init(&v);
    for (int i = 0; i < j.n; i++) {
        if (i != 3 && !zfunds_verifier_feed(&v, (uint64_t)i + 1, j.rec[i], j.len[i])) {
            break;
        }
    }
    assert_true(v.bad && v.first_bad_seq == 4);
    /* Entries 3 and 4 swapped under their keys. */
    zfunds_verifier_init(&v);
    int order[8] = {0, 1, 3, 2, 4, 5, 6, 7};
    for (int k = 0; k < j.n; k++) {
        if (!zfunds_verifier_feed(&v, (uint64_t)k + 1, j.rec[order[k]], j.len[order[k]])) {
            break;
        }
    }
    assert_true(v.bad && v.first_bad_seq == 3);
    /* The last two entries gone: the first missing one is named. */
    v = verify(&j, NULL, 6);
    assert_true(v.bad && v.first_bad_seq == 7);
    /* A stored balance that disagrees with the entries. */
    j.l.balance += 1;
    v = verify(&j, NULL, j.n);
    assert_true(v.bad && v.first_bad_seq == 0);
    assert_non_null(strstr(v.problem, "stored balance"));
    j.l.balance -= 1;
    /* A hold the withdrawals do not account for. */
    zfunds_verifier_init(&v);
    for (int i = 0; i < j.n; i++) {
        zfunds_verifier_feed(&v, (uint64_t)i + 1, j.rec[i], j.len[i]);
    }
    zfunds_verifier_finish(&v, &j.l, 77);
    assert_true(v.bad);
    assert_non_null(strstr(v.problem, "hold"));
}

static void test_reversal_effects(void **state)
{
    (void)state;
    zfunds_entry_t e;
    zfunds_effect_t fx;
    memset(&e, 0, sizeof e);
    e.kind = ZFUNDS_KIND_REVERSAL;
    e.rev_kind = ZFUNDS_KIND_DEPOSIT;
    e.category = 2;
    e.amount = 300;
    assert_int_equal(zfunds_entry_effect(&e, &fx), 0);
    assert_true(fx.cash == -300 && fx.revenue == -300 && fx.category == 2 && fx.spent == 0);
    e.rev_kind = ZFUNDS_KIND_WITHDRAWAL;
    assert_int_equal(zfunds_entry_effect(&e, &fx), 0);
    assert_true(fx.cash == 300 && fx.spent == -300 && fx.revenue == 0);
    e.rev_kind = ZFUNDS_KIND_REVERSAL;
    assert_int_equal(zfunds_entry_effect(&e, &fx), ZE_INVALID);
    /* Reversing a deposit whose money is held elsewhere is refused. */
    zfunds_ledger_t l;
    memset(&l, 0, sizeof l);
    uint8_t rec[ZFUNDS_ENTRY_BYTES_MAX];
    deposit(&l, 500, 2, "R", 1, rec);
    assert_int_equal(zfunds_hold(&l, 400), 0);
    memset(&e, 0, sizeof e);
    e.kind = ZFUNDS_KIND_REVERSAL;
    e.rev_kind = ZFUNDS_KIND_DEPOSIT;
    e.category = 2;
    e.amount = 500;
    e.reverses = 1;
    assert_int_equal(zfunds_ledger_append(&l, &e, 2), ZE_CONFLICT);
    assert_int_equal(zfunds_hold_release(&l, 400), 0);
    assert_int_equal(zfunds_ledger_append(&l, &e, 2), 0);
    assert_true(l.balance == 0 && l.revenue[2] == 0);
}

static void test_statement(void **state)
{
    (void)state;
    static journal_t j;
    journal_build(&j, 15);
    zfunds_statement_t st;
    zfunds_statement_init(&st, 0);
    for (int i = 0; i < j.n; i++) {
        zfunds_entry_t e;
        zfunds_effect_t fx;
        assert_int_equal(zfunds_entry_decode(j.rec[i], j.len[i], &e), 0);
        assert_int_equal(zfunds_entry_effect(&e, &fx), 0);
        zfunds_statement_add(&st, &fx);
    }
    zfunds_statement_close(&st);
    assert_int_equal(zfunds_statement_check(&st, j.l.balance), 0);
    assert_true(st.closing == st.opening + st.revenue_total - st.withdrawals_total);
    assert_true(st.withdrawals_total == 3 * 50);
    int64_t sum = 0;
    for (int c = 0; c < ZFUNDS_CATEGORIES; c++) {
        sum += st.revenue[c];
    }
    assert_true(sum == st.revenue_total);
    assert_int_equal(zfunds_statement_check(&st, j.l.balance + 1), ZE_INTERNAL);
    /* A second month opens where the first closed. */
    zfunds_statement_t next;
    zfunds_statement_init(&next, st.closing);
    zfunds_effect_t in = {700, 3, 700, 0}, out = {-200, 0, 0, 200};
    zfunds_statement_add(&next, &in);
    zfunds_statement_add(&next, &out);
    zfunds_statement_close(&next);
    assert_int_equal(zfunds_statement_check(&next, st.closing + 500), 0);
}

static void test_fees(void **state)
{
    (void)state;
    int64_t a = 0;
    /* 1.20 元/m² × 89.53 m² = 107.436 元 -> 10744 fen (half up). */
    assert_int_equal(zfunds_fee_amount(120, 8953, 0, &a), 0);
    assert_true(a == 10744);
    assert_int_equal(zfunds_fee_amount(150, 10000, 0, &a), 0);
    assert_true(a == 15000);
    assert_int_equal(zfunds_fee_amount(1, 50, 0, &a), 0); /* 0.5 fen rounds up */
    assert_true(a == 1);
    assert_int_equal(zfunds_fee_amount(1, 49, 0, &a), ZE_INVALID); /* rounds to 0 */
    assert_int_equal(zfunds_fee_amount(0, 0, 3000, &a), 0);
    assert_true(a == 3000);
    assert_int_equal(zfunds_fee_amount(120, 8953, 3000, &a), ZE_INVALID); /* both */
    assert_int_equal(zfunds_fee_amount(0, 8953, 0, &a), ZE_INVALID);      /* neither */
    assert_int_equal(zfunds_fee_amount(120, 0, 0, &a), ZE_INVALID);
    assert_int_equal(zfunds_fee_amount(-1, 100, 0, &a), ZE_INVALID);
    assert_int_equal(zfunds_fee_amount(ZFUNDS_FEE_RATE_MAX + 1, 100, 0, &a), ZE_INVALID);
    assert_int_equal(zfunds_fee_amount(ZFUNDS_FEE_RATE_MAX, INT64_MAX / 2, 0, &a), ZE_INVALID);
    assert_int_equal(zfunds_fee_amount(0, 0, ZFUNDS_AMOUNT_MAX + 1, &a), ZE_INVALID);
    /* 收缴率 in ‰. */
    assert_int_equal(zfunds_permille(0, 0), 0);
    assert_int_equal(zfunds_permille(3, 4), 750);
    assert_int_equal(zfunds_permille(2, 3), 666);
    assert_int_equal(zfunds_permille(5, 5), 1000);
}

static void test_inventory_order(void **state)
{
    (void)state;
    bool round = false;
    assert_int_equal(zfunds_inventory_next(0, ZFUNDS_STEP_DEPARTMENT_COUNT, &round), 0);
    assert_false(round);
    assert_int_equal(zfunds_inventory_next(0, ZFUNDS_STEP_PROPERTY_REPORT, &round), ZE_CONFLICT);
    assert_int_equal(zfunds_inventory_next(1, ZFUNDS_STEP_PROPERTY_REPORT, &round), 0);
    assert_int_equal(zfunds_inventory_next(2, ZFUNDS_STEP_PUBLIC_REVIEW, &round), ZE_CONFLICT);
    assert_int_equal(zfunds_inventory_next(2, ZFUNDS_STEP_SITE_VERIFY, &round), 0);
    assert_int_equal(zfunds_inventory_next(3, ZFUNDS_STEP_SITE_VERIFY, &round), ZE_CONFLICT);
    assert_int_equal(zfunds_inventory_next(3, ZFUNDS_STEP_PUBLIC_REVIEW, &round), 0);
    assert_true(zfunds_inventory_complete(ZFUNDS_STEP_PUBLIC_REVIEW));
    assert_false(zfunds_inventory_complete(ZFUNDS_STEP_SITE_VERIFY));
    assert_int_equal(zfunds_inventory_next(4, ZFUNDS_STEP_DEPARTMENT_COUNT, &round), 0);
    assert_true(round);
    assert_int_equal(zfunds_inventory_next(4, ZFUNDS_STEP_SITE_VERIFY, &round), ZE_CONFLICT);
    assert_int_equal(zfunds_inventory_next(0, 0, &round), ZE_INVALID);
    assert_int_equal(zfunds_inventory_next(0, 5, &round), ZE_INVALID);
    assert_string_equal(zfunds_step_zh(1), "部门盘点");
    assert_string_equal(zfunds_step_zh(4), "群众审议");
}

static void test_entry_bounds(void **state)
{
    (void)state;
    uint8_t rec[ZFUNDS_ENTRY_BYTES_MAX];
    char big[ZFUNDS_PURPOSE_BYTES_MAX + 2];
    memset(big, 'p', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    zfunds_entry_t e;
    memset(&e, 0, sizeof e);
    e.kind = ZFUNDS_KIND_DEPOSIT;
    e.category = 1;
    e.amount = 1;
    e.purpose = s(big);
    size_t len;
    assert_int_equal(zfunds_entry_encode(&e, rec, sizeof rec, &len), ZE_INVALID);
    e.purpose = s("ok");
    assert_int_equal(zfunds_entry_encode(&e, rec, 10, &len), ZE_INVALID);
    assert_int_equal(zfunds_entry_encode(&e, rec, sizeof rec, &len), 0);
    zfunds_entry_t d;
    assert_int_equal(zfunds_entry_decode(rec, len, &d), 0);
    assert_true(zfunds_entry_hash_ok(rec, len));
    /* Truncated, padded, wrong magic. */
    assert_int_equal(zfunds_entry_decode(rec, len - 1, &d), ZE_INVALID);
    assert_int_equal(zfunds_entry_decode(rec, 20, &d), ZE_INVALID);
    rec[0] = 'Q';
    assert_int_equal(zfunds_entry_decode(rec, len, &d), ZE_INVALID);
}

/* ---- the store: a real LMDB in a temporary directory ---------------------- */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

typedef struct {
    zfunds_verifier_t v;
} scan_ctx_t;

static int scan_row(void *arg, uint64_t seq, const uint8_t *rec, size_t len)
{
    return zfunds_verifier_feed(arg, seq, rec, len) ? 0 : 1;
}

static int sum_row(void *arg, char kind, const uint8_t *name, size_t name_len, int64_t amount)
{
    (void)name;
    (void)name_len;
    zfunds_statement_t *st = arg;
    zfunds_effect_t fx = {0, 0, 0, 0};
    if (kind == 'r') {
        fx.category = name[0];
        fx.revenue = amount;
    } else {
        fx.spent = amount;
    }
    zfunds_statement_add(st, &fx);
    return 0;
}

/* Entries appended through store.c verify, keep their receipts, and their
 * month rows add up to the statement. */
static void test_store_journal(void **state)
{
    (void)state;
    char dir[] = "/tmp/zhili-test-funds-XXXXXX";
    assert_non_null(mkdtemp(dir));
    zstore_options_t opts = {.dir = dir, .tables = zfstore_table_names};
    zstore_t *store = NULL;
    char err[256];
    assert_int_equal(zstore_open(&opts, &store, err, sizeof err), 0);
    zfstore_t t;
    assert_int_equal(zfstore_resolve(&t, store), 0);
    ztxn_t *txn = ztxn_begin(store, true);
    zfunds_ledger_t l;
    memset(&l, 0, sizeof l);
    int64_t nov, dec;
    assert_int_equal(ztime_parse("2026-11-30T23:59:00+08:00", &nov), 0);
    assert_int_equal(ztime_parse("2026-12-01T00:01:00+08:00", &dec), 0);
    uint8_t rec[ZFUNDS_ENTRY_BYTES_MAX];
    for (int i = 0; i < 30; i++) {
        char receipt[16];
        snprintf(receipt, sizeof receipt, "R%d", i);
        size_t len = i % 7 == 6 ? withdrawal(&l, 10, "2-01", rec)
                                : deposit(&l, 100, 1 + i % 3, receipt, i < 20 ? nov : dec, rec);
        zfunds_entry_t e;
        assert_int_equal(zfunds_entry_decode(rec, len, &e), 0);
        zfstore_journal_append(txn, &t, ACCOUNT, &e, rec, len);
    }
    zfstore_ledger_put(txn, &t, ACCOUNT, &l);
    assert_int_equal(ztxn_commit(&txn), 0);

    txn = ztxn_begin(store, false);
    zfunds_ledger_t back;
    assert_int_equal(zfstore_ledger_get(txn, &t, ACCOUNT, &back), 0);
    assert_memory_equal(&back, &l, sizeof l);
    assert_true(zfstore_receipt_seq(txn, &t, ACCOUNT, "R0") == 1);
    assert_true(zfstore_receipt_seq(txn, &t, ACCOUNT, "nope") == 0);
    scan_ctx_t sc;
    zfunds_verifier_init(&sc.v);
    zfstore_journal_scan(txn, &t, ACCOUNT, 1, &sc.v, scan_row);
    zfunds_verifier_finish(&sc.v, &back, 0);
    assert_false(sc.v.bad);
    assert_true(sc.v.checked == 30);
    /* November and December each add up; December opens at November's close. */
    zfstore_month_t m11, m12;
    assert_int_equal(zfstore_month_get(txn, &t, ACCOUNT, 202611, &m11), 0);
    assert_int_equal(zfstore_month_get(txn, &t, ACCOUNT, 202612, &m12), 0);
    assert_true(m11.opening == 0 && m12.opening == m11.closing && m12.closing == l.balance);
    zfunds_statement_t st;
    zfunds_statement_init(&st, m12.opening);
    zfstore_msums_scan(txn, &t, ACCOUNT, 202612, &st, sum_row);
    zfunds_statement_close(&st);
    assert_int_equal(zfunds_statement_check(&st, m12.closing), 0);
    int found = 0;
    zfstore_month_t before;
    assert_int_equal(zfstore_month_before(txn, &t, ACCOUNT, 202701, &found, &before), 0);
    assert_int_equal(found, 202612);
    assert_int_equal(zfstore_month_before(txn, &t, ACCOUNT, 202611, &found, &before), ZE_NOT_FOUND);
    ztxn_abort(&txn);

    /* The agenda gives back what is due, in time order, once. */
    txn = ztxn_begin(store, true);
    zfstore_due_put(txn, &t, 300, ZFDUE_EXPIRE, "b", 1);
    zfstore_due_put(txn, &t, 100, ZFDUE_TICKET, "a", 1);
    zfstore_due_put(txn, &t, 900, ZFDUE_LOCK, "c", 1);
    zarena_t arena;
    zarena_init(&arena);
    zfstore_due_t *due = NULL;
    assert_int_equal(zfstore_due_take(txn, &t, 500, &arena, &due, 10), 2);
    assert_true(due[0].due_ms == 100 && due[0].kind == ZFDUE_TICKET && due[1].due_ms == 300);
    assert_int_equal(zfstore_due_take(txn, &t, 500, &arena, &due, 10), 0);
    assert_int_equal(zfstore_due_take(txn, &t, 1000, &arena, &due, 10), 1);
    zarena_fini(&arena);
    ztxn_abort(&txn);
    zstore_destroy(&store);
    nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
    if (sodium_init() < 0) {
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_and_ids),
        cmocka_unit_test(test_periods),
        cmocka_unit_test(test_ledger_and_holds),
        cmocka_unit_test(test_ledger_row_roundtrip),
        cmocka_unit_test(test_approvals),
        cmocka_unit_test(test_withdrawal_states),
        cmocka_unit_test(test_chain_clean),
        cmocka_unit_test(test_chain_tamper_bytes),
        cmocka_unit_test(test_chain_tamper_rehashed),
        cmocka_unit_test(test_chain_missing_reordered_truncated),
        cmocka_unit_test(test_reversal_effects),
        cmocka_unit_test(test_statement),
        cmocka_unit_test(test_fees),
        cmocka_unit_test(test_inventory_order),
        cmocka_unit_test(test_entry_bounds),
        cmocka_unit_test(test_store_journal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
