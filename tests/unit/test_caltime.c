/* Goal: the local calendar and area codes behave as DESIGN §3 says: Beijing
 * time decides the day and month, RFC 3339 round trips with +08:00, and area
 * codes have five levels matched by prefix. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "common/area.h"
#include "common/caltime.h"

static void test_local_month_boundary(void **state)
{
    (void)state;
    int64_t ms;
    /* 00:30 on 1 December in Beijing is still 30 November in UTC. */
    assert_int_equal(ztime_parse("2026-11-30T16:30:00Z", &ms), 0);
    assert_int_equal(ztime_month_key(ms), 202612);
    assert_int_equal(ztime_day_key(ms), 20261201);
    assert_int_equal(ztime_year(ms), 2026);
    char buf[ZTIME_RFC3339_BYTES];
    ztime_format(ms, buf);
    assert_string_equal(buf, "2026-12-01T00:30:00+08:00");
    int64_t back;
    assert_int_equal(ztime_parse(buf, &back), 0);
    assert_true(back == ms);
    assert_true(ztime_month_start(2026, 12) == ms - 30 * 60 * 1000);
    assert_true(ztime_month_start(2026, 13) == ztime_month_start(2027, 1));
}

static void test_parse_forms_and_errors(void **state)
{
    (void)state;
    int64_t a, b;
    assert_int_equal(ztime_parse("2026-11-26", &a), 0);
    assert_int_equal(ztime_parse("2026-11-26T00:00:00+08:00", &b), 0);
    assert_true(a == b);
    assert_int_equal(ztime_parse("2026-11-26T00:00:00.250+08:00", &b), 0);
    assert_true(b == a + 250);
    char buf[ZTIME_RFC3339_BYTES];
    ztime_format(b, buf);
    assert_string_equal(buf, "2026-11-26T00:00:00.250+08:00");
    const char *bad[] = {"", "2026-13-01", "2026-02-29", "2026-11-26T25:00:00Z",
                         "2026-11-26T10:00:00", "2026-11-26T10:00:00+8", "yesterday",
                         "2026-11-26T10:00:00.Z"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(ztime_parse(bad[i], &a), -1);
    }
    assert_int_equal(ztime_parse("2028-02-29", &a), 0);
}

static void test_area_codes(void **state)
{
    (void)state;
    assert_int_equal(zarea_level("220503"), ZAREA_DISTRICT);
    assert_int_equal(zarea_level("220503001"), ZAREA_STREET);
    assert_int_equal(zarea_level("220503001001"), ZAREA_COMMUNITY);
    assert_int_equal(zarea_level("220503001001002"), ZAREA_GRID);
    assert_int_equal(zarea_level("220503001001002003"), ZAREA_BUILDING);
    assert_int_equal(zarea_level("2205030"), ZAREA_NONE);
    assert_int_equal(zarea_level("22050a"), ZAREA_NONE);
    assert_true(zarea_within("", "220503"));
    assert_true(zarea_within("2205", "220503001"));
    assert_false(zarea_within("220503001", "220503"));
    assert_false(zarea_within("370612", "220503"));
    char out[ZAREA_BYTES_MAX + 1];
    zarea_parent("220503001001002", out);
    assert_string_equal(out, "220503001001");
    zarea_parent("220503", out);
    assert_string_equal(out, "");
    zarea_at_level("220503001001002003", ZAREA_COMMUNITY, out);
    assert_string_equal(out, "220503001001");
    assert_true(zarea_prefix_valid("") && zarea_prefix_valid("22") && !zarea_prefix_valid("2x"));
    assert_string_equal(zarea_level_name(ZAREA_GRID), "网格");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_local_month_boundary),
        cmocka_unit_test(test_parse_forms_and_errors),
        cmocka_unit_test(test_area_codes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
