/**
 * The web page in real Chromium (Debian's package, or CHROME_PATH; driven by playwright-core) against the real
 * server, CLI and offline model.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listen, startApp, type TestApp } from '../helper.js';
import { launch, send, watchErrors } from './chromium.js';

const ARTIFACTS = path.resolve('test-results');

/** Makes a session through the page's form and waits until it is open. */
async function newSession(page: Page, name: string, project?: string) {
  await page.getByRole('button', { name: 'New session' }).click();
  await page.getByLabel('Session name').fill(name);
  if (project) await page.getByLabel('Project folder').fill(project);
  await page.getByRole('button', { name: 'Create' }).click();
  await page.getByRole('heading', { name }).waitFor();
}

describe('signing in to a server with keys', () => {
  let t: TestApp;
  let base: string;
  let browser: Browser;
  beforeAll(async () => {
    t = await startApp({ env: { API_KEYS: 'alice:key-alice-0123456789' } });
    base = await listen(t.app);
    browser = await launch();
  });
  afterAll(async () => {
    await browser?.close();
    await t.close();
  });

  it('asks for a key, refuses a wrong one; a right one serves the other tabs of the browser, unless kept for this tab only', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(base);
    await page.getByLabel('API key').waitFor();
    expect(await page.getByText('That key was not accepted.').count()).toBe(0);
    await page.getByLabel('API key').fill('wrong-key-123456');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('That key was not accepted.').waitFor();
    await page.getByLabel('API key').fill('key-alice-0123456789');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('button', { name: 'New session' }).waitFor();
    expect(await page.evaluate(() => localStorage.getItem('css-api-key'))).toBe('key-alice-0123456789');
    // A new tab of the same browser is signed in.
    const other = await context.newPage();
    await other.goto(base);
    await other.getByRole('button', { name: 'New session' }).waitFor();
    expect(await other.getByLabel('API key').count()).toBe(0);
    // Signing out forgets it everywhere; "this tab only" keeps it out of the other tabs.
    await other.getByRole('button', { name: 'Sign out alice' }).click();
    await other.getByLabel('API key').fill('key-alice-0123456789');
    await other.getByLabel('Keep the key for this tab only').check();
    await other.getByRole('button', { name: 'Sign in' }).click();
    await other.getByRole('button', { name: 'New session' }).waitFor();
    expect(await other.evaluate(() => [localStorage.getItem('css-api-key'), sessionStorage.getItem('css-api-key')])).toEqual([null, 'key-alice-0123456789']);
    const third = await context.newPage();
    await third.goto(base);
    await third.getByLabel('API key').waitFor();
    await context.close();
  });
});

describe('the web page', () => {
  let t: TestApp;
  let base: string;
  let browser: Browser;
  beforeAll(async () => {
    t = await startApp();
    base = await listen(t.app);
    browser = await launch();
    fs.mkdirSync(ARTIFACTS, { recursive: true });
  });
  afterAll(async () => {
    await browser?.close();
    await t.close();
  });

  it("a new user's path: create a session, see the answer stream in, reload, ask again, see blue", async () => {
    const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    const errors = watchErrors(page);
    await page.goto(base);
    await page.getByRole('button', { name: 'New session' }).waitFor();
    await page.waitForFunction(() => performance.getEntriesByName('first-contentful-paint').length > 0);
    const fcp = await page.evaluate(() => performance.getEntriesByName('first-contentful-paint')[0]!.startTime);
    console.log(`web page: first contentful paint ${fcp.toFixed(0)} ms`);
    expect(fcp).toBeGreaterThan(0);
    await newSession(page, 'Colors');
    await send(page, 'Remember: my favorite color is blue');
    await page.locator('.bubble.assistant', { hasText: 'I will remember that your favorite color is blue' }).waitFor({ timeout: 20_000 });
    await page.screenshot({ path: path.join(ARTIFACTS, 'conversation-1440.png') });

    // The session has its own address: a reload opens it again.
    expect(page.url()).toMatch(/#\/s\/[0-9a-f-]{36}$/);
    await page.reload();
    await page.getByRole('heading', { name: 'Colors' }).waitFor();
    await page.locator('.bubble.user', { hasText: 'Remember: my favorite color is blue' }).waitFor();
    await send(page, 'What is my favorite color?');
    await page.locator('.bubble.assistant', { hasText: 'Your favorite color is blue.' }).waitFor({ timeout: 20_000 });

    await page.setViewportSize({ width: 375, height: 800 });
    await page.screenshot({ path: path.join(ARTIFACTS, 'conversation-375.png'), fullPage: true });
    expect(await page.getByLabel('Prompt').isVisible()).toBe(true);
    expect(errors).toEqual([]);
    await page.close();
  });

  it('a dropped stream reconnects: the text ends complete and not doubled', async () => {
    const page = await browser.newPage();
    const errors = watchErrors(page);
    await page.goto(base);
    await newSession(page, 'Reconnect');
    const words = Array.from({ length: 60 }, (_, i) => `word${i}`).join(' ');
    await send(page, `[[slow:3000]] [[say:${words}]]`);
    const live = page.locator('.bubble.live');
    await live.waitFor({ timeout: 20_000 });
    // Drop every connection mid-stream; the page reconnects with Last-Event-ID.
    t.app.server.closeAllConnections();
    const samples: string[] = [];
    const sampler = setInterval(() => {
      live.textContent({ timeout: 100 }).then(
        (x) => x && samples.push(x),
        () => {},
      );
    }, 50);
    await page.locator('.bubble.assistant:not(.live)', { hasText: 'word59' }).waitFor({ timeout: 30_000 });
    clearInterval(sampler);
    expect(samples.length).toBeGreaterThan(0);
    for (const sample of samples) expect(words.startsWith(sample.trim()), sample).toBe(true);
    const final = await page.locator('.bubble.assistant:not(.live)').last().textContent();
    expect(final?.trim()).toBe(words);
    await page.getByText('idle').waitFor();
    expect(errors.filter((e) => !/network|Failed to fetch|ERR_/i.test(e))).toEqual([]);
  });

  it('an approval: the card appears in every tab, Allow runs the tool, the card goes from the other tab', async () => {
    // In the session's folder (the local user's): the sandbox lets commands write only there.
    const marker = path.join(t.dirs.workspace, 'local', 'from-the-page');
    const one = await browser.newPage();
    const errors = watchErrors(one);
    await one.goto(base);
    await newSession(one, 'Approvals');
    const two = await browser.newPage();
    await two.goto(base);
    await two.getByRole('link', { name: /Approvals/ }).click();

    await send(one, `[[bash:touch ${marker}]]`);
    await one.getByRole('group', { name: 'Tool approval: Bash' }).waitFor({ timeout: 20_000 });
    await two.getByRole('group', { name: 'Tool approval: Bash' }).waitFor({ timeout: 20_000 });
    expect(await one.getByRole('group', { name: 'Tool approval: Bash' }).textContent()).toContain(`touch ${marker}`);
    expect(fs.existsSync(marker)).toBe(false);

    await one.getByRole('button', { name: 'Allow once' }).click();
    await two.getByRole('group', { name: 'Tool approval: Bash' }).waitFor({ state: 'detached', timeout: 20_000 });
    await one.locator('.bubble.assistant', { hasText: 'The command ran' }).waitFor({ timeout: 20_000 });
    expect(fs.existsSync(marker)).toBe(true);
    expect(errors).toEqual([]);
  });
  it('an agent is picked when making a session and shown with its version; an image pasted and a PDF dropped into the prompt reach the model', async () => {
    const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';
    const agent = await t.app.inject({ method: 'POST', url: '/v1/agents', payload: { name: 'Picture reader', append_system_prompt: 'Look closely.' } });
    expect(agent.statusCode).toBe(201);
    const page = await browser.newPage();
    const errors = watchErrors(page);
    await page.goto(base);
    await page.getByRole('button', { name: 'New session' }).click();
    await page.getByLabel('Session name').fill('With an agent');
    await page.getByLabel('Agent').selectOption({ label: 'Picture reader (v1)' });
    await page.getByRole('button', { name: 'Create' }).click();
    await page.getByRole('heading', { name: 'With an agent' }).waitFor();
    await page.locator('header .badge', { hasText: 'Picture reader · v1' }).waitFor();

    // Paste an image into the prompt box, drop a PDF on the composer.
    await page.getByLabel('Prompt').evaluate((el, png) => {
      const bytes = Uint8Array.from(atob(png), (c) => c.charCodeAt(0));
      const dt = new DataTransfer();
      dt.items.add(new File([bytes], 'dot.png', { type: 'image/png' }));
      el.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
    }, PNG);
    await page.locator('.composer').evaluate((el) => {
      const dt = new DataTransfer();
      dt.items.add(new File(['%PDF-1.4\n%%EOF\n'], 'notes.pdf', { type: 'application/pdf' }));
      el.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
    });
    await page.getByRole('button', { name: 'Remove notes.pdf' }).waitFor();
    expect(await page.getByLabel('Attachments').locator('li').count()).toBe(2);
    await send(page, 'What do you see? [[received]]');
    await page
      .locator('.bubble.assistant', { hasText: /received: text, image image\/png 70 bytes, .*document application\/pdf 15 bytes/ })
      .waitFor({ timeout: 20_000 });
    await page.locator('.bubble.user img.attached').waitFor();
    expect(await page.getByLabel('Attachments').count()).toBe(0);

    // Archived, the agent leaves the picker but its sessions still name it.
    expect((await t.app.inject({ method: 'DELETE', url: `/v1/agents/${agent.json().agent_id}` })).statusCode).toBe(200);
    await page.reload();
    await page.getByRole('link', { name: /With an agent/ }).click();
    await page.getByRole('heading', { name: 'With an agent' }).waitFor();
    await page.locator('header .badge', { hasText: 'Picture reader · v1' }).waitFor();
    expect(errors).toEqual([]);
    await page.close();
  });
  it("the files panel: a dropped file is uploaded and viewed; a turn's changes show as a card with their diff", async () => {
    const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    const errors = watchErrors(page);
    await page.goto(base);
    // In a project of its own: the user's root folder holds what earlier tests left there.
    await newSession(page, 'With files', 'files-panel');
    await page.getByRole('button', { name: 'Files', exact: true }).click();
    const panel = page.getByRole('complementary', { name: 'Files' });
    await panel.getByText('Empty folder').waitFor();
    await panel.evaluate((el) => {
      const dt = new DataTransfer();
      dt.items.add(new File(['hello from the page\n'], 'hello.txt', { type: 'text/plain' }));
      el.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
    });
    await panel.getByRole('button', { name: /hello\.txt/ }).click();
    await page.getByRole('region', { name: 'File hello.txt' }).getByText('hello from the page').waitFor();
    const s = (await (await page.request.get(`${base}/v1/sessions?limit=100`)).json()).sessions.find((x: any) => x.session_name === 'With files');
    expect(fs.readFileSync(path.join(s.cwd, 'hello.txt'), 'utf8')).toBe('hello from the page\n');

    await send(page, `[[bash:echo made by a turn > ${path.join(s.cwd, 'made.txt')}]]`);
    await page.getByRole('group', { name: 'Tool approval: Bash' }).waitFor({ timeout: 20_000 });
    await page.getByRole('button', { name: 'Allow once' }).click();
    const card = page.locator('.changes', { hasText: 'made.txt (created)' });
    await card.waitFor({ timeout: 20_000 });
    await card.getByRole('button', { name: 'Show diffs' }).click();
    await card.locator('pre.diff .add', { hasText: '+made by a turn' }).waitFor();
    await panel.getByRole('button', { name: /made\.txt/ }).waitFor();
    await page.screenshot({ path: path.join(ARTIFACTS, 'files-panel-1440.png') });
    // Undo: what it would change is shown first; "put back and fork" restores the folder and opens the fork.
    await card.getByRole('button', { name: 'Undo…' }).click();
    const undo = card.getByRole('group', { name: "Undo this turn's changes" });
    await undo.getByText('made.txt (deleted)').waitFor();
    expect(fs.existsSync(path.join(s.cwd, 'made.txt'))).toBe(true);
    await undo.getByRole('button', { name: 'Put back and fork the conversation' }).click();
    // The fork opens (the card belonged to the session left behind).
    await page.locator('.item.selected', { hasText: 'With files (before turn 1)' }).waitFor();
    expect(fs.existsSync(path.join(s.cwd, 'made.txt'))).toBe(false);
    expect(fs.readFileSync(path.join(s.cwd, 'hello.txt'), 'utf8')).toBe('hello from the page\n');
    await panel.getByRole('button', { name: /hello\.txt/ }).waitFor();
    await panel.getByRole('button', { name: /made\.txt/ }).waitFor({ state: 'detached' });
    expect(errors).toEqual([]);
    await page.close();
  });
});
