// Drives tapedeck's web page in headless Chromium (playwright-core with
// Debian's chromium) for test/e2e/web_test.go. Each step prints a JSON
// line; a failure prints {"type":"FAIL","error":...} and exits 1.
// Env: BASE_URL, WEB_USER, WEB_PASS, CALLER (the caller's number), SHOTS
// (screenshot directory), CHROMIUM (default /usr/bin/chromium),
// TIMEOUT_MS.
'use strict';
const { chromium } = require('playwright-core');
const fs = require('fs');
const path = require('path');

const base = process.env.BASE_URL;
const T = Number(process.env.TIMEOUT_MS || 30000);
const shots = process.env.SHOTS;
const say = (type, extra = {}) => console.log(JSON.stringify({ type, ...extra }));
const check = (ok, what) => { if (!ok) throw new Error(what); };

(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--autoplay-policy=no-user-gesture-required', '--no-sandbox'],
  });
  try {
    const ctx = await browser.newContext({ acceptDownloads: true, timezoneId: 'America/New_York', viewport: { width: 1100, height: 800 } });
    ctx.setDefaultTimeout(T);
    const page = await ctx.newPage();
    const shot = (name, p = page) => shots && p.screenshot({ path: path.join(shots, 'web-' + name + '.png') });

    // Signed out: a page redirects to the sign-in page, data is 401.
    await page.goto(base + '/recordings');
    check(page.url().startsWith(base + '/signin'), 'not redirected to sign in: ' + page.url());
    const anon = await page.evaluate(async () => (await fetch('/live/calls')).status);
    check(anon === 401, 'data without a session: ' + anon);
    await page.fill('#user', process.env.WEB_USER);
    await page.fill('#password', 'wrong');
    await page.click('button[type=submit]');
    await page.waitForSelector('.error[role=alert]');
    await shot('signin');
    await page.fill('#password', process.env.WEB_PASS);
    await Promise.all([page.waitForURL(base + '/recordings'), page.click('button[type=submit]')]);
    await page.waitForSelector('.empty');
    check((await page.textContent('.empty')).includes('first recording'), 'no empty state');
    say('SIGNED_IN');

    // A second tab on the table: the recording must appear there without a reload.
    const table = await ctx.newPage();
    await table.goto(base + '/recordings');
    await table.evaluate(() => { window.__notReloaded = true; });

    // The live page: the call (made by the Go test now) appears.
    await page.goto(base + '/live');
    await page.waitForSelector('#live-status:text("Updated live.")');
    say('LIVE_READY');
    const rec = page.locator('.call .rec[data-state=recording]');
    await rec.waitFor();
    const call = await page.textContent('.call h2');
    check(call.includes(process.env.CALLER), 'live call shows ' + call);
    const recName = await rec.getAttribute('data-recording');
    await shot('live');
    say('LIVE_CALL', { call, recording: recName });

    // Pause from the page (keyboard: focus the button, press Enter), then resume.
    await page.focus('.rec button[data-action=pause]');
    await page.keyboard.press('Enter');
    await page.waitForSelector('.rec[data-state=paused]');
    say('PAUSED');
    // Paused while the call's clock (on the page) moves on two seconds.
    const secs = () => page.evaluate(() => {
      const [m, s] = document.querySelector('.call .dur').textContent.split(':').map(Number);
      return m * 60 + s;
    });
    const pausedAt = await secs();
    await page.waitForFunction((t0) => {
      const [m, s] = document.querySelector('.call .dur').textContent.split(':').map(Number);
      return m * 60 + s >= t0 + 2;
    }, pausedAt, { polling: 100 }).catch(async (e) => {
      throw new Error(e.message + '\npaused at ' + pausedAt + '; live page: ' + await page.innerHTML('main'));
    });
    await page.click('.rec button[data-action=resume]');
    await page.waitForSelector('.rec[data-state=recording]');
    say('RESUMED');
    await page.click('.rec button[data-action=stop]');
    await page.waitForSelector('.rec', { state: 'detached' });
    say('STOPPED', { recording: recName });

    // The table in the other tab gets the row without reloading.
    await table.waitForSelector('tr[data-sid]');
    check(await table.evaluate(() => window.__notReloaded === true), 'the table tab reloaded');
    const sid = await table.getAttribute('tr[data-sid]', 'data-sid');
    // Its completeness, from the catalog: recorded over call time (the
    // pause left out) and the loss, and the one pause.
    const completeness = await table.textContent(`tr[data-sid="${sid}"] td[data-label=Completeness]`);
    check(/\d+ % recorded · \d+\.\d % lost/.test(completeness) && completeness.includes('1 pause'), 'completeness column: ' + completeness);
    say('IN_TABLE', { sid, completeness: completeness.trim() });
    await table.close();

    // Filter by number: the caller's finds it, another number does not,
    // and a bad value gets a message next to the field.
    await page.goto(base + '/recordings');
    await page.fill('#f-from', process.env.CALLER);
    await Promise.all([page.waitForURL(/from=/), page.click('.filters button[type=submit]')]);
    check(await page.isVisible(`tr[data-sid="${sid}"]`), 'filter by caller lost the row');
    await shot('recordings');
    await page.fill('#f-from', '5550000');
    await Promise.all([page.waitForURL(/from=5550000/), page.click('.filters button[type=submit]')]);
    check(!(await page.isVisible('tr[data-sid]')), 'filter by another number shows rows');
    await page.fill('#f-from', '<b>x');
    await Promise.all([page.waitForURL(/from=%3Cb/), page.click('.filters button[type=submit]')]);
    check((await page.textContent('#e-from')).includes('A number'), 'no message next to the field');
    say('FILTERED');

    // Phone-sized.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(base + '/recordings');
    await shot('recordings-phone');
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check(overflow <= 0, 'horizontal scroll on a phone: ' + overflow + 'px');
    await page.setViewportSize({ width: 1100, height: 800 });

    // The recording: times in the viewer's zone, play, waveform, paused interval.
    await page.click(`tr[data-sid="${sid}"] a`);
    await page.waitForURL(base + '/recordings/' + sid);
    // What the player and the page hold, for a failure's message: which
    // of the catalog row, the waveform's fetch and the media pipeline did
    // not get there.
    const player = async () => JSON.stringify(await page.evaluate(() => {
      const a = document.getElementById('audio'), w = document.getElementById('wave');
      return {
        audio: a && { readyState: a.readyState, networkState: a.networkState, error: a.error && a.error.code,
          paused: a.paused, currentTime: a.currentTime, duration: a.duration },
        wave: w && w.dataset.drawn, note: document.querySelector('main .note')?.textContent,
      };
    }));
    const explain = async (e) => { throw new Error(e.message + '\nplayer: ' + await player()); };
    const dt = await page.getAttribute('dl time', 'datetime');
    const shown = await page.textContent('dl time');
    check(shown !== dt && shown.length > 5, 'time not formatted for the viewer: ' + shown);
    await page.waitForSelector('#paused li').catch(explain);
    // The paused interval and the quality figures come from the catalog.
    const pausedText = await page.textContent('#paused li');
    check(pausedText.includes('skip, by web:'), 'paused interval without its behaviour and who asked: ' + pausedText);
    const packets = await page.textContent('#q-packets');
    const m = /(\d+) received of (\d+) expected; (\d+) lost/.exec(packets);
    check(m && Number(m[2]) > 0 && Number(m[1]) + Number(m[3]) === Number(m[2]), 'quality packets: ' + packets);
    const catalogSecs = Number((await page.textContent('dl dd:nth-of-type(4)')).replace(' s', ''));
    await page.waitForFunction(() => document.getElementById('wave')?.dataset.drawn === 'true').catch(explain);
    const inked = await page.evaluate(() => {
      const c = document.getElementById('wave');
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
      return n;
    });
    check(inked > 1000, 'waveform not drawn: ' + inked + ' pixels');
    const played = await page.evaluate((t) => new Promise((resolve, reject) => {
      const a = document.getElementById('audio');
      const late = setTimeout(() => reject(new Error('no playing event in ' + t + ' ms')), t);
      a.addEventListener('playing', () => { clearTimeout(late); resolve({ duration: a.duration }); }, { once: true });
      a.addEventListener('error', () => reject(new Error('audio error ' + (a.error && a.error.code))), { once: true });
      a.play().catch(reject);
    }), T).catch(explain);
    check(Math.abs(played.duration - catalogSecs) < 0.25, `audio duration ${played.duration} vs catalog ${catalogSecs}`);
    await page.waitForFunction(() => document.getElementById('audio').currentTime > 0.2).catch(explain);
    await shot('recording');
    say('PLAYED', { duration: played.duration, catalog: catalogSecs, inked });

    // Download in its format.
    const [dl] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
    const file = await dl.path();
    const head = fs.readFileSync(file).subarray(0, 4).toString();
    check(dl.suggestedFilename() === sid + '.wav' && head === 'RIFF', `download ${dl.suggestedFilename()} ${head}`);
    // And as MP3, when this server has an encoder.
    let mp3 = 0;
    if (await page.isVisible('#download-mp3')) {
      const [m] = await Promise.all([page.waitForEvent('download'), page.click('#download-mp3')]);
      const b = fs.readFileSync(await m.path());
      check(m.suggestedFilename() === sid + '.mp3' && (b.subarray(0, 3).toString() === 'ID3' || (b[0] === 0xff && (b[1] & 0xe0) === 0xe0)), 'mp3 download ' + m.suggestedFilename());
      mp3 = b.length;
    }
    say('DOWNLOADED', { bytes: fs.statSync(file).size, mp3 });

    // Delete (confirmed), then gone.
    page.once('dialog', (d) => d.accept());
    await Promise.all([page.waitForURL(/\/recordings\?deleted=/), page.click('form.delete button')]);
    check(!(await page.isVisible(`tr[data-sid="${sid}"]`)), 'deleted recording still listed');
    say('DELETED');

    // Sign out: the session no longer opens anything.
    await Promise.all([page.waitForURL(/\/signin/), page.click('form.signout button')]);
    const after = await page.evaluate(async () => (await fetch('/live/calls')).status);
    check(after === 401, 'data after sign-out: ' + after);
    say('SIGNED_OUT');
  } finally {
    await browser.close();
  }
})().catch((e) => { say('FAIL', { error: String(e && e.stack || e) }); process.exit(1); });
