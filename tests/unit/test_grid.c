/* Goal: the grid service's pure rules (services/grid/grid.c) hold without a
 * store or a bus: point-in-polygon and nearest-centroid geometry, the
 * dispute loop and every transition it refuses, the unit CSV (quoting,
 * line numbers, bad rows), the key parsing and the sealing of personal
 * fields (round trip, wrong key, tampering), QR codes, ID numbers and the
 * due-time rule of key-person visits. Every error path names its field. */
/* cmocka needs these first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "services/grid/grid.h"

static const zgrid_point_t square[] = {{0, 0}, {0, 10}, {10, 10}, {10, 0}};
/* A "C" shape open to the east: (5, 5) lies in the notch, outside. */
static const zgrid_point_t c_shape[] = {{0, 0}, {0, 10}, {3, 10},  {3, 3},
                                        {7, 3}, {7, 10}, {10, 10}, {10, 0}};

static void test_point_in_polygon(void **state)
{
    (void)state;
    assert_true(zgrid_polygon_contains(square, 4, (zgrid_point_t){5, 5}));
    assert_false(zgrid_polygon_contains(square, 4, (zgrid_point_t){11, 5}));
    assert_false(zgrid_polygon_contains(square, 4, (zgrid_point_t){5, -0.001}));
    /* Edges and corners count as inside, consistently. */
    assert_true(zgrid_polygon_contains(square, 4, (zgrid_point_t){0, 5}));
    assert_true(zgrid_polygon_contains(square, 4, (zgrid_point_t){10, 10}));
    /* Concave: the notch is outside, the arms inside. */
    assert_false(zgrid_polygon_contains(c_shape, 8, (zgrid_point_t){5, 5}));
    assert_true(zgrid_polygon_contains(c_shape, 8, (zgrid_point_t){5, 1}));
    assert_true(zgrid_polygon_contains(c_shape, 8, (zgrid_point_t){8, 8}));
    assert_true(zgrid_polygon_contains(c_shape, 8, (zgrid_point_t){1, 8}));
    /* A degenerate polygon contains nothing. */
    assert_false(zgrid_polygon_contains(square, 2, (zgrid_point_t){0, 5}));
}

static void test_distance_and_points(void **state)
{
    (void)state;
    /* One degree of latitude is about 111.2 km everywhere. */
    double d = zgrid_distance_m((zgrid_point_t){41.0, 126.0}, (zgrid_point_t){42.0, 126.0});
    assert_true(d > 111000 && d < 111400);
    assert_true(zgrid_distance_m((zgrid_point_t){41.7, 126.0}, (zgrid_point_t){41.7, 126.0}) == 0);
    /* Nearest centroid: the closer of two. */
    zgrid_point_t p = {41.7712, 126.0412}, a = {41.7705, 126.0405}, b = {41.78, 126.05};
    assert_true(zgrid_distance_m(p, a) < zgrid_distance_m(p, b));
    assert_true(zgrid_point_valid((zgrid_point_t){90, -180}));
    assert_false(zgrid_point_valid((zgrid_point_t){90.0001, 0}));
    assert_false(zgrid_point_valid((zgrid_point_t){0, 180.5}));
    double v;
    assert_int_equal(zgrid_parse_double("41.77", &v), 0);
    assert_true(v == 41.77);
    assert_int_equal(zgrid_parse_double("-1e2", &v), 0);
    assert_int_equal(zgrid_parse_double("41.7x", &v), -1);
    assert_int_equal(zgrid_parse_double("nan", &v), -1);
    assert_int_equal(zgrid_parse_double("inf", &v), -1);
    assert_int_equal(zgrid_parse_double(" 1", &v), -1);
    assert_int_equal(zgrid_parse_double("", &v), -1);
    assert_int_equal(zgrid_parse_double("1e999", &v), -1);
}

static void test_boundary_rules(void **state)
{
    (void)state;
    zgrid_err_t err;
    size_t n = 0;
    zgrid_point_t closed[] = {{0, 0}, {0, 1}, {1, 1}, {0, 0}};
    assert_int_equal(zgrid_boundary_check(closed, 4, &n, "boundary", &err), 0);
    assert_int_equal(n, 3); /* the closing point is dropped */
    zgrid_point_t line[] = {{0, 0}, {1, 1}, {2, 2}};
    assert_int_equal(zgrid_boundary_check(line, 3, &n, "boundary", &err), ZE_INVALID);
    assert_string_equal(err.field, "boundary");
    assert_non_null(strstr(err.message, "no area"));
    zgrid_point_t two[] = {{0, 0}, {1, 1}};
    assert_int_equal(zgrid_boundary_check(two, 2, &n, "boundary", &err), ZE_INVALID);
    zgrid_point_t bad[] = {{0, 0}, {95, 1}, {1, 1}};
    assert_int_equal(zgrid_boundary_check(bad, 3, &n, "boundary", &err), ZE_INVALID);
    assert_non_null(strstr(err.message, "point 2"));
    zgrid_point_t *many = calloc(ZGRID_BOUNDARY_POINTS_MAX + 2, sizeof *many);
    assert_non_null(many);
    for (size_t i = 0; i < ZGRID_BOUNDARY_POINTS_MAX + 2; i++) {
        many[i] = (zgrid_point_t){(double)i / 1000, (double)(i % 7) / 1000};
    }
    assert_int_equal(
        zgrid_boundary_check(many, ZGRID_BOUNDARY_POINTS_MAX + 2, &n, "boundary", &err),
        ZE_INVALID);
    free(many);
}

static void test_unit_check(void **state)
{
    (void)state;
    zgrid_err_t err;
    zgrid_unit_in_t u = {"220503001001002", "桃源一网格", "张三", "桃源一网格党支部", true,
                         {41.77, 126.04},   square,       4};
    assert_int_equal(zgrid_unit_check(&u, &err), 0);
    u.code = "2205030010010";
    assert_int_equal(zgrid_unit_check(&u, &err), ZE_INVALID);
    assert_string_equal(err.field, "code");
    u.code = "220503001001002";
    u.name = "";
    assert_int_equal(zgrid_unit_check(&u, &err), ZE_INVALID);
    assert_string_equal(err.field, "name");
    u.name = "bad\x01name";
    assert_int_equal(zgrid_unit_check(&u, &err), ZE_INVALID);
    assert_non_null(strstr(err.message, "control"));
    u.name = "\xE6\xA1"; /* a cut UTF-8 sequence */
    assert_int_equal(zgrid_unit_check(&u, &err), ZE_INVALID);
    assert_non_null(strstr(err.message, "UTF-8"));
    u.name = "ok";
    u.centroid = (zgrid_point_t){91, 0};
    assert_int_equal(zgrid_unit_check(&u, &err), ZE_INVALID);
    assert_string_equal(err.field, "centroid");
    u.has_centroid = false;
    char long_leader[ZGRID_PERSON_NAME_BYTES_MAX + 2];
    memset(long_leader, 'a', sizeof long_leader - 1);
    long_leader[sizeof long_leader - 1] = '\0';
    u.leader = long_leader;
    assert_int_equal(zgrid_unit_check(&u, &err), ZE_INVALID);
    assert_string_equal(err.field, "leader");
}

static void test_dispute_transitions(void **state)
{
    (void)state;
    /* The whole loop, once. */
    zgrid_dstate_t s = ZGRID_DS_REGISTERED, to;
    const zgrid_daction_t loop[] = {ZGRID_DA_SIGN, ZGRID_DA_MEDIATE, ZGRID_DA_RESOLVE,
                                    ZGRID_DA_EVALUATE, ZGRID_DA_ARCHIVE};
    const zgrid_dstate_t expect[] = {ZGRID_DS_SIGNED, ZGRID_DS_MEDIATING, ZGRID_DS_RESOLVED,
                                     ZGRID_DS_EVALUATED, ZGRID_DS_ARCHIVED};
    for (size_t i = 0; i < ZARRAY_LEN(loop); i++) {
        assert_int_equal(zgrid_dispute_next(s, loop[i], &to), 0);
        assert_int_equal(to, expect[i]);
        s = to;
    }
    assert_int_equal(zgrid_dispute_next(ZGRID_DS_MEDIATING, ZGRID_DA_FAIL, &to), 0);
    assert_int_equal(to, ZGRID_DS_FAILED);
    assert_int_equal(zgrid_dispute_next(ZGRID_DS_FAILED, ZGRID_DA_EVALUATE, &to), 0);
    /* Exactly 7 allowed (state, action) pairs; every other one is CONFLICT. */
    int allowed = 0;
    for (int st = 0; st < ZGRID_DS_COUNT; st++) {
        for (int a = 0; a < ZGRID_DA_COUNT; a++) {
            int rc = zgrid_dispute_next((zgrid_dstate_t)st, (zgrid_daction_t)a, &to);
            assert_true(rc == 0 || rc == ZE_CONFLICT);
            allowed += rc == 0;
        }
    }
    assert_int_equal(allowed, 7);
    for (int st = 0; st < ZGRID_DS_COUNT; st++) {
        zgrid_dstate_t back;
        assert_int_equal(zgrid_dstate_parse(zgrid_dstate_name((zgrid_dstate_t)st), &back), 0);
        assert_int_equal(back, st);
    }
    assert_int_equal(zgrid_dstate_parse("closed", &to), -1);
    assert_string_equal(zgrid_daction_needs(ZGRID_DA_EVALUATE), "resolved or failed");
}

static void test_csv_records(void **state)
{
    (void)state;
    const char *text = "\xEF\xBB\xBF"
                       "code,name\r\n"
                       "1,\"a, \"\"quoted\"\" name\"\n"
                       "2,\"two\nlines\"\n"
                       "\n"
                       "3,x\"y\n"
                       "4,\"z\"w\n"
                       "5,last";
    zgrid_csv_t csv;
    zgrid_csv_init(&csv, text, strlen(text));
    char buf[512], why[120];
    char *f[4];
    long line = 0;
    assert_int_equal(zgrid_csv_next(&csv, buf, sizeof buf, f, 4, &line, why, sizeof why), 2);
    assert_int_equal(line, 1);
    assert_string_equal(f[0], "code"); /* the BOM is gone */
    assert_int_equal(zgrid_csv_next(&csv, buf, sizeof buf, f, 4, &line, why, sizeof why), 2);
    assert_string_equal(f[1], "a, \"quoted\" name");
    assert_int_equal(line, 2);
    assert_int_equal(zgrid_csv_next(&csv, buf, sizeof buf, f, 4, &line, why, sizeof why), 2);
    assert_string_equal(f[1], "two\nlines");
    assert_int_equal(line, 3);
    assert_int_equal(zgrid_csv_next(&csv, buf, sizeof buf, f, 4, &line, why, sizeof why), 1);
    assert_int_equal(line, 5); /* a blank line: one empty field */
    assert_string_equal(f[0], "");
    assert_int_equal(zgrid_csv_next(&csv, buf, sizeof buf, f, 4, &line, why, sizeof why), -1);
    assert_int_equal(line, 6);
    assert_non_null(strstr(why, "quote inside"));
    assert_int_equal(zgrid_csv_next(&csv, buf, sizeof buf, f, 4, &line, why, sizeof why), -1);
    assert_int_equal(line, 7);
    assert_non_null(strstr(why, "after a closing quote"));
    assert_int_equal(zgrid_csv_next(&csv, buf, sizeof buf, f, 4, &line, why, sizeof why), 2);
    assert_int_equal(line, 8);
    assert_string_equal(f[1], "last");
    assert_int_equal(zgrid_csv_next(&csv, buf, sizeof buf, f, 4, &line, why, sizeof why), 0);

    const char *open = "a,\"never closed\n";
    zgrid_csv_init(&csv, open, strlen(open));
    assert_int_equal(zgrid_csv_next(&csv, buf, sizeof buf, f, 4, &line, why, sizeof why), -1);
    assert_non_null(strstr(why, "not closed"));
    const char *wide = "a,b,c,d,e\n";
    zgrid_csv_init(&csv, wide, strlen(wide));
    assert_int_equal(zgrid_csv_next(&csv, buf, sizeof buf, f, 4, &line, why, sizeof why), -1);
    assert_non_null(strstr(why, "more than 4 fields"));

    char out[64];
    assert_int_equal(zgrid_csv_field("plain", out, sizeof out), 5);
    assert_int_equal(zgrid_csv_field("a,\"b\"", out, sizeof out), 9);
    assert_string_equal(out, "\"a,\"\"b\"\"\"");
    assert_int_equal(zgrid_csv_field("0123456789", out, 8), -1);
}

/* Parse a header and one row of a small file. */
static int unit_row(const char *text, zgrid_unit_in_t *u, zgrid_point_t *pts, zgrid_err_t *err,
                    char *buf, size_t buf_len)
{
    zgrid_csv_t csv;
    zgrid_csv_init(&csv, text, strlen(text));
    char *hf[ZGRID_CSV_COLUMNS_MAX];
    char why[120];
    long line;
    int n =
        zgrid_csv_next(&csv, buf, buf_len / 2, hf, ZGRID_CSV_COLUMNS_MAX, &line, why, sizeof why);
    zgrid_csv_columns_t cols;
    if (zgrid_csv_header(hf, n, &cols, err) != 0) {
        return -1;
    }
    static char *rf[ZGRID_CSV_COLUMNS_MAX];
    n = zgrid_csv_next(&csv, buf + buf_len / 2, buf_len / 2, rf, ZGRID_CSV_COLUMNS_MAX, &line, why,
                       sizeof why);
    return zgrid_csv_unit(rf, n, &cols, u, pts, err);
}

static void test_csv_units(void **state)
{
    (void)state;
    static char buf[1 << 16];
    static zgrid_point_t pts[ZGRID_BOUNDARY_POINTS_MAX + 1];
    zgrid_unit_in_t u;
    zgrid_err_t err;
    assert_int_equal(unit_row(ZGRID_CSV_HEADER "\n220503001001002,一网格,张三,党支部,41.77,126.04,"
                                               "41 126;41 127;42 127;41 126\n",
                              &u, pts, &err, buf, sizeof buf),
                     0);
    assert_string_equal(u.code, "220503001001002");
    assert_true(u.has_centroid && u.centroid.lat == 41.77);
    assert_int_equal(u.n_boundary, 3);
    /* Chinese headers, any order, optional columns absent. */
    assert_int_equal(unit_row("名称,编码\n桃源社区,220503001001\n", &u, pts, &err, buf, sizeof buf),
                     0);
    assert_false(u.has_centroid);
    assert_string_equal(u.name, "桃源社区");
    /* Bad rows name their column. */
    const struct {
        const char *text, *field;
    } bad[] = {
        {"code,name\n2205030,x\n", "code"},
        {"code,name\n220503,\n", "name"},
        {"code,name,lat,long\n220503,x,91,1\n", "lat"},
        {"code,name,lat,long\n220503,x,1,\n", "long"},
        {"code,name,lat,long\n220503,x,abc,1\n", "lat"},
        {"code,name,boundary\n220503,x,1 2;3\n", "boundary"},
        {"code,name,boundary\n220503,x,1 1;2 2;3 3\n", "boundary"},
        {"code,name\n220503,x,extra\n", "row"},
        {"code,nom\n220503,x\n", "header"},
        {"code,name,code\n220503,x,1\n", "header"},
        {"name,leader\nx,y\n", "header"},
        {"code,name,lat\n220503,x,1\n", "header"},
    };
    for (size_t i = 0; i < ZARRAY_LEN(bad); i++) {
        memset(&err, 0, sizeof err);
        assert_int_not_equal(unit_row(bad[i].text, &u, pts, &err, buf, sizeof buf), 0);
        if (strcmp(err.field, bad[i].field) != 0) {
            fail_msg("case %zu: field %s, want %s (%s)", i, err.field, bad[i].field, err.message);
        }
    }
    size_t n;
    assert_int_equal(zgrid_boundary_parse("1 2;3 4", pts, 4, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(zgrid_boundary_parse("1 2;;3 4", pts, 4, &n), -1);
    assert_int_equal(zgrid_boundary_parse("1 2 3", pts, 4, &n), -1);
    assert_int_equal(zgrid_boundary_parse("1 2;3 4;5 6", pts, 2, &n), -1);
}

static void test_keys_and_sealing(void **state)
{
    (void)state;
    uint8_t master[ZGRID_KEY_BYTES], other[ZGRID_KEY_BYTES];
    const char *hex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    assert_int_equal(zgrid_key_parse(hex, strlen(hex), false, master), 0);
    assert_int_equal(master[31], 0x1f);
    char b64[64];
    sodium_bin2base64(b64, sizeof b64, master, sizeof master, sodium_base64_VARIANT_ORIGINAL);
    strcat(b64, "\n");
    assert_int_equal(zgrid_key_parse(b64, strlen(b64), false, other), 0);
    assert_memory_equal(master, other, sizeof master);
    assert_int_equal(zgrid_key_parse("abc", 3, false, other), -1);
    assert_int_equal(zgrid_key_parse(hex, 62, false, other), -1);
    assert_int_equal(zgrid_key_parse("", 0, true, other), -1);
    /* A key file may hold the 32 bytes raw. */
    assert_int_equal(zgrid_key_parse((const char *)master, sizeof master, true, other), 0);
    assert_int_equal(zgrid_key_parse((const char *)master, sizeof master, false, other), -1);

    zgrid_keys_t k, k2;
    zgrid_keys_derive(master, &k);
    master[0] ^= 1;
    zgrid_keys_derive(master, &k2);
    assert_memory_not_equal(k.seal, k.qr, sizeof k.seal);
    assert_memory_not_equal(k.check, k2.check, sizeof k.check);

    const char *plain = "王某|11010519491231002X|13700000000|1号楼101";
    size_t len = strlen(plain);
    uint8_t sealed[256], opened[256], again[256];
    zgrid_seal(&k, (const uint8_t *)plain, len, sealed);
    assert_null(memmem(sealed, len + ZGRID_SEAL_OVERHEAD, "11010519491231002X", 18));
    assert_int_equal(zgrid_open(&k, sealed, len + ZGRID_SEAL_OVERHEAD, opened), 0);
    assert_memory_equal(opened, plain, len);
    /* Fresh nonce each time: the same fields never seal to the same bytes. */
    zgrid_seal(&k, (const uint8_t *)plain, len, again);
    assert_memory_not_equal(sealed, again, len + ZGRID_SEAL_OVERHEAD);
    assert_int_equal(zgrid_open(&k2, sealed, len + ZGRID_SEAL_OVERHEAD, opened), -1);
    sealed[30] ^= 0x40;
    assert_int_equal(zgrid_open(&k, sealed, len + ZGRID_SEAL_OVERHEAD, opened), -1);
    assert_int_equal(zgrid_open(&k, sealed, ZGRID_SEAL_OVERHEAD - 1, opened), -1);
}

static void test_qr_codes(void **state)
{
    (void)state;
    uint8_t master[ZGRID_KEY_BYTES] = {7};
    zgrid_keys_t k;
    zgrid_keys_derive(master, &k);
    char a[ZGRID_QR_CHARS + 1], b[ZGRID_QR_CHARS + 1], c[ZGRID_QR_CHARS + 1];
    zgrid_qr_code(&k, "220503001001002", a);
    zgrid_qr_code(&k, "220503001001002", b);
    zgrid_qr_code(&k, "220503001001003", c);
    assert_int_equal(strlen(a), ZGRID_QR_CHARS);
    assert_string_equal(a, b);     /* stable */
    assert_string_not_equal(a, c); /* per unit */
    char upper[ZGRID_QR_CHARS + 1], norm[ZGRID_QR_CHARS + 1];
    for (int i = 0; i <= ZGRID_QR_CHARS; i++) {
        upper[i] = (char)(a[i] >= 'a' && a[i] <= 'z' ? a[i] - 32 : a[i]);
    }
    assert_true(zgrid_qr_normalize(upper, norm));
    assert_string_equal(norm, a);
    assert_false(zgrid_qr_normalize("short", norm));
    assert_false(zgrid_qr_normalize("abcdefghijklmno1", norm)); /* 1 is not base32 */
    assert_true(zgrid_qr_level(ZAREA_GRID) && zgrid_qr_level(ZAREA_BUILDING));
    assert_false(zgrid_qr_level(ZAREA_COMMUNITY));
}

static void test_ids_texts_people(void **state)
{
    (void)state;
    assert_true(zgrid_id_number_valid("11010519491231002X"));
    assert_true(zgrid_id_number_valid("11010519491231002x"));
    assert_false(zgrid_id_number_valid("110105194912310021")); /* check character */
    assert_false(zgrid_id_number_valid("11010519491331002X")); /* month 13 */
    assert_false(zgrid_id_number_valid("1101051949123100"));
    assert_false(zgrid_id_number_valid("1101051949123100AX"));
    zgrid_err_t err;
    assert_int_equal(zgrid_id_check("gm-01_a", "id", &err), 0);
    assert_int_equal(zgrid_id_check("bad id", "id", &err), ZE_INVALID);
    assert_int_equal(zgrid_id_check("", "id", &err), ZE_INVALID);
    assert_int_equal(zgrid_phone_check("", false, "phone", &err), 0);
    assert_int_equal(zgrid_phone_check("", true, "phone", &err), ZE_INVALID);
    assert_int_equal(zgrid_phone_check("+86 138-0000-0000", false, "phone", &err), 0);
    assert_int_equal(zgrid_phone_check("call me", false, "phone", &err), ZE_INVALID);
    assert_string_equal(err.field, "phone");
    assert_int_equal(zgrid_area_check("220503001", ZAREA_STREET, "area", &err), 0);
    assert_int_equal(zgrid_area_check("220503001", ZAREA_GRID, "area", &err), ZE_INVALID);
    assert_non_null(strstr(err.message, "15 digits"));
    assert_true(zgrid_person_level_ok("grid_member", ZAREA_GRID));
    assert_false(zgrid_person_level_ok("grid_member", ZAREA_COMMUNITY));
    assert_true(zgrid_person_level_ok("station_chief", ZAREA_COMMUNITY));
    assert_true(zgrid_person_level_ok("mass_prevention", ZAREA_BUILDING));
    assert_false(zgrid_person_level_ok("nobody", ZAREA_GRID));
    assert_true(zgrid_person_is_police("aux_police") && !zgrid_person_is_police("grid_member"));
    char words[120];
    assert_string_equal(zgrid_list_text(zgrid_risks, words, sizeof words), "low, medium or high");
}

static void test_due_after_visit(void **state)
{
    (void)state;
    const int64_t day = ZGRID_DAY_MS;
    assert_true(zgrid_due_after_visit(10 * day, 7 * day, 0) == 17 * day);
    /* The interval ending at day 20 was reported missed: a visit recorded
     * late, on day 12, cannot start an interval that overlaps it. */
    assert_true(zgrid_due_after_visit(12 * day, 10 * day, 20 * day) == 30 * day);
    assert_true(zgrid_due_after_visit(25 * day, 10 * day, 20 * day) == 35 * day);
}

int main(void)
{
    if (sodium_init() < 0) {
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_point_in_polygon),
        cmocka_unit_test(test_distance_and_points),
        cmocka_unit_test(test_boundary_rules),
        cmocka_unit_test(test_unit_check),
        cmocka_unit_test(test_dispute_transitions),
        cmocka_unit_test(test_csv_records),
        cmocka_unit_test(test_csv_units),
        cmocka_unit_test(test_keys_and_sealing),
        cmocka_unit_test(test_qr_codes),
        cmocka_unit_test(test_ids_texts_people),
        cmocka_unit_test(test_due_after_visit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
