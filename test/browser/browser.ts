// Chromium from the Debian packages, driven by puppeteer-core; the console is
// used as people use it: by labels, roles and visible text.
import { existsSync } from "node:fs";
import puppeteer, { type Browser, type Page } from "puppeteer-core";

const CANDIDATES = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"];

export function chromiumPath(): string {
  const found = process.env.CHROMIUM_PATH ?? CANDIDATES.find((p) => existsSync(p));
  if (!found || !existsSync(found)) {
    throw new Error("No Chromium: apt-get install -y chromium, or set CHROMIUM_PATH to the browser's binary");
  }
  return found;
}

export function launch(): Promise<Browser> {
  return puppeteer.launch({
    executablePath: chromiumPath(),
    headless: true,
    args: ["--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,800"],
    defaultViewport: { width: 1280, height: 800 },
  });
}

/** A fresh page (own storage) that fails the test on script errors. */
export async function newPage(browser: Browser, errors: string[]): Promise<Page> {
  const context = await browser.createBrowserContext();
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);
  page.on("pageerror", (e) => errors.push(String(e)));
  return page;
}

export async function login(page: Page, url: string, username: string, password: string) {
  await page.goto(url);
  await page.locator("::-p-aria(Username)").fill(username);
  await page.locator("::-p-aria(Password)").fill(password);
  await page.locator("::-p-aria(Sign in[role=\"button\"])").click();
  await page.waitForSelector("nav[aria-label=Screens]");
}

export async function open(page: Page, screen: string) {
  await page.locator(`::-p-aria(${screen}[role="link"])`).click();
  await page.waitForSelector(`main[aria-label="${screen}"]`);
}

/** Waits until the page's text contains `text` (or, with `absent`, no longer does). */
export async function waitForText(page: Page, text: string, absent = false) {
  await page.waitForFunction((t, a) => document.body.innerText.includes(t) !== a, {}, text, absent);
}

export const visibleText = (page: Page) => page.evaluate(() => document.body.innerText);
