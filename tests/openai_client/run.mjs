// Acceptance test of `moestudio-cli serve` with the official OpenAI client library (npm
// package `openai`): starts the server on loopback on a free port with the built-in demo model,
// waits for /health, runs the checks, and always stops the server. Run by CTest:
//   node run.mjs PATH/TO/moestudio-cli
// The demo model's weights are random, so the checks compare the server with itself (streamed
// vs. not, stopped vs. not, concurrent vs. alone), never with fixed text.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
if (!existsSync(join(here, 'node_modules', 'openai'))) {
  console.error(
    'FAIL: tests/openai_client/node_modules is missing: run scripts/install-deps.sh ' +
      '(it runs `npm ci` in tests/openai_client)');
  process.exit(1);
}
const { default: OpenAI } = await import('openai');

const cli = process.argv[2] || process.env.MOE_CLI;
if (!cli || !existsSync(cli)) {
  console.error(`FAIL: moestudio-cli not found (got '${cli}'); pass its path as the argument`);
  process.exit(1);
}

const KEY = 'sk-moestudio-test';
const work = mkdtempSync(join(tmpdir(), 'moe-openai-'));
const children = new Set();

function cleanup() {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
}
process.on('exit', cleanup);
// The whole run is bounded: a hung server fails the test instead of blocking CTest.
setTimeout(() => {
  console.error('FAIL: timed out after 240 s');
  process.exit(1);
}, 240_000).unref();

// Starts `serve` and resolves with {child, port} once it printed its address and /health is up.
async function startServer(args) {
  const child = spawn(cli, ['serve', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let out = '';
  let err = '';
  child.stderr.on('data', (d) => { err += d; });
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start: ${err}`)), 60_000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/on http:\/\/127\.0\.0\.1:(\d+)\/v1/);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`serve exited with ${code} before listening: ${err}`));
    });
  });
  for (let i = 0; i < 100; ++i) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/health`);
      if (r.ok) return { child, port, stderr: () => err };
    } catch { /* not accepting yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('/health never answered 200');
}

async function stopServer(s) {
  if (s.child.exitCode !== null) return s.child.exitCode;
  const exited = new Promise((resolve) => s.child.on('exit', (code) => resolve(code)));
  s.child.kill('SIGTERM');
  const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r('hung'), 20_000))]);
  if (code === 'hung') s.child.kill('SIGKILL');
  children.delete(s.child);
  return code;
}

const results = [];
async function check(name, fn) {
  try {
    await fn();
    results.push([name, true]);
    console.log(`PASS  ${name}`);
  } catch (e) {
    results.push([name, false]);
    console.log(`FAIL  ${name}\n      ${e.stack || e}`);
  }
}

async function expectStatus(promise, status, Type) {
  try {
    await promise;
  } catch (e) {
    assert.ok(e instanceof OpenAI.APIError, `expected an APIError, got ${e}`);
    assert.equal(e.status, status, `status: ${e.message}`);
    if (Type) assert.ok(e instanceof Type, `expected ${Type.name}, got ${e.constructor.name}`);
    return e;
  }
  assert.fail(`expected HTTP ${status}, the request succeeded`);
}

const chat = (content, extra = {}) => ({
  model: 'demo',
  messages: [{ role: 'user', content }],
  temperature: 0,
  max_tokens: 24,
  ...extra,
});

async function streamText(client, body) {
  const stream = await client.chat.completions.create({
    ...body, stream: true, stream_options: { include_usage: true },
  });
  let text = '';
  let finish = null;
  let usage = null;
  let role = null;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    const c = chunk.choices[0];
    if (!c) continue;
    if (c.delta.role) role = c.delta.role;
    if (c.delta.content) text += c.delta.content;
    if (c.finish_reason) finish = c.finish_reason;
  }
  return { text, finish, usage, role };
}

// --- the run ----------------------------------------------------------------------------------
const demo = join(work, 'demo');
const made = spawnSync(cli, ['make-demo', '--out', demo], { encoding: 'utf8' });
if (made.status !== 0) {
  console.error(`FAIL: make-demo: ${made.stderr}`);
  process.exit(1);
}

let server;
try {
  await check('a non-loopback --host without --api-key is refused', async () => {
    const r = spawnSync(cli, ['serve', demo, '--host', '0.0.0.0', '--port', '0'],
      { encoding: 'utf8', timeout: 30_000 });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /api-key/);
  });

  server = await startServer([demo, '--port', '0', '--api-key', KEY, '--max-batch', '4',
    '--max-body-kib', '16', '--threads', '2']);
  const base = `http://127.0.0.1:${server.port}/v1`;
  const client = new OpenAI({ apiKey: KEY, baseURL: base, maxRetries: 0, timeout: 60_000 });

  await check('models.list names the served model', async () => {
    const ids = [];
    for await (const m of client.models.list()) ids.push(m.id);
    assert.deepEqual(ids, ['demo']);
    const m = await client.models.retrieve('demo');
    assert.equal(m.id, 'demo');
  });

  let reference;
  await check('non-streaming chat', async () => {
    const r = await client.chat.completions.create(chat('Once upon a time'));
    assert.equal(r.object, 'chat.completion');
    assert.equal(r.model, 'demo');
    const c = r.choices[0];
    assert.equal(c.message.role, 'assistant');
    assert.equal(typeof c.message.content, 'string');
    assert.ok(['stop', 'length'].includes(c.finish_reason));
    assert.ok(r.usage.prompt_tokens > 0);
    assert.ok(r.usage.completion_tokens > 0 && r.usage.completion_tokens <= 24);
    assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
    if (c.finish_reason === 'length') assert.equal(r.usage.completion_tokens, 24);
    // Greedy: the same request gives the same answer.
    const again = await client.chat.completions.create(chat('Once upon a time'));
    assert.equal(again.choices[0].message.content, c.message.content);
    reference = r;
  });

  await check('streaming chat equals the non-streamed answer', async () => {
    const s = await streamText(client, chat('Once upon a time'));
    assert.equal(s.role, 'assistant');
    assert.equal(s.text, reference.choices[0].message.content);
    assert.equal(s.finish, reference.choices[0].finish_reason);
    assert.deepEqual(s.usage, reference.usage);
  });

  await check('stop strings end the answer before them (streamed and not)', async () => {
    // A prompt whose greedy answer is long enough to cut in the middle.
    let full = null;
    for (const p of ['Once upon a time', 'Hello', 'The', 'abc', 'x y z', 'Tell me']) {
      const r = await client.chat.completions.create(chat(p, { max_tokens: 40 }));
      if ([...r.choices[0].message.content].length >= 8) { full = { p, r }; break; }
    }
    assert.ok(full, 'no prompt gave an answer of 8 characters');
    const chars = [...full.r.choices[0].message.content];
    const stop = chars.slice(Math.floor(chars.length / 2), Math.floor(chars.length / 2) + 2).join('');
    const text = full.r.choices[0].message.content;
    const expected = text.slice(0, text.indexOf(stop));
    const body = chat(full.p, { max_tokens: 40, stop: ['NEVER-IN-TEXT', stop] });
    const r = await client.chat.completions.create(body);
    assert.equal(r.choices[0].message.content, expected);
    assert.equal(r.choices[0].finish_reason, 'stop');
    assert.ok(r.usage.completion_tokens < full.r.usage.completion_tokens);
    const s = await streamText(client, body);
    assert.equal(s.text, expected);
    assert.equal(s.finish, 'stop');
  });

  await check('completions (non-streaming and streaming)', async () => {
    const r = await client.completions.create({
      model: 'demo', prompt: 'Once upon a time', max_tokens: 8, temperature: 0,
    });
    assert.equal(r.object, 'text_completion');
    assert.equal(typeof r.choices[0].text, 'string');
    assert.equal(r.usage.prompt_tokens, Buffer.byteLength('Once upon a time'));  // byte-level
    const stream = await client.completions.create({
      model: 'demo', prompt: 'Once upon a time', max_tokens: 8, temperature: 0, stream: true,
    });
    let text = '';
    for await (const c of stream) text += c.choices[0]?.text ?? '';
    assert.equal(text, r.choices[0].text);
  });

  await check('8 concurrent streams equal their single-request answers', async () => {
    const prompts = ['a', 'bb', 'ccc', 'Once', 'upon', 'a time', 'there', 'was'];
    const alone = [];
    for (const p of prompts) alone.push((await streamText(client, chat(p))).text);
    const t0 = performance.now();
    const together = await Promise.all(prompts.map((p) => streamText(client, chat(p))));
    const seconds = (performance.now() - t0) / 1000;
    together.forEach((s, i) => assert.equal(s.text, alone[i], `prompt '${prompts[i]}'`));
    const tokens = together.reduce((n, s) => n + s.usage.completion_tokens, 0);
    console.log(`      (8 concurrent: ${tokens} tokens in ${seconds.toFixed(2)} s)`);
  });

  await check('an unknown model is 404 model_not_found', async () => {
    const e = await expectStatus(client.chat.completions.create({ ...chat('hi'), model: 'gpt-4o' }),
      404, OpenAI.NotFoundError);
    assert.equal(e.code, 'model_not_found');
    assert.equal(e.param, 'model');
  });

  await check('an oversized request body is 413', async () => {
    const e = await expectStatus(client.chat.completions.create(chat('x'.repeat(20_000))), 413);
    assert.match(e.message, /larger/);
  });

  await check('a prompt past the context is 400 context_length_exceeded', async () => {
    const e = await expectStatus(client.chat.completions.create(chat('hi', { max_tokens: 100_000 })),
      400, OpenAI.BadRequestError);
    assert.equal(e.code, 'context_length_exceeded');
  });

  await check('bad fields are 400 naming the field', async () => {
    const e = await expectStatus(client.chat.completions.create(chat('hi', { temperature: 5 })),
      400, OpenAI.BadRequestError);
    assert.equal(e.param, 'temperature');
  });

  await check('the API key is enforced', async () => {
    const wrong = new OpenAI({ apiKey: 'sk-wrong', baseURL: base, maxRetries: 0 });
    await expectStatus(wrong.models.list(), 401, OpenAI.AuthenticationError);
    await expectStatus(wrong.chat.completions.create(chat('hi')), 401, OpenAI.AuthenticationError);
    const bare = await fetch(`${base}/models`);
    assert.equal(bare.status, 401);
    assert.equal((await bare.json()).error.code, 'invalid_api_key');
    // /health stays open for probes.
    assert.equal((await fetch(`http://127.0.0.1:${server.port}/health`)).status, 200);
  });

  await check('/metrics is Prometheus text', async () => {
    const r = await fetch(`${base.replace('/v1', '')}/metrics`,
      { headers: { Authorization: `Bearer ${KEY}` } });
    assert.equal(r.status, 200);
    const text = await r.text();
    assert.match(text, /# TYPE moestudio_generated_tokens_total counter/);
    assert.match(text, /moestudio_requests_total\{endpoint="\/v1\/chat\/completions",status="404"\} 1/);
    assert.match(text, /moestudio_queue_depth 0/);
  });

  await check('SIGTERM stops the server cleanly', async () => {
    const code = await stopServer(server);
    assert.equal(code, 0, `exit ${code}: ${server.stderr()}`);
  });
} catch (e) {
  results.push(['setup', false]);
  console.log(`FAIL  setup: ${e.stack || e}`);
} finally {
  if (server) await stopServer(server);
}

const failed = results.filter(([, ok]) => !ok).length;
console.log(`${results.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
