// Opens the API browser (/docs) in Debian's chromium, driven by playwright-core, and checks
// what a user would: every operation of the OpenAPI document is listed, one can be tried
// with a token, nothing is requested from another host, and the console shows no errors
// (a blocked script or style under the page's Content-Security-Policy is one).
//
//   node check-docs.cjs BASE_URL READ_TOKEN ARTIFACT_DIR
//
// playwright-core is resolved from the working directory (where check-browser.sh installs
// it). A screenshot of a failed run goes to ARTIFACT_DIR.
"use strict";
const path = require("node:path");
const { chromium } = require(path.join(process.cwd(), "node_modules", "playwright-core"));

const [base, token, artifacts] = process.argv.slice(2);
const origin = new URL(base).origin;
const failures = [];
const fail = (message) => failures.push(message);

async function main() {
  const spec = await (await fetch(`${base}/openapi.json`)).json();
  const expected = new Set();
  for (const [route, item] of Object.entries(spec.paths)) {
    for (const method of Object.keys(item)) {
      expected.add(`${method.toUpperCase()} ${route}`);
    }
  }

  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    chromiumSandbox: false,
    // Quiet: no update checks, sync or other traffic of the browser's own.
    args: [
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
  });
  const page = await (await browser.newContext()).newPage();
  page.setDefaultTimeout(15000);
  // Everything the page requests goes through here: this server's requests proceed, any
  // other host's are refused and reported.
  await page.route("**/*", (route) => {
    const url = route.request().url();
    if (new URL(url).origin === origin) return route.continue();
    fail(`requested another host: ${url}`);
    return route.abort("blockedbyclient");
  });
  page.on("console", (message) => {
    if (message.type() === "error") fail(`console error: ${message.text()}`);
  });
  page.on("pageerror", (error) => fail(`uncaught: ${error.message}`));
  page.on("response", (response) => {
    if (response.status() >= 400) fail(`${response.status()} for ${response.url()}`);
  });

  try {
    const answer = await page.goto(`${base}/docs`);
    if (answer.status() !== 200) fail(`/docs answered ${answer.status()}`);
    await page.waitForFunction(
      (count) => document.querySelectorAll(".opblock").length >= count,
      expected.size,
    );
    const listed = await page.$$eval(".opblock-summary", (summaries) =>
      summaries.map((summary) => {
        const method = summary.querySelector(".opblock-summary-method").textContent.trim();
        const route = summary.querySelector(".opblock-summary-path").getAttribute("data-path");
        return `${method} ${route}`;
      }),
    );
    const shown = new Set(listed);
    for (const operation of expected) {
      if (!shown.has(operation)) fail(`not listed: ${operation}`);
    }
    for (const operation of shown) {
      if (!expected.has(operation)) fail(`listed but not in the document: ${operation}`);
    }

    // Try one operation, as a user would: authorize with the token, then execute.
    await page.click("button.authorize");
    const bearer = page.locator(".auth-container").filter({ hasText: "bearerAuth" });
    await bearer.locator("input").fill(token);
    await bearer.locator("button.authorize").click();
    await page.click(".modal-ux button.close-modal");
    const list = page.locator("#operations-clusters-listClusters");
    await list.locator(".opblock-summary-control").click();
    await list.locator("button.try-out__btn").click();
    await list.locator("button.execute").click();
    const status = await list
      .locator(".live-responses-table .response .response-col_status")
      .first()
      .textContent();
    if (status.trim() !== "200") fail(`GET /clusters from the browser answered ${status.trim()}`);
    console.log(`check-browser: ${shown.size} operations listed, GET /clusters tried: ${status.trim()}`);
  } catch (error) {
    fail(`${error.message}`);
  }

  if (failures.length > 0) {
    const shot = path.join(artifacts, "docs-failure.png");
    await page.screenshot({ path: shot, fullPage: true }).catch(() => {});
    console.error(`check-browser: screenshot of the failure: ${shot}`);
  }
  await browser.close();
}

main()
  .catch((error) => fail(`${error.stack || error}`))
  .finally(() => {
    for (const failure of failures) console.error(`check-browser: ${failure}`);
    process.exitCode = failures.length > 0 ? 1 : 0;
  });
