/* Realistic 12345 petitions (petgen.h). */
#include "tools/zhilictl/petgen.h"

#include <stdio.h>
#include <string.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

typedef struct {
    const char *code;
    const char *const *texts;
    size_t count;
} category_t;

static const char *const property[] = {
    "小区电梯经常故障停运，老人上下楼困难，物业维修不及时",
    "物业收费后楼道保洁不到位，垃圾堆放多日无人清理",
    "单元门禁损坏一个多月，物业一直未修，存在安全隐患",
    "屋顶漏水影响顶楼住户，多次找物业未解决",
    "物业擅自提高停车管理费，未公示收费依据",
};
static const char *const noise[] = {
    "楼上住户夜间装修，晚上十点后仍在施工，影响休息",
    "小区门口烧烤店深夜噪音扰民，油烟也很大",
    "广场舞音响音量过大，每天晚上持续到九点半以后",
    "附近工地夜间打桩施工，噪音很大，希望核实是否有夜间施工许可",
};
static const char *const sanitation[] = {
    "小区垃圾桶满溢，连续三天未清运，气味难闻",
    "化粪池堵塞外溢，污水流到单元门口",
    "楼道内有人长期堆放杂物和废品，影响卫生和消防",
    "小区绿化带内蚊虫多，希望安排消杀",
};
static const char *const parking[] = {
    "有车辆长期占用消防通道，救护车无法通行",
    "小区内乱停车严重，早晚高峰出入困难",
    "外来车辆占用业主车位，物业不管",
    "共享单车堆放在小区门口人行道上，影响通行",
};
static const char *const neighbor[] = {
    "楼上卫生间漏水渗到我家天花板，协商无果",
    "邻居在公共楼道安装鞋柜，占用公共空间",
    "邻居饲养大型犬不拴绳，多次吓到孩子",
    "相邻住户空调外机正对我家窗户，噪音和热风影响生活",
};
static const char *const municipal[] = {
    "小区外道路路灯不亮，晚上出行不安全", "路边井盖缺失，存在安全隐患，请尽快处理",
    "供暖温度不达标，室内只有十五度",     "小区突然停水，没有提前通知，什么时候恢复",
    "人行道地砖破损翘起，老人容易绊倒",
};
static const char *const safety[] = {
    "地下室有人私拉电线给电动车充电，存在火灾隐患",
    "小区监控大部分损坏，近期发生多起电动车被盗",
    "楼道消防栓内没有水带，灭火器过期",
    "有陌生人频繁在小区内推销，怀疑诈骗",
};
static const char *const other[] = {
    "咨询老旧小区改造的申请条件和办理流程",
    "希望在小区增设老年人休闲座椅和健身器材",
    "咨询社区养老服务中心的开放时间和服务内容",
};

static const category_t categories[] = {
    {"property", property, ARRAY_LEN(property)},
    {"noise", noise, ARRAY_LEN(noise)},
    {"sanitation", sanitation, ARRAY_LEN(sanitation)},
    {"parking", parking, ARRAY_LEN(parking)},
    {"neighbor_dispute", neighbor, ARRAY_LEN(neighbor)},
    {"municipal", municipal, ARRAY_LEN(municipal)},
    {"public_safety", safety, ARRAY_LEN(safety)},
    {"other", other, ARRAY_LEN(other)},
};

static const char *const streets[] = {"东昌街道", "桃源街道", "五道江镇", "鸭园镇", "铁厂镇"};
static const char *const compounds[] = {"幸福家园", "和平小区", "龙泉花园", "春华苑",
                                        "江畔名居", "钢城新村", "翠湖湾",   "建设小区"};
static const char *const surnames[] = {"张", "王", "李", "刘", "陈", "杨", "赵", "黄", "周", "吴"};

static uint64_t next(zpg_t *g)
{
    uint64_t x = g->state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    g->state = x;
    return x * 2685821657736338717ull;
}

static size_t pick(zpg_t *g, size_t n)
{
    return (size_t)(next(g) % n);
}

int zpg_init(zpg_t *g, const char *prefix, uint64_t seed)
{
    size_t n = strlen(prefix);
    if (n > 18 || strspn(prefix, "0123456789") != n || (n > 0 && n < 6)) {
        return -1;
    }
    snprintf(g->prefix, sizeof g->prefix, "%s", prefix);
    g->state = seed ? seed : 0x9E3779B97F4A7C15ull;
    return 0;
}

/* Extend the prefix to a building (18 digits): at each level a few units
 * numbered 001.., so petitions meet in the same grids and buildings. */
static void area(zpg_t *g, char out[19])
{
    const char *p = g->prefix[0] ? g->prefix : "220503";
    size_t n = strlen(p);
    memcpy(out, p, n);
    while (n < 18) {
        size_t boundary = (n / 3 + 1) * 3;
        while (n + 1 < boundary) {
            out[n++] = '0';
        }
        out[n++] = (char)('1' + pick(g, boundary <= 12 ? 3 : 5));
    }
    out[18] = '\0';
}

int zpg_petition(zpg_t *g, const char *ticket, char *out, size_t cap)
{
    const category_t *c = &categories[pick(g, ARRAY_LEN(categories))];
    const char *text = c->texts[pick(g, c->count)];
    uint64_t roll = pick(g, 100);
    const char *urgency = roll < 3 ? "critical" : roll < 15 ? "urgent" : "normal";
    char code[19];
    area(g, code);
    unsigned building = (unsigned)(code[17] - '0'), unit = 1 + (unsigned)pick(g, 4);
    unsigned room = 101 + (unsigned)pick(g, 6) * 100 + (unsigned)pick(g, 4);
    unsigned long long phone = 13000000000ull + (unsigned long long)pick(g, 999999999);
    char tk[256] = "";
    if (ticket != NULL && ticket[0] != '\0') {
        snprintf(tk, sizeof tk, ",\"ticket\":\"%s\"", ticket);
    }
    int n =
        snprintf(out, cap,
                 "{\"category\":\"%s\",\"urgency\":\"%s\",\"content\":\"%s\",\"area\":\"%s\","
                 "\"address\":\"二道江区%s%s%u号楼%u单元%u室\",\"citizen\":{\"name\":\"%s%s\","
                 "\"phone\":\"%llu\"},\"channel\":\"hotline\"%s}",
                 c->code, urgency, text, code, streets[pick(g, ARRAY_LEN(streets))],
                 compounds[pick(g, ARRAY_LEN(compounds))], building, unit, room,
                 surnames[pick(g, ARRAY_LEN(surnames))], pick(g, 2) ? "先生" : "女士", phone, tk);
    return n < 0 || (size_t)n >= cap ? -1 : n;
}
