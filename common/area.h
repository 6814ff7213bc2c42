/* area: area codes (DESIGN §3). They extend the national 统计用区划代码: 6 digits a
 * county or district, 9 a street or township, 12 a community or village, 15 a
 * compound or grid (小区/网格), 18 a building (楼栋). A prefix names everything
 * under it, so scoping and roll-ups are prefix matches. */
#ifndef ZHILI_AREA_H
#define ZHILI_AREA_H

#include <stdbool.h>
#include <stddef.h>

#define ZAREA_BYTES_MAX 18

typedef enum {
    ZAREA_NONE = 0,
    ZAREA_DISTRICT = 1,   /* 6  区/县 */
    ZAREA_STREET = 2,     /* 9  街道/乡镇 */
    ZAREA_COMMUNITY = 3,  /* 12 社区/村 */
    ZAREA_GRID = 4,       /* 15 小区/网格 */
    ZAREA_BUILDING = 5,   /* 18 楼栋 */
} zarea_level_t;

/* The level of a full code (6, 9, 12, 15 or 18 digits), or ZAREA_NONE. */
zarea_level_t zarea_level(const char *code);

/* A full code of one of the five levels. */
bool zarea_valid(const char *code);

/* A prefix for scoping: "" or 1..18 digits. */
bool zarea_prefix_valid(const char *prefix);

/* Is `area` inside `scope` (scope a prefix of area)? "" contains everything;
 * an area shorter than the scope is not inside it. */
bool zarea_within(const char *scope, const char *area);

/* The code of the level above (a copy of the first 6/9/12/15 digits), ""
 * for a district. out must hold ZAREA_BYTES_MAX + 1 bytes. */
void zarea_parent(const char *code, char *out);

/* The first `level` part of code (e.g. the community of a building), "" when
 * code is shorter. */
void zarea_at_level(const char *code, zarea_level_t level, char *out);

/* Chinese name of a level: 区县, 街道, 社区, 网格, 楼栋. */
const char *zarea_level_name(zarea_level_t level);

#endif
