// The browser half of `bbit login`: $BROWSER runs this with the sign-in URL.
// It opens the URL in headless Chromium, fills in the form, submits it and
// waits for SIGNIN_EXPECT (default "Signed in successfully": the page of the
// CLI's listener), then takes a screenshot.
//   node signin.mjs URL
//   env: SIGNIN_USER (alice), SIGNIN_PASSWORD, SIGNIN_EXPECT, SIGNIN_SCREENSHOT (a .png
//   path: the page reached), SIGNIN_FORM_SCREENSHOT (the filled-in form)
import { openBrowser } from './browser.mjs';

const url = process.argv[2];
const user = process.env.SIGNIN_USER || 'alice';
const password = process.env.SIGNIN_PASSWORD || '';
const expect = process.env.SIGNIN_EXPECT || 'Signed in successfully';
const shot = process.env.SIGNIN_SCREENSHOT;

if (!url) {
  console.error('usage: node signin.mjs URL');
  process.exit(2);
}
const b = await openBrowser();
let code = 0;
try {
  await b.page.goto(url);
  const title = await b.page.title();
  if (!title.startsWith('Sign in')) throw new Error(`not the sign-in page: "${title}"`);
  await b.page.fill('#username', user);
  await b.page.fill('#password', password);
  if (process.env.SIGNIN_FORM_SCREENSHOT) await b.page.screenshot({ path: process.env.SIGNIN_FORM_SCREENSHOT });
  await b.page.click('#submit');
  await b.page.getByText(expect).first().waitFor();
  console.log(`signin: saw "${expect}" at ${b.page.url().replace(/token=[^&]*/, 'token=REDACTED')}`);
  if (b.events.cspViolations.length) throw new Error(`CSP violations: ${b.events.cspViolations.join('; ')}`);
} catch (e) {
  console.error(`signin: ${e.message}`);
  code = 1;
} finally {
  if (shot) await b.page.screenshot({ path: shot, fullPage: true }).catch(() => {});
  await b.close();
}
process.exit(code);
