// Browser test of the command-center page (web/index.html): npm's playwright-core drives
// Debian's chromium (never a downloaded browser) against the real stack (stack.py).
//
//   node tests/browser/dashboard.test.mjs        (env: ZHILI_BIN = build/bin)
//
// npm dependencies go into the build tree: <build>/web (echarts, from web/package-lock.json),
// copied to <build>/web-dist for the gateway's /assets/ (ZHILI_WEB_ASSETS), and
// <build>/browser-tests (playwright-core, from tests/browser/package-lock.json).
// Artifacts: <build>/test-artifacts/dashboard-*.png. Skips (exit 0) only without chromium.
import {spawn, spawnSync} from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import {createRequire} from "node:module";
import {fileURLToPath} from "node:url";
import readline from "node:readline";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SRC = path.resolve(HERE, "..", "..");
const BIN = process.env.ZHILI_BIN || path.join(SRC, "build", "bin");
const BUILD = path.dirname(path.resolve(BIN));
const CHROMIUM = process.env.ZHILI_CHROMIUM || "/usr/bin/chromium";
const ARTIFACTS = path.join(BUILD, "test-artifacts");
const T0 = Date.now();
const log = (...a) => console.log(`[${((Date.now() - T0) / 1000).toFixed(1)}s]`, ...a);

if (!fs.existsSync(CHROMIUM)) {
  console.log(`SKIP: ${CHROMIUM} not found (./dev deps installs Debian's chromium)`);
  process.exit(0);
}
const watchdog = setTimeout(() => { console.error("FAIL: test took over 120 s"); cleanup(1); }, 120000);

// npm ci into dir from the committed package.json + package-lock.json of srcDir, once per lock.
function npmCi(srcDir, dir) {
  fs.mkdirSync(dir, {recursive: true});
  const lock = fs.readFileSync(path.join(srcDir, "package-lock.json"), "utf8");
  const stamp = path.join(dir, "node_modules", ".zhili-lock");
  if (fs.existsSync(stamp) && fs.readFileSync(stamp, "utf8") === lock) return true;
  for (const f of ["package.json", "package-lock.json"]) fs.copyFileSync(path.join(srcDir, f), path.join(dir, f));
  const r = spawnSync("npm", ["ci", "--no-audit", "--no-fund", "--ignore-scripts", "--prefix", dir],
                      {stdio: "inherit", timeout: 300000});
  if (r.status !== 0) return false;
  fs.writeFileSync(stamp, lock);
  return true;
}

let stack = null, browser = null;
async function cleanup(code) {
  clearTimeout(watchdog);
  try { if (browser) await browser.close(); } catch (e) { /* closing anyway */ }
  if (stack) {
    stack.stdin.end();
    await new Promise((res) => { stack.on("exit", res); setTimeout(() => { stack.kill("SIGKILL"); res(); }, 15000); });
  }
  process.exit(code);
}
function check(cond, what) {
  if (!cond) throw new Error("check failed: " + what);
  log("ok:", what);
}

async function main() {
  // 1. npm dependencies in the build tree
  const webDist = path.join(BUILD, "web-dist");
  fs.mkdirSync(webDist, {recursive: true});
  let haveCharts = false;
  if (npmCi(path.join(SRC, "web"), path.join(BUILD, "web"))) {
    fs.copyFileSync(path.join(BUILD, "web", "node_modules", "echarts", "dist", "echarts.min.js"),
                    path.join(webDist, "echarts.min.js"));
    haveCharts = true;
  } else {
    log("WARN: npm ci for web/ failed: the page runs without charts");
  }
  if (!npmCi(HERE, path.join(BUILD, "browser-tests"))) throw new Error("npm ci of playwright-core failed");
  const require = createRequire(path.join(BUILD, "browser-tests", "node_modules", "x.js"));
  const {chromium} = require("playwright-core");
  fs.mkdirSync(ARTIFACTS, {recursive: true});
  log("dependencies ready");

  // 2. the real stack
  stack = spawn("python3", [path.join(HERE, "stack.py"), webDist],
                {stdio: ["pipe", "pipe", "inherit"], env: {...process.env, ZHILI_BIN: BIN}});
  const first = await new Promise((resolve, reject) => {
    const rl = readline.createInterface({input: stack.stdout});
    rl.once("line", resolve);
    stack.once("exit", (c) => reject(new Error("stack.py exited with " + c)));
  });
  const env = JSON.parse(first);
  log("stack up at", env.url);

  // 3. the page, logged in with a token
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
  const ctx = await browser.newContext({viewport: {width: 1920, height: 1080}, acceptDownloads: true,
                                        locale: "zh-CN", timezoneId: "Asia/Shanghai"});
  const page = await ctx.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(env.url + "/");
  await page.fill("#token", env.token);
  await page.click("#login");
  await page.waitForFunction(() => document.getElementById("who").textContent.includes("管理员"), null, {timeout: 10000});
  await page.waitForFunction(() => document.getElementById("state").textContent.includes("实时"), null, {timeout: 10000});
  await page.waitForFunction(() => document.querySelector("#onetable tbody tr.total"), null, {timeout: 10000});
  check(true, "the page loads and logs in with a token (session cookie), stream connected");
  const before = await page.textContent("#kpi-petitions_received .v");
  const beforeToday = await page.textContent("#kpi-__today .v");

  // 4. a petition pushed through the API appears in the live feed within 2 s
  const t = Date.now();
  const res = await fetch(env.url + "/api/v1/petitions", {
    method: "POST",
    headers: {"Authorization": "Bearer " + env.hotline, "Content-Type": "application/json",
              "Idempotency-Key": "browser-" + process.pid + "-" + t},
    body: JSON.stringify({category: "noise", urgency: "normal", content: "浏览器测试：楼上夜间装修噪音",
                          area: "370612001001001", address: "牟平区正阳一网格1号楼",
                          citizen: {name: "张女士", phone: "13812341234"}, channel: "hotline"}),
  });
  const pet = await res.json();
  check(res.status === 201 && pet.id, `petition accepted (${res.status} ${pet.id})`);
  await page.waitForFunction((id) => [...document.querySelectorAll("#feed tbody tr")]
    .some((tr) => tr.dataset.topic === "petitions.received" && tr.textContent.includes(id)), pet.id,
    {timeout: Math.max(100, 2000 - (Date.now() - t))});
  check(Date.now() - t <= 2000, `the petition is in the live feed after ${Date.now() - t} ms (≤ 2000)`);

  // 5. a KPI changes
  await page.waitForFunction((b) => document.querySelector("#kpi-petitions_received .v").textContent !== b,
                             before, {timeout: 10000});
  const after = await page.textContent("#kpi-petitions_received .v");
  const afterToday = await page.textContent("#kpi-__today .v");
  check(after !== before && afterToday !== beforeToday,
        `KPI 本月受理诉求 ${before} → ${after}, 今日新增 ${beforeToday} → ${afterToday}`);

  // 6. the one table renders; drill-down district → street; the CSV downloads
  const names = await page.$$eval("#onetable tbody tr td:first-child", (tds) => tds.map((td) => td.textContent));
  check(names.includes("宁海街道") && names.includes("文化街道") && names.some((n) => n.startsWith("合计")),
        "the one table lists the streets and the total: " + names.join(", "));
  await page.click("#onetable a.drill >> text=宁海街道");
  await page.waitForFunction(() => document.getElementById("crumbs").textContent.includes("宁海街道") &&
    document.getElementById("onetable").textContent.includes("正阳社区"), null, {timeout: 10000});
  check(true, "drill-down to 宁海街道 shows its communities");
  const [download] = await Promise.all([page.waitForEvent("download", {timeout: 10000}), page.click("#csv")]);
  const csvPath = path.join(ARTIFACTS, "dashboard-report.csv");
  await download.saveAs(csvPath);
  const csv = fs.readFileSync(csvPath, "utf8");
  check(csv.includes("正阳社区") && csv.includes("合计"), `CSV downloaded (${download.suggestedFilename()}, ${csv.length} bytes)`);
  await page.click("#crumbs a[data-area='370612']");
  await page.waitForFunction(() => document.getElementById("onetable").textContent.includes("文化街道"), null, {timeout: 10000});

  // 7. charts (ECharts from the build tree) and screenshots
  if (haveCharts) {
    await page.waitForFunction(() => window.echarts && document.querySelector("#chart-count canvas"), null, {timeout: 10000});
    check(true, "ECharts loaded from /assets/ and drew the charts");
  }
  await page.screenshot({path: path.join(ARTIFACTS, "dashboard-1920x1080.png")});
  await page.setViewportSize({width: 1366, height: 768});
  await page.waitForTimeout(300);
  await page.screenshot({path: path.join(ARTIFACTS, "dashboard-1366x768.png")});
  check(fs.statSync(path.join(ARTIFACTS, "dashboard-1920x1080.png")).size > 10000, "screenshots saved in " + ARTIFACTS);
  check(errors.length === 0, "no page errors " + JSON.stringify(errors));
  log("PASS");
}

main().then(() => cleanup(0), (e) => { console.error("FAIL:", e && e.stack || e); cleanup(1); });
