/**
 * The web page as people judge it, in real Chromium against the real server, CLI and offline model:
 * long sessions from the newest message, the prompt at once, a failing model's retries and error
 * card, markdown that runs no injected HTML, tool cards, approvals by keyboard, cost and time, the
 * narrow screen, the small things (empty states, import, archive, fork, rename and delete in place,
 * offline), and an accessibility check (axe-core) of every screen.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, listen, startApp, type TestApp } from '../helper.js';
import { launch, send, watchErrors } from './chromium.js';

const AXE = fs.readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const ARTIFACTS = path.resolve('test-results');

/** Serious and critical accessibility violations of what the page shows now (axe-core). */
async function axe(page: Page, screen: string): Promise<string[]> {
  // Evaluated, not added as a script tag: the page's Content-Security-Policy refuses inline scripts.
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(AXE);
  const found = await page.evaluate(async () => {
    const r = await (window as any).axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v: any) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n: any) => n.target.join(' ')).slice(0, 3) }));
  });
  return found
    .filter((v: any) => v.impact === 'serious' || v.impact === 'critical')
    .map((v: any) => `${screen}: ${v.id} (${v.impact}) at ${v.nodes.join(', ')}`);
}

describe('the web page, as people judge it', () => {
  let t: TestApp;
  let base: string;
  let browser: Browser;
  const retries = process.env.CLAUDE_CODE_MAX_RETRIES;
  beforeAll(async () => {
    // The CLI retries a failing model 10 times over minutes by default: twice here (its own variable).
    process.env.CLAUDE_CODE_MAX_RETRIES = '2';
    t = await startApp({ env: { ALLOWED_PERMISSION_MODES: 'default,acceptEdits,plan' } });
    base = await listen(t.app);
    browser = await launch();
    fs.mkdirSync(ARTIFACTS, { recursive: true });
  });
  afterAll(async () => {
    if (retries === undefined) delete process.env.CLAUDE_CODE_MAX_RETRIES;
    else process.env.CLAUDE_CODE_MAX_RETRIES = retries;
    await browser?.close();
    await t.close();
  });
  const api = async (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, body?: unknown): Promise<any> => {
    const r = await call(t.app, method, url, body);
    expect(r.status, `${method} ${url}: ${JSON.stringify(r.body)}`).toBeLessThan(300);
    return r.body;
  };

  it('empty states, the create form (only the modes the server takes), focus, timestamps, import, archive hidden by default; no serious a11y violation', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const errors = watchErrors(page);
    const violations: string[] = [];
    await page.goto(base);
    await page.getByText('No sessions yet').waitFor();
    violations.push(...(await axe(page, 'empty')));
    await page.getByRole('button', { name: 'New session' }).click();
    const form = page.getByRole('form', { name: 'New session' });
    await expect.poll(() => page.evaluate(() => document.activeElement?.closest('label')?.textContent?.trim())).toMatch(/^Session name/);
    await expect
      .poll(() => form.getByLabel('Permission mode').locator('option').allTextContents())
      .toEqual(['default (ask before changes)', 'acceptEdits', 'plan']);
    violations.push(...(await axe(page, 'create form')));
    await form.getByLabel('Session name').fill('First one');
    await form.getByRole('button', { name: 'Create' }).click();
    await page.getByRole('heading', { name: 'First one' }).waitFor();
    // Focus moves to the prompt; the new session explains itself; the list marks it as current.
    await expect.poll(() => page.evaluate(() => document.activeElement?.getAttribute('aria-label'))).toBe('Prompt');
    await page.getByText('A new session.').waitFor();
    const item = page.getByRole('link', { name: /First one/ });
    expect(await item.getAttribute('aria-current')).toBe('page');
    expect(await item.locator('time').textContent()).toBe('just now');
    violations.push(...(await axe(page, 'new session')));

    // Search with no result says so and offers to clear.
    await page.getByLabel('Search sessions').fill('nothing like this');
    await page.getByText('No sessions match.').waitFor();
    await page.getByRole('button', { name: 'Clear search and filters' }).click();
    await item.waitFor();

    // Import says what it found (a transcript made outside the server, in the user's folder).
    const outside = await api('POST', '/v1/sessions', { session_name: 'tmp', prompt: 'Remember: my favorite color is blue' });
    const file = outside.transcript.path as string;
    const copy = path.join(path.dirname(file), '0b9c7f64-3a4e-4b43-9d7b-2d7f8d3f3c11.jsonl');
    fs.writeFileSync(copy, fs.readFileSync(file, 'utf8').replaceAll(outside.session_id, '0b9c7f64-3a4e-4b43-9d7b-2d7f8d3f3c11'));
    await page.getByRole('button', { name: 'Import' }).click();
    await page.getByText(/Imported 1 session/).waitFor();
    await page.getByRole('button', { name: 'Import' }).click();
    await page.getByText(/Nothing new to import/).waitFor();
    // Opening a session from the list puts the focus in its prompt.
    await page.getByRole('link', { name: /^tmp 1 turn/ }).click();
    await page.getByRole('heading', { name: 'tmp' }).waitFor();
    await expect.poll(() => page.evaluate(() => document.activeElement?.getAttribute('aria-label'))).toBe('Prompt');
    await item.click();
    await page.getByRole('heading', { name: 'First one' }).waitFor();

    // Archived sessions leave the list unless asked for.
    await page.getByRole('button', { name: 'Archive' }).click();
    await item.waitFor({ state: 'detached' });
    await page.getByLabel('Show').selectOption('archived');
    await page.getByRole('link', { name: /First one/ }).waitFor();
    await page.getByRole('button', { name: 'Unarchive' }).click();
    await page.getByLabel('Show').selectOption('active');
    await page.getByRole('link', { name: /First one/ }).waitFor();
    expect(violations).toEqual([]);
    expect(errors).toEqual([]);
    await page.close();
  });

  it('a 300-turn session opens at its newest turn, pages older ones on scroll, follows a new one; it reads a page of messages and the live tail only', async () => {
    const s = await api('POST', '/v1/sessions', { session_name: 'Long one' });
    for (let i = 1; i <= 300; i++) await api('POST', `/v1/sessions/${s.session_id}/turns`, { prompt: `[[say:answer number ${i}]] question ${i}` });
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const errors = watchErrors(page);
    const urls: string[] = [];
    page.on('request', (r) => urls.push(r.url()));
    await page.goto(`${base}/#/s/${s.session_id}`);
    await page.getByRole('heading', { name: 'Long one' }).waitFor();
    await page.locator('.bubble.assistant', { hasText: 'answer number 300' }).waitFor();
    expect(await page.locator('.bubble.assistant', { hasText: /^answer number 1$/ }).count()).toBe(0);
    // What it asked for: the newest page of messages and the events from now on, never the whole log.
    expect(urls.some((u) => u.includes(`/messages?order=desc&limit=50`))).toBe(true);
    const events = urls.filter((u) => u.includes(`/sessions/${s.session_id}/events`));
    expect(events.length).toBeGreaterThan(0);
    for (const u of events) expect(u).toContain('tail=true');
    // Scrolling up reads older pages, and the view stays where it was.
    const before = await page.locator('.bubble.assistant').count();
    await page.locator('.messages').evaluate((el) => (el.scrollTop = 0));
    await page.locator('.bubble.assistant', { hasText: 'answer number 275' }).waitFor();
    expect(await page.locator('.bubble.assistant').count()).toBeGreaterThan(before);
    const top = await page.locator('.messages').evaluate((el) => el.scrollTop);
    expect(top).toBeGreaterThan(100);
    await page.locator('.messages').evaluate((el) => (el.scrollTop = el.scrollHeight));
    // A new turn appears, with its time and tokens.
    await send(page, '[[say:answer number 301]] question 301');
    await page.locator('.bubble.assistant', { hasText: 'answer number 301' }).waitFor({ timeout: 20_000 });
    await expect
      .poll(() => page.getByLabel('Turn details').last().textContent())
      .toMatch(/^\d\d:\d\d · \d+(\.\d)? m?s · [\d,]+ in · [\d,]+ out tokens · \$\d+\.\d{4}$/);
    await expect.poll(() => page.getByLabel('Session totals').textContent()).toMatch(/^\$\d+\.\d{2,4} · [\d,]+ tokens · 301 turns$/);
    expect(errors).toEqual([]);
    await page.close();
  });

  it('the prompt shows at once, then "thinking", then the streamed answer; a failing model shows its retries, then an error card whose Retry sends the prompt again', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const errors = watchErrors(page);
    const s = await api('POST', '/v1/sessions', { session_name: 'Live' });
    await page.goto(`${base}/#/s/${s.session_id}`);
    await page.getByRole('heading', { name: 'Live' }).waitFor();
    const t0 = Date.now();
    await send(page, '[[slow:2500]] [[say:a slow answer]]');
    await page.locator('.bubble.user', { hasText: '[[slow:2500]] [[say:a slow answer]]' }).waitFor({ timeout: 2_000 });
    await page.getByText('Claude is thinking…').waitFor({ timeout: 2_000 });
    expect(Date.now() - t0).toBeLessThan(2_000);
    await page.locator('.bubble.assistant:not(.live)', { hasText: 'a slow answer' }).waitFor({ timeout: 20_000 });
    expect(await page.getByText('Claude is thinking…').count()).toBe(0);
    // Screen readers hear how it went.
    await expect.poll(() => page.locator('.sr-only[role="status"]').textContent()).toBe('Claude answered');

    await send(page, '[[fail:500]] please fail');
    await page.locator('.retry-line', { hasText: /^API error 500, retry [12] of 2 in \d+ s$/ }).waitFor({ timeout: 20_000 });
    const card = page.locator('.error-card', { hasText: 'API Error: 500' });
    await card.waitFor({ timeout: 30_000 });
    // (Seen live first; the turn's code comes with its end.)
    await expect.poll(() => card.locator('strong').textContent()).toBe('Failed: MODEL_ERROR');
    await page.screenshot({ path: path.join(ARTIFACTS, 'error-card-1280.png') });
    await card.getByRole('button', { name: 'Retry' }).click();
    await expect.poll(() => page.locator('.error-card').count(), { timeout: 30_000 }).toBe(2);
    await expect
      .poll(async () => (await api('GET', `/v1/sessions/${s.session_id}/turns?limit=10`)).turns.map((x: any) => [x.prompt, x.status]))
      .toEqual([
        ['[[slow:2500]] [[say:a slow answer]]', 'succeeded'],
        ['[[fail:500]] please fail', 'failed'],
        ['[[fail:500]] please fail', 'failed'],
      ]);
    expect(errors).toEqual([]);
    await page.close();
  });

  it('a session opened while a turn runs shows its prompt once, the earlier turns with their details, then the answer', async () => {
    const s = await api('POST', '/v1/sessions', { session_name: 'Mid-turn', prompt: 'Remember: my favorite color is blue' });
    const running = await api('POST', `/v1/sessions/${s.session_id}/turns?wait=false`, { prompt: '[[slow:2500]] [[say:the answer came]] in the middle' });
    await expect.poll(async () => (await api('GET', `/v1/sessions/${s.session_id}/turns/${running.turn_id}`)).status).toBe('running');
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const errors = watchErrors(page);
    await page.goto(`${base}/#/s/${s.session_id}`);
    await page.getByRole('heading', { name: 'Mid-turn' }).waitFor();
    await page.getByText('Claude is thinking…').waitFor();
    await page.locator('.bubble.user', { hasText: 'Remember: my favorite color is blue' }).waitFor();
    await expect.poll(() => page.getByLabel('Turn details').count()).toBe(1);
    expect(await page.locator('.bubble.user', { hasText: 'in the middle' }).count()).toBe(1);
    await page.locator('.bubble.assistant:not(.live)', { hasText: 'the answer came' }).waitFor({ timeout: 20_000 });
    await expect.poll(() => page.getByLabel('Turn details').count()).toBe(2);
    expect(await page.locator('.bubble.user', { hasText: 'in the middle' }).count()).toBe(1);
    expect(errors).toEqual([]);
    await page.close();
  });

  it('markdown: headings, lists, links, quotes, tables and highlighted code with a copy button; injected HTML does not run', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const errors = watchErrors(page);
    const leaks: string[] = [];
    page.on('request', (r) => r.url().includes('/leak') && leaks.push(r.url()));
    await page.context().grantPermissions(['clipboard-read', 'clipboard-write']);
    const s = await api('POST', '/v1/sessions', { session_name: 'Markdown' });
    const res = await page.goto(`${base}/#/s/${s.session_id}`);
    // The browser itself runs only the page's scripts and loads images only from it.
    expect(res?.headers()['content-security-policy']).toContain("script-src 'self'");
    expect(res?.headers()['content-security-policy']).toContain("img-src 'self' data: blob:");
    await page.getByRole('heading', { name: 'Markdown' }).waitFor();
    const md = [
      '# A title',
      '',
      'Some **bold** text, a [link](https://example.org/x) and `inline code`.',
      '',
      '- one',
      '- two',
      '',
      '> a quote',
      '',
      '| name | value |',
      '| --- | --- |',
      '| a | 1 |',
      '',
      '```typescript',
      'const answer: number = 42;',
      '```',
      '',
      '<img src="x" onerror="window.__pwned = 1"> <script>window.__pwned = 2</script> <a href="javascript:window.__pwned=3">click</a>',
      '',
      `<table background="${base}/leak-background"><tr><td>cell</td></tr></table>`,
      '',
      '<p class="approval-card error">Fake approval</p> <dialog open>Fake dialog</dialog>',
      '',
      `![a picture](${base}/leak-image.png) and [bad link](javascript:window.__pwned=4)`,
    ].join('\n');
    await send(page, `[[say:${md}]]`);
    const answer = page.locator('.bubble.assistant:not(.live)').last();
    await answer.locator('h1', { hasText: 'A title' }).waitFor({ timeout: 20_000 });
    expect(await answer.locator('li').allTextContents()).toEqual(['one', 'two']);
    expect(await answer.locator('blockquote').textContent()).toContain('a quote');
    expect(await answer.locator('table td').allTextContents()).toEqual(['a', '1']);
    const link = answer.getByRole('link', { name: 'link' });
    expect([await link.getAttribute('href'), await link.getAttribute('target'), await link.getAttribute('rel')]).toEqual([
      'https://example.org/x',
      '_blank',
      'noopener noreferrer nofollow',
    ]);
    const code = answer.locator('.code');
    expect(await code.locator('.code-bar span').textContent()).toBe('typescript');
    await code.locator('.hljs-keyword', { hasText: 'const' }).waitFor();
    await code.getByRole('button', { name: 'Copy typescript code' }).click();
    await code.getByRole('button', { name: 'Copied' }).waitFor();
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe('const answer: number = 42;');
    // Nothing injected ran or stayed: no image, no script, no javascript: link.
    await page.waitForTimeout(300);
    expect(await page.evaluate(() => (window as any).__pwned)).toBeUndefined();
    expect(await answer.locator('img, script').count()).toBe(0);
    // HTML in the text is shown as text: no background, no class of the page's own, no dialog.
    expect(await answer.locator('a', { hasText: 'click' }).count()).toBe(0);
    expect(await answer.innerText()).toContain('<img src="x" onerror="window.__pwned = 1">');
    expect(await answer.locator('[background], .approval-card, .error, dialog').count()).toBe(0);
    expect(await answer.getByText('Fake approval').count()).toBe(1);
    // A javascript: link keeps its words and loses its address; an image is a link to it, not loaded.
    expect(await answer.locator('a', { hasText: 'bad link' }).getAttribute('href')).toBeNull();
    expect(await answer.getByRole('link', { name: '[a picture]' }).getAttribute('href')).toBe(`${base}/leak-image.png`);
    expect(leaks).toEqual([]);
    await page.screenshot({ path: path.join(ARTIFACTS, 'markdown-1280.png') });
    expect(errors).toEqual([]);
    await page.close();
  });

  it('tool calls are cards with their output; an approval is answered with the keyboard alone; a denial and a stop are quiet lines; no serious a11y violation', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const errors = watchErrors(page);
    const s = await api('POST', '/v1/sessions', { session_name: 'Tools' });
    await page.goto(`${base}/#/s/${s.session_id}`);
    await page.getByRole('heading', { name: 'Tools' }).waitFor();
    const marker = path.join(s.cwd, 'by-keyboard');
    await send(page, `[[bash:echo hello from bash && touch ${marker}]]`);
    const approval = page.getByRole('group', { name: 'Tool approval: Bash' });
    await approval.waitFor({ timeout: 20_000 });
    // Focus is on the card; A allows once (keys pressed within 400 ms of the focus moving are taken as typing elsewhere).
    const focused = (name: string) => expect.poll(() => page.evaluate(() => document.activeElement?.getAttribute('aria-label'))).toBe(name);
    await focused('Tool approval: Bash');
    await page.waitForTimeout(450);
    expect(await approval.textContent()).toContain(`touch ${marker}`);
    const violations = await axe(page, 'approval');
    await page.keyboard.press('a');
    await approval.waitFor({ state: 'detached', timeout: 20_000 });
    const card = page.locator('.tool-card', { hasText: 'Bash' }).last();
    await card.locator('.tool-state', { hasText: 'done' }).waitFor({ timeout: 20_000 });
    expect(await card.locator('.tool-summary').textContent()).toBe(`echo hello from bash && touch ${marker}`);
    expect(await card.locator('.tool-output').innerText()).toContain('hello from bash');
    expect(await card.locator('.tool-output').isVisible()).toBe(true);
    expect(fs.existsSync(marker)).toBe(true);
    // The tool's result is not a bubble of the person's.
    expect(await page.locator('.bubble.user').count()).toBe(1);
    await page.locator('.bubble.assistant', { hasText: 'The command ran' }).waitFor({ timeout: 20_000 });
    violations.push(...(await axe(page, 'tool card')));

    // D denies: a quiet line says so (after a reload too).
    await send(page, '[[bash:rm -rf /tmp/nothing-here]]');
    await approval.waitFor({ timeout: 20_000 });
    await focused('Tool approval: Bash');
    await page.waitForTimeout(450);
    await page.keyboard.press('d');
    await page.locator('.status-line', { hasText: 'You denied Bash' }).waitFor({ timeout: 20_000 });
    await page.locator('.bubble.assistant', { hasText: 'refused or failed' }).waitFor({ timeout: 20_000 });
    // A Write shows what it writes, in its approval and in its card; S allows it for the session.
    await send(page, `[[tool:Write {"file_path":"${path.join(s.cwd, 'notes.md')}","content":"line one\\nline two\\n"}]]`);
    const writeApproval = page.getByRole('group', { name: 'Tool approval: Write' });
    await writeApproval.waitFor({ timeout: 20_000 });
    expect(await writeApproval.locator('pre.diff .add').allTextContents()).toEqual(['+line one\n', '+line two\n']);
    await focused('Tool approval: Write');
    await page.waitForTimeout(450);
    await page.keyboard.press('s');
    await page.locator('.tool-card', { hasText: 'notes.md' }).locator('.tool-state', { hasText: 'done' }).waitFor({ timeout: 20_000 });
    expect(fs.readFileSync(path.join(s.cwd, 'notes.md'), 'utf8')).toBe('line one\nline two\n');
    // A stopped turn is a quiet line too.
    await send(page, '[[slow:20000]] a long one');
    await page.getByText('Claude is thinking…').waitFor({ timeout: 20_000 });
    await page.getByRole('button', { name: 'Stop', exact: true }).click();
    await page.locator('.status-line', { hasText: 'Stopped by you' }).waitFor({ timeout: 20_000 });
    await page.reload();
    await page.locator('.status-line', { hasText: 'You denied Bash' }).waitFor({ timeout: 20_000 });
    await page.locator('.status-line', { hasText: 'Stopped by you' }).waitFor();
    const write = page.locator('.tool-card', { hasText: 'notes.md' });
    expect(await write.locator('pre.diff .add').allTextContents()).toEqual(['+line one\n', '+line two\n']);
    expect(await page.locator('.bubble.user', { hasText: 'Request interrupted' }).count()).toBe(0);
    await page.screenshot({ path: path.join(ARTIFACTS, 'tools-1280.png') });
    expect(violations).toEqual([]);
    expect(errors).toEqual([]);
    await page.close();
  });

  it('rename, fork and delete happen in the page (no browser prompt); the server going away shows an offline line', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const errors = watchErrors(page);
    const s = await api('POST', '/v1/sessions', { session_name: 'Old name', prompt: 'Remember: my favorite color is blue' });
    await page.goto(`${base}/#/s/${s.session_id}`);
    await page.getByRole('heading', { name: 'Old name' }).waitFor();
    await page.getByRole('button', { name: 'Rename' }).click();
    await page.getByRole('textbox', { name: 'Session name' }).fill('New name');
    await page.getByRole('textbox', { name: 'Session name' }).press('Enter');
    await page.getByRole('heading', { name: 'New name' }).waitFor();
    await page.getByRole('link', { name: /New name/ }).waitFor();
    expect((await api('GET', `/v1/sessions/${s.session_id}`)).session_name).toBe('New name');

    await page.getByRole('button', { name: 'Fork' }).click();
    await page.getByRole('heading', { name: 'New name (fork)' }).waitFor();
    await page.locator('.bubble.user', { hasText: 'Remember: my favorite color is blue' }).waitFor();
    expect(page.url()).not.toContain(s.session_id);

    await page.getByRole('button', { name: 'Delete…' }).click();
    const confirm = page.getByRole('group', { name: 'Delete this session?' });
    await confirm.getByRole('button', { name: 'Keep' }).click();
    await page.getByRole('button', { name: 'Delete…' }).click();
    await confirm.getByRole('button', { name: 'Delete' }).click();
    await page.getByRole('link', { name: /New name \(fork\)/ }).waitFor({ state: 'detached' });
    await page.getByRole('link', { name: /^New name/ }).waitFor();

    // The server unreachable: a line says so, and goes when it is back.
    await page.route('**/v1/**', (r) => r.abort('connectionrefused'));
    await page.getByLabel('Search sessions').fill('x');
    await page.getByText('Offline: the server cannot be reached').waitFor();
    await page.unroute('**/v1/**');
    await page.getByLabel('Search sessions').fill('');
    await page.getByText('Offline: the server cannot be reached').waitFor({ state: 'detached' });
    expect(errors).toEqual([]);
    await page.close();
  });

  it('at 375 px the list is a drawer and the header and composer stay in view; no serious a11y violation', async () => {
    const s = await api('POST', '/v1/sessions', { session_name: 'Phone' });
    for (let i = 1; i <= 12; i++) await api('POST', `/v1/sessions/${s.session_id}/turns`, { prompt: `[[words:40]] turn ${i}` });
    const page = await browser.newPage({ viewport: { width: 375, height: 700 }, isMobile: true, hasTouch: true, reducedMotion: 'reduce' });
    const errors = watchErrors(page);
    await page.goto(`${base}/#/s/${s.session_id}`);
    await page.getByRole('heading', { name: 'Phone' }).waitFor();
    await page.locator('.bubble.assistant').last().waitFor();
    const inView = async (selector: string) => {
      const box = await page.locator(selector).first().boundingBox();
      return box !== null && box.y >= 0 && box.y + box.height <= 700 + 1;
    };
    expect(await inView('textarea[aria-label="Prompt"]')).toBe(true);
    expect(await inView('.topbar')).toBe(true);
    // The messages scroll, not the page: after scrolling up the composer and header are still there.
    await page.locator('.messages').evaluate((el) => (el.scrollTop = 0));
    expect(await inView('textarea[aria-label="Prompt"]')).toBe(true);
    expect(await inView('.topbar')).toBe(true);
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375);
    // The list is hidden until the menu opens it, and closes when a session is chosen.
    expect(await page.getByRole('link', { name: /Phone/ }).isVisible()).toBe(false);
    const violations = await axe(page, '375 conversation');
    await page.getByRole('button', { name: 'Sessions' }).click();
    await page.getByRole('link', { name: /Phone/ }).waitFor({ state: 'visible' });
    // Focus goes into the drawer; Escape closes it and gives the focus back to the menu button.
    expect(await page.evaluate(() => document.activeElement?.closest('aside')?.getAttribute('aria-label'))).toBe('Sessions');
    await page.keyboard.press('Escape');
    await page.getByRole('link', { name: /Phone/ }).waitFor({ state: 'hidden' });
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Sessions');
    await page.getByRole('button', { name: 'Sessions' }).click();
    await page.getByRole('link', { name: /Phone/ }).waitFor({ state: 'visible' });
    violations.push(...(await axe(page, '375 drawer')));
    await page.screenshot({ path: path.join(ARTIFACTS, 'drawer-375.png') });
    // Choosing the session already open closes the drawer and puts the focus in its prompt.
    await page.getByRole('link', { name: /Phone/ }).click();
    await page.getByRole('link', { name: /Phone/ }).waitFor({ state: 'hidden' });
    expect(await page.evaluate(() => document.activeElement?.getAttribute('aria-label'))).toBe('Prompt');
    await page.screenshot({ path: path.join(ARTIFACTS, 'conversation-375.png') });
    expect(violations).toEqual([]);
    expect(errors).toEqual([]);
    await page.close();
  });

  it('first contentful paint under 500 ms; the sign-in screen has no serious a11y violation', async () => {
    const keyed = await startApp({ env: { API_KEYS: 'ann:key-ann-0123456789' } });
    try {
      const url = await listen(keyed.app);
      const page = await browser.newPage();
      await page.goto(url);
      await page.getByLabel('API key').waitFor();
      expect(await axe(page, 'sign-in')).toEqual([]);
      await page.close();
    } finally {
      await keyed.close();
    }
    const fcps: number[] = [];
    for (let i = 0; i < 3; i++) {
      const page = await browser.newPage();
      await page.goto(base);
      await page.getByRole('button', { name: 'New session' }).waitFor();
      await page.waitForFunction(() => performance.getEntriesByName('first-contentful-paint').length > 0);
      fcps.push(await page.evaluate(() => performance.getEntriesByName('first-contentful-paint')[0]!.startTime));
      await page.close();
    }
    console.log(`web page: first contentful paint ${fcps.map((x) => x.toFixed(0)).join(', ')} ms`);
    expect(Math.min(...fcps)).toBeLessThan(500);
  });
});
