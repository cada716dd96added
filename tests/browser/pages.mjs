// The server's web pages in headless Chromium (run by tests/e2e/test_web.sh
// after it exported the getting-started workspace and demo/xss):
//   node pages.mjs URL
//   env: SIGNIN_USER (alice), SIGNIN_PASSWORD, SCREENSHOTS (a directory), XSS (the hostile log message)
// Prints "ok - ..." per check and "pages: N checks passed"; exits 1 on the first failure.
import { readFileSync } from 'node:fs';
import { check, checksPassed, openBrowser } from './browser.mjs';

const base = process.argv[2];
const user = process.env.SIGNIN_USER || 'alice';
const password = process.env.SIGNIN_PASSWORD || '';
const shots = process.env.SCREENSHOTS || '.';
const xss = process.env.XSS || '<script>alert(1)</script><img src=x onerror=alert(2)>';
const weirdFile = '<img src=x onerror=alert(3)>.js';

const b = await openBrowser();
const page = b.page;
const shot = (name) => page.screenshot({ path: `${shots}/web-${name}.png`, fullPage: true });
const texts = (selector) => page.locator(selector).allInnerTexts();

async function run() {
  // anonymous
  let resp = await page.goto(`${base}/`);
  check(resp.status() === 200, 'GET / answers 200');
  check(resp.headers()['content-security-policy']?.includes("default-src 'none'"), 'the page has a strict CSP');
  check(JSON.stringify(await texts('a.scope')) === JSON.stringify(['my-org.my-scope']), 'anonymous: only the public scope is listed');
  check(await page.locator('#signin').isVisible(), 'anonymous: a sign-in link');
  await shot('home-anonymous');
  resp = await page.goto(`${base}/my-org.ui`);
  check(resp.status() === 404, 'anonymous: the private scope is 404');
  check((await page.locator('#message').innerText()).includes('does not exist on this server or you may not read it'), 'the 404 page says why');
  await shot('not-found');

  // sign in on the web
  await page.goto(`${base}/`);
  await page.click('#signin');
  await page.waitForURL(`${base}/login`);
  await page.fill('#username', user);
  await page.fill('#password', password);
  await shot('login');
  await page.click('#submit');
  await page.waitForURL(`${base}/`);
  check((await page.locator('#viewer').innerText()) === user, `signed in: the header names ${user}`);
  const scopes = await texts('a.scope');
  check(scopes.includes('my-org.ui') && scopes.includes('my-org.my-scope'), 'signed in: my-org.ui and my-org.my-scope are listed');
  check(!scopes.includes('other.scope'), 'signed in: other.scope (no grant) is not listed');
  await shot('home');

  // a scope
  await page.click('a.scope:text-is("my-org.ui")');
  await page.waitForURL(`${base}/my-org.ui`);
  check(JSON.stringify(await texts('a.component')) === JSON.stringify(['ui/button', 'ui/theme']), 'my-org.ui lists ui/button and ui/theme');
  check((await page.locator('#components').innerText()).includes('0.0.2'), 'the latest version of ui/button is shown');
  await shot('scope');

  // a component
  await page.click('a.component:text-is("ui/button")');
  await page.waitForURL(`${base}/my-org.ui/ui/button`);
  check((await page.locator('#component').innerText()).replace(/\s+/g, ' ') === 'ui/button @0.0.2', 'the component page shows the head version');
  const rows = await texts('#versions tbody tr');
  check(rows.length === 2 && rows[0].includes('0.0.2') && rows[0].includes('second version') && rows[1].includes('0.0.1') && rows[1].includes('first version'),
    'versions newest first, with their log messages');
  check((await texts('#files a.file')).includes('index.js'), 'the files are listed');
  check((await texts('#artifacts a.artifact')).includes('package.tgz'), 'the artifacts are listed');
  await shot('component');

  await page.click('a.dependency:text-is("ui/theme")');
  await page.waitForURL(`${base}/my-org.ui/ui/theme?v=0.0.1`);
  check((await page.locator('#component').innerText()).startsWith('ui/theme'), 'the dependency link leads to ui/theme');
  await page.goBack();

  await page.click('a.version:text-is("0.0.1")');
  check((await page.locator('#log-message').innerText()) === 'first version', '?v=0.0.1 selects the older version');
  await page.goBack();

  await page.click('a.file:text-is("index.js")');
  await page.waitForURL(/\/my-org\.ui\/ui\/button\/-\/file\/index\.js\?v=0\.0\.2$/);
  const source = await page.locator('#content').innerText();
  check(source.includes('return `<button style="color: ${theme.primary}">${label}</button>`;'), 'the file view shows the source as text');
  check(await page.locator('#content button').count() === 0, 'the source is not rendered as markup');
  await shot('file');
  await page.goBack();

  const [download] = await Promise.all([page.waitForEvent('download'), page.click('a.artifact:text-is("package.tgz")')]);
  check(download.suggestedFilename() === 'package.tgz', 'the artifact downloads as package.tgz');
  const bytes = readFileSync(await download.path());
  check(bytes.length > 20 && bytes[0] === 0x1f && bytes[1] === 0x8b, `the download is a gzip file (${bytes.length} bytes)`);

  // hostile client data
  resp = await page.goto(`${base}/my-org.my-scope/demo/xss`);
  check(resp.status() === 200, 'the demo/xss page answers 200');
  await page.waitForTimeout(500);
  const message = page.locator('#log-message');
  check((await message.innerText()) === xss && (await message.isVisible()), 'the XSS log message is shown literally');
  check(await page.getByText(xss).first().isVisible(), 'the payload text is visible in the versions table too');
  check(await page.evaluate(() => document.querySelectorAll('script, img, i').length) === 0, 'no element was injected');
  check((await page.locator('#selected').innerText()).includes('<i>mallory</i>'), 'the hostile author is shown literally');
  await shot('xss');
  await page.click(`a.file:text-is("${weirdFile}")`);
  check((await page.locator('#path').innerText()) === weirdFile, 'a hostile file name is shown literally');
  await page.waitForTimeout(300);
  check(b.events.dialogs.length === 0, `no dialog fired (${b.events.dialogs.join(', ')})`);

  // sign out
  await page.goto(`${base}/`);
  await page.click('#signout');
  await page.waitForURL(`${base}/`);
  check(await page.locator('#signin').isVisible(), 'signed out: the sign-in link is back');
  check(!(await texts('a.scope')).includes('my-org.ui'), 'signed out: the private scope is gone');
  await shot('signed-out');

  check(b.events.cspViolations.length === 0, `no CSP violation (${b.events.cspViolations.join('; ')})`);
  check(b.events.pageErrors.length === 0, `no page error (${b.events.pageErrors.join('; ')})`);
}

let code = 0;
try {
  await run();
  console.log(`pages: ${checksPassed()} checks passed`);
} catch (e) {
  console.error(`pages: ${e.message} (at ${page.url()})`);
  await shot('failure').catch(() => {});
  code = 1;
} finally {
  await b.close();
}
process.exit(code);
