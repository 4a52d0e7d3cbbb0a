// Two headless Chromium pages chat through a real tincan server binary; the
// server restarts and both pages reconnect by themselves. Then the same over
// https and wss (--tls-cert, --tls-key), with a certificate made for the test
// that the browser trusts by its key (--ignore-certificate-errors-spki-list).
//
//   TINCAN_BIN=target/release/tincan-smol node --test web/e2e/chat.test.mjs
//
// Every wait is for a condition, bounded; the screenshot lands in
// web/e2e/artifacts/.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createHash, createPublicKey } from 'node:crypto';
import { connect, createServer } from 'node:net';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const bin = resolve(process.env.TINCAN_BIN ?? join(here, '../../target/release/tincan-smol'));
const artifacts = join(here, 'artifacts');
const WAIT = 20_000;

function freePort() {
  return new Promise((ok, fail) => {
    const probe = createServer();
    probe.once('error', fail);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => ok(port));
    });
  });
}

/** Starts the server and resolves once it logs that it listens. */
function startServer(port, args = []) {
  const child = spawn(bin, ['--ping-interval', '5', ...args, String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.log = '';
  const ready = new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`no listening line in ${WAIT} ms:\n${child.log}`)), WAIT);
    const onData = (data) => {
      child.log += data;
      if (child.log.includes(`listening on port ${port}`)) {
        clearTimeout(timer);
        ok(child);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => fail(new Error(`server exited with ${code}:\n${child.log}`)));
  });
  return ready;
}

function stopServer(child) {
  return new Promise((ok) => {
    if (child.exitCode !== null) return ok(child.exitCode);
    child.once('exit', (code) => ok(code));
    child.kill('SIGTERM');
  });
}

async function openChat(browser, port, room, nick, origin = `http://127.0.0.1:${port}`) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on('dialog', (dialog) => {
    throw new Error(`a dialog opened: ${dialog.message()}`);
  });
  await page.goto(`${origin}/${room}`);
  await page.waitForFunction(() => document.getElementById('status').dataset.state === 'open', null, { timeout: WAIT });
  // Set the nickname with the keyboard only.
  await page.focus('#nick');
  await page.keyboard.type(nick);
  await page.keyboard.press('Enter');
  await page.locator('#people li', { hasText: nick }).waitFor({ timeout: WAIT });
  return page;
}

async function say(page, text) {
  await page.focus('#message');
  await page.keyboard.type(text);
  await page.keyboard.press('Enter');
}

const line = (page, text) => page.locator('#messages li', { hasText: text });

function launch(extraArgs = []) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync', ...extraArgs],
  });
}

test('two pages chat, see presence, and reconnect after a server restart', { timeout: 120_000 }, async () => {
  const port = await freePort();
  let server = await startServer(port);
  const browser = await launch();
  try {
    const alice = await openChat(browser, port, 'e2e', 'alice');
    const joins = line(alice, / joined$/);
    const joinsBefore = await joins.count();
    const bob = await openChat(browser, port, 'e2e', 'bob');

    // Presence: alice sees bob arrive (as a guest, then renamed), and both
    // lists show both.
    await joins.nth(joinsBefore).waitFor({ timeout: WAIT });
    await line(alice, 'is now known as bob').waitFor({ timeout: WAIT });
    await alice.locator('#people li', { hasText: 'bob' }).waitFor({ timeout: WAIT });
    await bob.locator('#people li', { hasText: 'alice' }).waitFor({ timeout: WAIT });

    await say(alice, 'hello from alice');
    await line(bob, 'hello from alice').waitFor({ timeout: WAIT });
    await say(bob, 'hi alice');
    await line(alice, 'hi alice').waitFor({ timeout: WAIT });

    // Markup from the network is text, never HTML.
    const attack = '<img src=x onerror=alert(1)>';
    await say(bob, attack);
    await line(alice, attack).waitFor({ timeout: WAIT });
    assert.equal(await alice.locator('#messages img').count(), 0);

    // A smoke test of the wasm codec in the page, not of the server: the
    // browser does not expose its frames, so the inspector re-encodes each
    // text message with tincan-web (sent ones masked with a key the page
    // picks) and decodes it back. What this checks is that the wasm codec
    // loaded and round-trips: the payload shown must be the message's own
    // bytes, unmasked again, with its length, FIN and opcode.
    const hex = (text) => [...new TextEncoder().encode(text)].map((b) => b.toString(16).padStart(2, '0')).join(' ');
    await alice.locator('#inspector summary').click();
    const sent = alice.locator('#frames tr', { hasText: '→' }).first();
    await sent.waitFor({ timeout: WAIT });
    const cells = await sent.locator('td').allTextContents();
    assert.equal(cells[1], '1', `FIN: ${cells}`);
    assert.match(cells[2], /text/i, `opcode: ${cells}`);
    assert.match(cells[3], /^[0-9a-f]{8}$/, `mask: ${cells}`);
    assert.equal(Number(cells[4]), 'hello from alice'.length, `length: ${cells}`);
    assert.equal(cells[5], hex('hello from alice'), `payload: ${cells}`);
    // What the wire decided: Chromium offered permessage-deflate and the
    // server accepted it, with the parameters it always answers (RFC 7692).
    const extensions = await alice.locator('#extensions').textContent();
    assert.match(extensions, /^permessage-deflate/, `negotiated: ${extensions}`);
    assert.match(extensions, /server_no_context_takeover/, `negotiated: ${extensions}`);
    // The last message alice received is bob's markup in the server's JSON
    // envelope, over 64 bytes: re-encoded as a compressed server frame,
    // shorter than the text.
    const received = await alice.locator('#frames tr', { hasText: '←' }).first().locator('td').allTextContents();
    assert.equal(received[3], '-', `decoded as a server frame: ${received}`);
    assert.equal(received[2], 'text (compressed)', `opcode: ${received}`);
    const envelope = JSON.stringify({ type: 'message', room: 'e2e', from: 'bob', text: attack, ts: Date.now() });
    assert.ok(Number(received[4]) < envelope.length, `length: ${received} (the text: ${envelope.length})`);

    mkdirSync(artifacts, { recursive: true });
    await alice.screenshot({ path: join(artifacts, 'chat.png'), fullPage: true });

    // Restart the server: both pages notice, then reconnect on their own.
    assert.equal(await stopServer(server), 0, 'SIGTERM exits 0');
    for (const page of [alice, bob]) {
      await page.waitForFunction(() => document.getElementById('status').dataset.state !== 'open', null, { timeout: WAIT });
    }
    server = await startServer(port);
    for (const page of [alice, bob]) {
      await page.waitForFunction(() => document.getElementById('status').dataset.state === 'open', null, { timeout: 30_000 });
    }
    // Only the new server can produce these: each page's second welcome
    // (a welcome empties the people list), then alice in bob's list again.
    for (const page of [alice, bob]) {
      await line(page, /Welcome to #e2e, guest-/).nth(1).waitFor({ timeout: WAIT });
    }
    await bob.locator('#people li', { hasText: 'alice' }).waitFor({ timeout: WAIT });
    await say(alice, 'after the restart');
    await line(bob, 'after the restart').waitFor({ timeout: WAIT });
    await alice.screenshot({ path: join(artifacts, 'after-restart.png'), fullPage: true });
  } finally {
    await browser.close();
    await stopServer(server);
  }
});

/** A self-signed certificate for localhost and 127.0.0.1, made for this run
 * (openssl, P-256), and the base64 SHA-256 of its public key, which is how
 * Chromium is told to trust it. */
function makeCertificate(dir) {
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
    '-nodes', '-days', '1', '-subj', '/CN=localhost', '-keyout', key, '-out', cert,
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { stdio: 'ignore' });
  const spki = createPublicKey(readFileSync(key)).export({ type: 'spki', format: 'der' });
  return { cert, key, spki: createHash('sha256').update(spki).digest('base64') };
}

test('two pages chat over https and wss', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tincan-e2e-tls-'));
  const { cert, key, spki } = makeCertificate(dir);
  const port = await freePort();
  const server = await startServer(port, ['--tls-cert', cert, '--tls-key', key]);
  assert.match(server.log, /TLS: https and wss/);
  const browser = await launch([`--ignore-certificate-errors-spki-list=${spki}`]);
  try {
    const origin = `https://localhost:${port}`;
    const alice = await openChat(browser, port, 'tls', 'alice', origin);
    const bob = await openChat(browser, port, 'tls', 'bob', origin);
    // The page came over https and so connects with wss (plain ws from an
    // https page would be blocked as mixed content).
    assert.equal(await alice.evaluate(() => location.protocol), 'https:');
    await bob.locator('#people li', { hasText: 'alice' }).waitFor({ timeout: WAIT });
    await say(alice, 'hello over wss');
    await line(bob, 'hello over wss').waitFor({ timeout: WAIT });
    await say(bob, 'encrypted reply');
    await line(alice, 'encrypted reply').waitFor({ timeout: WAIT });
    mkdirSync(artifacts, { recursive: true });
    await alice.screenshot({ path: join(artifacts, 'chat-tls.png'), fullPage: true });
  } finally {
    await browser.close();
    assert.equal(await stopServer(server), 0, 'SIGTERM exits 0');
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Starts a redis-server of the test's own on `port` (nothing kept on disk)
 * and resolves once it answers PING. */
function startRedis(port) {
  const child = spawn('redis-server', ['--port', String(port), '--save', '', '--appendonly', 'no',
    '--daemonize', 'no'], { stdio: 'ignore' });
  const deadline = Date.now() + WAIT;
  const ping = (ok, fail) => {
    const probe = connect(port, '127.0.0.1', () => probe.write('PING\r\n'));
    probe.once('data', (data) => {
      probe.destroy();
      if (String(data).startsWith('+PONG')) ok(child); else retry(ok, fail);
    });
    probe.once('error', () => retry(ok, fail));
  };
  const retry = (ok, fail) => {
    if (Date.now() > deadline) return fail(new Error(`redis-server on ${port} never answered PING`));
    setTimeout(() => ping(ok, fail), 50);
  };
  return new Promise((ok, fail) => {
    child.once('error', fail);
    ping(ok, fail);
  });
}

test('two pages on two nodes sharing one Redis chat and see each other', { timeout: 120_000 }, async () => {
  const redis = await startRedis(await freePort());
  const url = `redis://127.0.0.1:${redis.spawnargs[2]}`;
  const [portA, portB] = [await freePort(), await freePort()];
  const nodeA = await startServer(portA, ['--redis', url]);
  let nodeB = await startServer(portB, ['--redis', url]);
  const browser = await launch();
  try {
    const alice = await openChat(browser, portA, 'nodes', 'alice');
    const bob = await openChat(browser, portB, 'nodes', 'bob');
    // Presence across the nodes: each sees the other in the list.
    await line(alice, 'is now known as bob').waitFor({ timeout: WAIT });
    await alice.locator('#people li', { hasText: 'bob' }).waitFor({ timeout: WAIT });
    await bob.locator('#people li', { hasText: 'alice' }).waitFor({ timeout: WAIT });
    await say(alice, 'hello from node A');
    await line(bob, 'hello from node A').waitFor({ timeout: WAIT });
    await say(bob, 'hello from node B');
    await line(alice, 'hello from node B').waitFor({ timeout: WAIT });
    mkdirSync(artifacts, { recursive: true });
    await alice.screenshot({ path: join(artifacts, 'chat-two-nodes.png'), fullPage: true });

    // Node B restarts: alice sees bob leave, bob's page reconnects by itself
    // and gets the room's history from Redis.
    assert.equal(await stopServer(nodeB), 0, 'SIGTERM exits 0');
    await line(alice, / left$/).first().waitFor({ timeout: WAIT });
    nodeB = await startServer(portB, ['--redis', url]);
    await bob.waitForFunction(() => document.getElementById('status').dataset.state === 'open', null, { timeout: 30_000 });
    await line(bob, /Welcome to #nodes, guest-/).nth(1).waitFor({ timeout: WAIT });
    await bob.locator('#people li', { hasText: 'alice' }).waitFor({ timeout: WAIT });
    await say(alice, 'after node B restarted');
    await line(bob, 'after node B restarted').waitFor({ timeout: WAIT });
  } finally {
    await browser.close();
    await stopServer(nodeB);
    await stopServer(nodeA);
    redis.kill('SIGKILL');
  }
});
